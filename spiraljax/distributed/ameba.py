"""Ameba gossip: decentralised training over a ring or torus of devices.

See docs/concepts/distributed.md.

Every device keeps its own copy of the parameters, steps an optax optimizer on its own
shard of the data, and mixes with its mesh neighbours through ``lax.ppermute`` — no
device ever sees the global average. One round, for device i with neighbours N(i) and
damping d ∈ [0, 1] (the mixing matrix W = (1 − d)·I + d·mean over neighbours is doubly
stochastic on a ring or torus):

* Euclidean, with gradient tracking (DIGing; Nedić, Olshevsky & Shi 2017), the default:
  uᵢ = optimizer(yᵢ);  xᵢ ← (W x)ᵢ + uᵢ;  yᵢ ← (W y)ᵢ + ∇fᵢ(xᵢ_new) − ∇fᵢ(xᵢ_old).
  yᵢ tracks the *global* mean gradient, so with plain SGD every device converges to the
  exact minimiser of Σᵢ fᵢ, not to a step-size-dependent neighbourhood of it.
* Without tracking (``tracking=False``): uᵢ = optimizer(∇fᵢ(xᵢ)); xᵢ ← (W x)ᵢ + uᵢ
  (adapt-then-combine diffusion; constant steps leave an O(lr) bias).
* On the Poincaré ball (``curvature`` given): the optimizer must be a spiraljax
  Riemannian one; the step is applied with ``spiraljax.optim.apply_updates`` and the
  mixing is the gyro-midpoint of xᵢ and its neighbours with weights (1 − d, d/|N|, …),
  never a Euclidean average (which can leave the ball's geometry). Gradient tracking
  has no direct Riemannian counterpart and is off in this mode.

The loop runs under ``lax.while_loop`` inside ``shard_map`` and stops when both the
disagreement maxᵢ ‖xᵢ − x̄‖ and the largest per-device step fall below ``tolerance``
(agreement alone would stop at round 0 when all devices start equal), or at
``max_rounds``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from jax.sharding import Mesh, PartitionSpec

__all__ = ["GossipResult", "gossip"]

_TOPOLOGIES = ("ring", "torus")


class GossipResult(NamedTuple):
    """Outcome of ``gossip``.

    Attributes:
      params: per-device parameters; every leaf gains a leading axis of length
        ``mesh.size`` (device order = the mesh's row-major order).
      consensus: the devices' mean (Euclidean) or gyro-midpoint (ball) of ``params``.
      rounds: number of rounds run.
      disagreement: final maxᵢ ‖xᵢ − x̄‖ over devices (Euclidean norm of all leaves).
      step: final largest per-device step norm.
      converged: whether both fell below ``tolerance`` before ``max_rounds``.
    """

    params: Any
    consensus: Any
    rounds: jax.Array
    disagreement: jax.Array
    step: jax.Array
    converged: jax.Array


def _tree_norm(tree: Any) -> jax.Array:
    leaves = jax.tree.leaves(tree)
    return jnp.sqrt(sum(jnp.sum(jnp.square(leaf)) for leaf in leaves))


def _along_first(w: jax.Array, stack: jax.Array) -> jax.Array:
    """Per-point weights ``w`` (m,) shaped to broadcast over ``stack``'s point axes."""
    return w.astype(stack.dtype).reshape((-1,) + (1,) * (stack.ndim - 2))


def _neighbours(tree: Any, axis_names: tuple[str, ...], sizes: tuple[int, ...]) -> list[Any]:
    """Values of the ring neighbours along each mesh axis of size > 1."""
    out = []
    for name, n in zip(axis_names, sizes, strict=True):
        if n == 1:
            continue
        forward = [(i, (i + 1) % n) for i in range(n)]
        backward = [(i, (i - 1) % n) for i in range(n)]
        out.append(jax.tree.map(lambda v, p=forward, a=name: lax.ppermute(v, a, p), tree))
        if n > 2:  # on a ring of two the backward neighbour is the forward one
            out.append(jax.tree.map(lambda v, p=backward, a=name: lax.ppermute(v, a, p), tree))
    return out


def gossip(
    loss_fn: Callable[[Any, Any], jax.Array],
    params: Any,
    data: Any,
    optimizer: optax.GradientTransformation,
    *,
    mesh: Mesh | None = None,
    topology: str = "ring",
    damping: float = 0.5,
    tolerance: float = 1e-6,
    max_rounds: int = 1000,
    tracking: bool | None = None,
    curvature: float | None = None,
) -> GossipResult:
    """Train ``loss_fn`` by gossip over the devices of ``mesh``.

    Args:
      loss_fn: ``loss_fn(params, data_shard) -> scalar``, the local objective fᵢ; the
        global objective is Σᵢ fᵢ (mean over devices, equivalently).
      params: initial parameters (a pytree), copied to every device.
      data: a pytree whose leaves share a leading axis divisible by the number of
        devices; device i receives the i-th contiguous block.
      optimizer: any optax transformation (a spiraljax Riemannian one when
        ``curvature`` is given).
      mesh: the device mesh; default a 1-D mesh over all devices. ``topology="ring"``
        uses a 1-D mesh, ``"torus"`` a 2-D one (neighbours along both axes).
      damping: weight d ∈ [0, 1] given to the neighbours' average when mixing.
      tolerance: stop once disagreement and step both fall below it.
      max_rounds: upper bound on rounds (≥ 1).
      tracking: gradient tracking (Euclidean only); default on without ``curvature``.
      curvature: when given, every leaf is a point (or points) on the Poincaré ball of
        this curvature.

    Returns:
      A ``GossipResult``.
    """
    if topology not in _TOPOLOGIES:
        raise ValueError(f"topology={topology!r} must be one of {_TOPOLOGIES}")
    if not 0.0 <= float(damping) <= 1.0:
        raise ValueError(f"damping={damping} must lie in [0, 1]")
    if not float(tolerance) > 0.0:
        raise ValueError(f"tolerance={tolerance} must be positive")
    if isinstance(max_rounds, bool) or not isinstance(max_rounds, int) or max_rounds < 1:
        raise ValueError(f"max_rounds={max_rounds!r} must be an integer >= 1")
    on_ball = curvature is not None
    if tracking is None:
        tracking = not on_ball
    if tracking and on_ball:
        raise ValueError("tracking=True is Euclidean only; pass tracking=False with curvature")
    if mesh is None:
        names = ("gossip",)
        mesh = Mesh(np.asarray(jax.devices(), dtype=object), names)
    if topology == "ring" and mesh.devices.ndim != 1:
        raise ValueError(f"topology='ring' needs a 1-D mesh, got mesh shape {dict(mesh.shape)}")
    if topology == "torus" and mesh.devices.ndim != 2:
        raise ValueError(f"topology='torus' needs a 2-D mesh, got mesh shape {dict(mesh.shape)}")
    axis_names = tuple(mesh.axis_names)
    sizes = tuple(int(mesh.shape[a]) for a in axis_names)
    n_devices = int(np.prod(sizes))
    for leaf in jax.tree.leaves(data):
        if jnp.ndim(leaf) == 0 or jnp.shape(leaf)[0] % n_devices:
            raise ValueError(
                f"data leaf of shape {jnp.shape(leaf)} must have a leading axis divisible by "
                f"the {n_devices} devices"
            )

    if on_ball:
        from spiraljax.geometry.poincare import weighted_midpoint
        from spiraljax.optim import apply_updates as ball_apply

        def apply(x, u):
            return ball_apply(x, u, curvature=curvature)

        def mix(x):
            nbs = _neighbours(x, axis_names, sizes)
            if not nbs:
                return x
            w = jnp.asarray([1.0 - damping] + [damping / len(nbs)] * len(nbs))

            def midpoint(own, *others):
                stack = jnp.stack([own, *others])
                return weighted_midpoint(stack, _along_first(w, stack), curvature=curvature, axis=0)

            return jax.tree.map(midpoint, x, *nbs)

    else:
        apply = optax.apply_updates

        def mix(x):
            nbs = _neighbours(x, axis_names, sizes)
            if not nbs:
                return x
            return jax.tree.map(
                lambda own, *others: (1.0 - damping) * own + damping * sum(others) / len(others),
                x,
                *nbs,
            )

    grad_fn = jax.grad(loss_fn)
    spec_dev = PartitionSpec(axis_names)

    def local(params, shard):
        def disagreement(x):
            mean = jax.tree.map(lambda v: lax.pmean(v, axis_names), x)
            dev = _tree_norm(jax.tree.map(jnp.subtract, x, mean))
            return lax.pmax(dev, axis_names)

        g0 = grad_fn(params, shard)
        state0 = optimizer.init(params)
        inf = jnp.asarray(jnp.inf, jnp.result_type(float))
        carry0 = (params, g0, g0, state0, jnp.asarray(0, jnp.int32), inf, inf)

        def cond(carry):
            *_, rounds, dis, step = carry
            done = (dis < tolerance) & (step < tolerance)
            return (rounds < max_rounds) & ~done

        def body(carry):
            x, y, g, state, rounds, _, _ = carry
            direction = y if tracking else g
            updates, state = optimizer.update(direction, state, x)
            x_new = apply(mix(x), updates)
            g_new = grad_fn(x_new, shard)
            if tracking:
                y = jax.tree.map(lambda my, gn, go: my + gn - go, mix(y), g_new, g)
            step = lax.pmax(_tree_norm(jax.tree.map(jnp.subtract, x_new, x)), axis_names)
            dis = disagreement(x_new)
            return x_new, y, g_new, state, rounds + 1, dis.astype(inf.dtype), step.astype(inf.dtype)

        x, _, _, _, rounds, dis, step = lax.while_loop(cond, body, carry0)
        expand = jax.tree.map(lambda v: v[None], x)
        return expand, rounds, dis, step

    run = jax.jit(
        jax.shard_map(
            local,
            mesh=mesh,
            in_specs=(PartitionSpec(), spec_dev),
            out_specs=(spec_dev, PartitionSpec(), PartitionSpec(), PartitionSpec()),
            check_vma=False,
        )
    )
    per_device, rounds, dis, step = run(params, data)
    if on_ball:
        from spiraljax.geometry.poincare import weighted_midpoint

        consensus = jax.tree.map(
            lambda v: weighted_midpoint(
                v, _along_first(jnp.ones(v.shape[0]), v), curvature=curvature, axis=0
            ),
            per_device,
        )
    else:
        consensus = jax.tree.map(lambda v: jnp.mean(v, axis=0), per_device)
    converged = (dis < tolerance) & (step < tolerance)
    return GossipResult(per_device, consensus, rounds, dis, step, converged)
