"""Riemannian SGD and Adam on the Poincaré ball as optax transforms (see docs/concepts/optax.md).

**Manifolds.** Every transform (and ``apply_updates``) takes ``manifold=``: ``"poincare"``
(the default, everything below), ``"lorentz"`` (hyperboloid leaves ``(..., d+1)``: rgrad,
expmap, transport and projection of ``spiraljax.geometry.lorentz``, the second moment the
Minkowski ‖rgrad‖²_L) or ``"euclidean"``; or a pytree of these tags (a prefix of params),
or a callable ``params -> tags``, so one transform serves a mixed pytree of ball, Lorentz and
Euclidean leaves (docs/concepts/lorentz.md).

Both transforms follow geoopt (``geoopt/optim/rsgd.py``, ``radam.py``; Bécigneul & Ganea,
"Riemannian Adaptive Optimization Methods", ICLR 2019):

* the incoming (Euclidean) gradient g at the point x is turned into the Riemannian gradient
  ``rgrad = g / λₓ²`` with λₓ = 2/(1 − c‖x‖²);
* the step ``u = −lr · direction`` is taken along the manifold by the exact exponential map
  ``y = expmap(x, u)`` (``retraction="expmap"``, geoopt's ``PoincareBallExact``) or by the
  first-order retraction ``y = project(x + u)`` (``retraction="first_order"``, geoopt's
  default ``PoincareBall``), and every momentum-like buffer is parallel-transported
  ``transp(x, y, ·)`` to the new point;
* before each step the point is re-projected into the ball (geoopt PR #247, the fix for
  NaN losses with RiemannianAdam), and the new point is projected again.

**Update convention.** optax's ``apply_updates`` *adds* updates, so these transforms emit
the displacement ``new − old`` (the hyperbolix convention). ``params + update`` equals the
new point up to one rounding; ``apply_updates`` adds and then re-projects into the ball,
which makes the sum a valid ball point again even when it rounds out by an ulp. (Using
``optax.apply_updates`` is also safe for the next step, because the transforms re-project
their input point first, but only ``apply_updates`` guarantees the stored parameters are
strictly inside the ball.)

**params are required**: the Riemannian step depends on the point, so ``update`` must be
called as ``update(grads, state, params)``; ``params=None`` raises ``ValueError``.

**Leaves are stacks of points**: every leaf has shape ``(..., d)``, the last axis being the
coordinates of one point; the second moment of Adam is one scalar per point (shape
``(..., 1)``). States are kept, and steps computed, in the compute dtype of the parameters
(float32 for bfloat16/float16 parameters: β₂ = 0.999 rounds to 1 in bfloat16); updates are
cast back to the parameter dtype. To mix ball and Euclidean parameters, route them with
``optax.partition`` and a label function, and give ``apply_updates`` the matching
``mask`` (example in ``tests/optim/test_riemannian.py``).

Deviation from geoopt: geoopt's RiemannianSGD seeds its momentum buffer with a clone of the
*Euclidean* gradient and then adds the Riemannian one on the first step (a unit mix-up);
here the buffer starts at zero, so the first step is ``buf₁ = rgrad₁`` (like ``optax.trace``).
Weight decay and dampening are not built in (chain ``optax.add_decayed_weights`` first).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from spiraljax.geometry import guards, lorentz, poincare

__all__ = [
    "MANIFOLDS",
    "RiemannianAdamState",
    "RiemannianSGDState",
    "apply_updates",
    "riemannian_adam",
    "riemannian_sgd",
]

PyTree = Any
ScalarOrSchedule = float | jax.Array | Callable[[jax.Array], jax.Array]
Retraction = Literal["expmap", "first_order"]
_RETRACTIONS = ("expmap", "first_order")
Manifold = Literal["poincare", "lorentz", "euclidean"]
#: A manifold tag, a pytree (prefix of params) of tags, or a callable params -> such a pytree.
ManifoldSpec = str | PyTree | Callable[[PyTree], PyTree]


class RiemannianSGDState(NamedTuple):
    """State of ``riemannian_sgd``.

    Attributes:
      count: number of updates taken (int32 scalar); a schedule is evaluated at it.
      momentum: the momentum buffer, tangent vectors at the current points (same pytree as
        params; on Lorentz leaves in the origin frame, see ``MANIFOLDS``),
        parallel-transported after every step; ``None`` when ``momentum == 0``.
    """

    count: jax.Array
    momentum: PyTree


class RiemannianAdamState(NamedTuple):
    """State of ``riemannian_adam``.

    Attributes:
      count: number of updates taken (int32 scalar).
      mu: first moment (tangent vectors at the current points; on Lorentz leaves in the
        origin frame, see ``MANIFOLDS``), transported every step.
      nu: second moment, one scalar per point: each leaf has shape ``(..., 1)``.
      nu_max: running maximum of ``nu`` (AMSGrad), or ``None`` when ``amsgrad=False``.
    """

    count: jax.Array
    mu: PyTree
    nu: PyTree
    nu_max: PyTree


# ----------------------------------------------------------------------------- validation


def _check_learning_rate(learning_rate: ScalarOrSchedule, name: str = "learning_rate") -> None:
    """Reject a concrete learning rate that is not finite, or ≤ 0.

    Python/NumPy numbers must be > 0. JAX arrays must be ≥ 0 (0 is allowed there because
    ``optax.inject_hyperparams`` passes schedule values such as a warm-up's initial 0 as
    arrays). Schedules and traced values are not checked.
    """
    if callable(learning_rate):
        return
    if not guards.is_concrete(learning_rate):
        return
    value = np.asarray(learning_rate)
    if value.shape != ():
        raise ValueError(f"{name} must be a scalar or a schedule, got shape {value.shape}")
    if value.dtype.kind not in "fiu":
        raise ValueError(f"{name}={learning_rate!r} is not a real number or a schedule")
    lr = float(value)
    is_array = isinstance(learning_rate, jax.Array)
    if not math.isfinite(lr) or lr < 0 or (lr == 0 and not is_array):
        raise ValueError(f"{name}={lr} must be finite and > 0")


def _check_unit_interval(name: str, value: float) -> None:
    if guards.is_concrete(value) and not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{name}={float(value)} must lie in [0, 1)")


def _check_retraction(retraction: str) -> None:
    if retraction not in _RETRACTIONS:
        raise ValueError(f"retraction={retraction!r} must be one of {_RETRACTIONS}")


def _require_params(params: PyTree, name: str) -> None:
    if params is None:
        raise ValueError(
            f"{name}.update needs the current params: call update(grads, state, params) "
            "(the Riemannian step depends on the point; params=None given)"
        )


def _check_point_leaf(x: jax.Array) -> None:
    if jnp.ndim(x) < 1:
        raise ValueError(
            f"parameter leaf of shape {jnp.shape(x)} has no coordinate axis; ball parameters "
            "must have shape (..., d) (route scalars/Euclidean leaves with optax.partition)"
        )


def _learning_rate_at(learning_rate: ScalarOrSchedule, count: jax.Array) -> jax.Array:
    return learning_rate(count) if callable(learning_rate) else jnp.asarray(learning_rate)


# ------------------------------------------------------------------------------- manifolds


class _Geometry(NamedTuple):
    """What a Riemannian step needs from the manifold of a leaf.

    Tangent vectors (the Riemannian gradient, momentum buffers, steps) are held in one
    representation per manifold: at the point itself on the ball, in the origin frame on
    the hyperboloid (below). ``rgrad(x, g)`` gives the Riemannian gradient in it,
    ``expmap`` / ``retract`` move along it, ``transp(x, y, v)`` carries it from x to y, and
    ``sq(x, u)`` is the statistic of Adam's second moment: the Riemannian squared norm, one
    scalar per point (``(..., 1)``), or per coordinate for Euclidean leaves (optax's Adam).
    """

    project: Callable
    rgrad: Callable
    sq: Callable
    expmap: Callable
    retract: Callable
    transp: Callable
    per_point: bool


def _euclid_project(x, *, curvature):
    del curvature
    return x


def _ball_retract(x, u, *, curvature):
    return poincare.project(x + u, curvature=curvature)


def _frame_sq(x, u, curvature):
    # origin-frame vectors have time component 0: ‖u‖²_L is the Euclidean ‖u‖²
    del x, curvature
    return jnp.sum(u * u, axis=-1, keepdims=True)


MANIFOLDS: dict[str, _Geometry] = {
    "poincare": _Geometry(
        poincare.project,
        poincare.egrad2rgrad,
        lambda x, u, curvature: poincare.inner(x, u, u, curvature=curvature, keepdims=True),
        poincare.expmap,
        _ball_retract,
        poincare.transp,
        True,
    ),
    # Tangent vectors at far hyperboloid points are ill-conditioned in ambient coordinates
    # (a radial part √c·x₀ times their norm, whose rounding swamps the vector beyond
    # x₀ ≈ 1/ε); momenta held there grow by that rounding at every transport until they
    # overflow. So Lorentz leaves keep them parallel-transported to the origin, where the
    # metric is Euclidean, and carry them by the holonomy rotation.
    "lorentz": _Geometry(
        lorentz.project,
        lorentz._frame_rgrad,
        _frame_sq,
        lorentz._frame_expmap,
        lorentz._frame_retract,
        lorentz._frame_transp,
        True,
    ),
    "euclidean": _Geometry(
        _euclid_project,
        lambda x, g, curvature: g,
        lambda x, u, curvature: u * u,
        lambda x, u, curvature: x + u,
        lambda x, u, curvature: x + u,
        lambda x, y, v, curvature: v,
        False,
    ),
}
"""The manifolds a leaf can live on (the ``manifold=`` argument of the transforms):
``"poincare"`` (ball points ``(..., d)``), ``"lorentz"`` (hyperboloid points ``(..., d+1)``,
``spiraljax.geometry.lorentz``) and ``"euclidean"`` (any shape; plain SGD/Adam).

On Lorentz leaves the optimiser states hold tangent vectors in the *origin frame*: a
tangent vector v at x is stored as P_{x→o} v, its parallel transport to the origin o
along the geodesic o–x (time component 0, ⟨·,·⟩_L Euclidean there). This is the same
optimiser (transport is an isometry); only the coordinates of the state differ."""


def _check_manifold(tag: Any) -> _Geometry:
    if not isinstance(tag, str) or tag not in MANIFOLDS:
        raise ValueError(
            f"manifold={tag!r} must be one of {tuple(MANIFOLDS)} (or a pytree of them)"
        )
    return MANIFOLDS[tag]


def _leaf_manifolds(manifold: ManifoldSpec, params: PyTree) -> PyTree:
    """The manifold tag of every leaf of ``params`` (a pytree of strings of its structure)."""
    if callable(manifold):
        manifold = manifold(params)

    def expand(tag, sub):
        _check_manifold(tag)
        return jax.tree_util.tree_map(lambda _: tag, sub, is_leaf=lambda v: v is None)

    if isinstance(manifold, str):
        return expand(manifold, params)
    try:
        return jax.tree_util.tree_map(expand, manifold, params, is_leaf=lambda v: v is None)
    except ValueError as err:
        if "manifold=" in str(err):
            raise
        raise ValueError(
            f"manifold pytree {jax.tree_util.tree_structure(manifold)} is not a prefix of the "
            f"params structure {jax.tree_util.tree_structure(params)}"
        ) from err


def _check_leaf(x: jax.Array, tag: str) -> None:
    if MANIFOLDS[tag].per_point:
        _check_point_leaf(x)


# ------------------------------------------------------------------ point-level primitives


def _retract(
    x: jax.Array, u: jax.Array, curvature: Any, retraction: Retraction, manifold: str = "poincare"
) -> jax.Array:
    """Move from the point x along the tangent vector u; result projected onto the manifold."""
    geometry = MANIFOLDS[manifold]
    move = geometry.expmap if retraction == "expmap" else geometry.retract
    return move(x, u, curvature=curvature)  # already projected


def riemannian_sgd_step(
    x: jax.Array,
    egrad: jax.Array,
    learning_rate: jax.Array | float,
    *,
    curvature: Any = -1.0,
    retraction: Retraction = "expmap",
    manifold: Manifold = "poincare",
) -> jax.Array:
    """One plain Riemannian SGD step: ``project(expmap(x̂, −lr · g/λ_x̂²))``, x̂ = project(x).

    (On the hyperboloid, ``manifold="lorentz"``: ``expmap(x̂, −lr · egrad2rgrad(x̂, g))``.)

    Args:
      x: ball points, shape ``(..., d)``.
      egrad: Euclidean gradient at ``x``, same shape.
      learning_rate: step size (scalar).
      curvature: K ≤ 0.
      retraction: ``"expmap"`` (exact) or ``"first_order"`` (``project(x + u)``).
      manifold: ``"poincare"``, ``"lorentz"`` or ``"euclidean"`` (``MANIFOLDS``).

    Returns:
      The new points, same shape and dtype as ``x``.
    """
    _check_retraction(retraction)
    _check_learning_rate(learning_rate)
    geometry = _check_manifold(manifold)
    x = geometry.project(x, curvature=curvature)
    rgrad = geometry.rgrad(x, egrad, curvature=curvature)
    lr = jnp.asarray(learning_rate).astype(rgrad.dtype)
    return _retract(x, -lr * rgrad, curvature, retraction, manifold).astype(x.dtype)


def _retract_transport(
    x: jax.Array,
    u: jax.Array,
    v: jax.Array,
    curvature: Any,
    retraction: Retraction,
    manifold: str = "poincare",
) -> tuple[jax.Array, jax.Array]:
    y = _retract(x, u, curvature, retraction, manifold)
    return y, MANIFOLDS[manifold].transp(x, y, v, curvature=curvature)


# ------------------------------------------------------------------------------ transforms


def riemannian_sgd(
    learning_rate: ScalarOrSchedule,
    *,
    momentum: float = 0.0,
    nesterov: bool = False,
    curvature: Any = -1.0,
    retraction: Retraction = "expmap",
    manifold: ManifoldSpec = "poincare",
) -> optax.GradientTransformationExtraArgs:
    r"""Riemannian SGD (with momentum / Nesterov) on the Poincaré ball or the hyperboloid.

    With rgrad = g/λₓ² and, when ``momentum = β > 0``, a buffer b (b₀ = 0)::

        b ← β·b + rgrad
        d = rgrad + β·b    (nesterov)   or   d = b
        y = expmap(x, −lr·d)            (or project(x − lr·d))
        b ← transp(x, y, b)

    and without momentum ``y = expmap(x, −lr·rgrad)``. The emitted update is ``y − x``.

    Args:
      learning_rate: a positive scalar or an optax schedule ``count -> lr`` (evaluated at the
        number of updates already taken, starting at 0).
      momentum: β ∈ [0, 1).
      nesterov: Nesterov momentum (requires β > 0).
      curvature: K ≤ 0 (Python float or array).
      retraction: ``"expmap"`` (exact, default) or ``"first_order"``.
      manifold: the manifold of the leaves: ``"poincare"`` (default), ``"lorentz"``
        (hyperboloid points ``(..., d+1)``; rgrad = ``lorentz.egrad2rgrad``) or
        ``"euclidean"``; or a pytree of these tags that is a prefix of params, or a
        callable ``params -> such a pytree``, to mix ball, Lorentz and Euclidean leaves in
        one transform (the rule of ``MANIFOLDS``: every leaf follows its own geometry).

    Returns:
      An ``optax.GradientTransformationExtraArgs``; ``update(grads, state, params)``
      requires ``params``.

    References:
      Bonnabel, "Stochastic gradient descent on Riemannian manifolds", IEEE TAC 2013;
      geoopt ``RiemannianSGD``.
    """
    _check_learning_rate(learning_rate)
    guards.check_curvature(curvature)
    _check_unit_interval("momentum", momentum)
    _check_retraction(retraction)
    # A JAX-array momentum (e.g. from optax.inject_hyperparams, concrete at init and traced
    # in update) always keeps a buffer, so the state layout does not depend on its value.
    use_momentum = isinstance(momentum, jax.Array) or float(momentum) != 0.0
    if nesterov and not use_momentum:
        raise ValueError(f"nesterov=True requires momentum > 0, got momentum={momentum}")

    if isinstance(manifold, str):
        _check_manifold(manifold)

    def init_fn(params: PyTree) -> RiemannianSGDState:
        jax.tree_util.tree_map(_check_leaf, params, _leaf_manifolds(manifold, params))
        buf = jax.tree_util.tree_map(_zeros_work, params) if use_momentum else None
        return RiemannianSGDState(count=jnp.zeros((), jnp.int32), momentum=buf)

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        _require_params(params, "riemannian_sgd")
        lr = _learning_rate_at(learning_rate, state.count)

        def leaf(g, p, b, tag):
            _check_leaf(p, tag)
            geometry = MANIFOLDS[tag]
            work = guards.compute_dtype(p.dtype)
            p_work = p.astype(work)
            x = geometry.project(p_work, curvature=curvature)
            rgrad = geometry.rgrad(x, g.astype(work), curvature=curvature)
            step_lr = lr.astype(work)
            if b is None:
                y = _retract(x, -step_lr * rgrad, curvature, retraction, tag)
                return (y - p_work).astype(p.dtype), None
            b = momentum * b + rgrad
            direction = rgrad + momentum * b if nesterov else b
            y, b = _retract_transport(x, -step_lr * direction, b, curvature, retraction, tag)
            return (y - p_work).astype(p.dtype), b.astype(work)

        bufs = state.momentum if use_momentum else jax.tree_util.tree_map(lambda _: None, params)
        tags = _leaf_manifolds(manifold, params)
        out = jax.tree_util.tree_map(leaf, updates, params, bufs, tags, is_leaf=lambda v: v is None)
        new_updates, new_bufs = _unzip(out, updates, 2)
        new_state = RiemannianSGDState(
            count=optax.safe_int32_increment(state.count),
            momentum=new_bufs if use_momentum else None,
        )
        return new_updates, new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def riemannian_adam(
    learning_rate: ScalarOrSchedule,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    amsgrad: bool = False,
    curvature: Any = -1.0,
    retraction: Retraction = "expmap",
    manifold: ManifoldSpec = "poincare",
) -> optax.GradientTransformationExtraArgs:
    r"""Riemannian Adam / AMSGrad on the Poincaré ball or the hyperboloid (geoopt
    ``RiemannianAdam`` semantics).

    At step t (1-based), with rgrad = g/λₓ²::

        m ← β₁·m + (1 − β₁)·rgrad                       (tangent vector, shape (..., d))
        v ← β₂·v + (1 − β₂)·⟨rgrad, rgrad⟩ₓ              (one scalar per point, (..., 1))
        v̂ = max over steps of v   (amsgrad)   or   v
        direction = (m / (1 − β₁ᵗ)) / (√(v̂ / (1 − β₂ᵗ)) + eps)
        y = expmap(x, −lr·direction)                    (or project(x − lr·direction))
        m ← transp(x, y, m)

    where ⟨u, u⟩ₓ = λₓ²‖u‖² is the Riemannian squared norm (so ⟨rgrad, rgrad⟩ₓ = ‖g‖²/λₓ²).
    Only the first moment is transported; v is a scalar and needs no transport. The
    emitted update is ``y − x``.

    Args:
      learning_rate: a positive scalar or an optax schedule ``count -> lr``.
      b1, b2: moment decay rates in [0, 1).
      eps: added to the root of the bias-corrected second moment (≥ 0).
      amsgrad: use the running maximum of v (Reddi et al. 2018).
      curvature: K ≤ 0.
      retraction: ``"expmap"`` (exact, default) or ``"first_order"``.
      manifold: the manifold of the leaves: ``"poincare"`` (default), ``"lorentz"``
        (hyperboloid points ``(..., d+1)``; rgrad = ``lorentz.egrad2rgrad``) or
        ``"euclidean"``; or a pytree of these tags that is a prefix of params, or a
        callable ``params -> such a pytree``, to mix ball, Lorentz and Euclidean leaves in
        one transform (the rule of ``MANIFOLDS``: every leaf follows its own geometry).
        On the hyperboloid ⟨u, u⟩ₓ is the Minkowski ‖u‖²_L; on Euclidean leaves the
        second moment is per coordinate (``optax.adam``).

    Returns:
      An ``optax.GradientTransformationExtraArgs``; ``update(grads, state, params)``
      requires ``params``.

    References:
      Bécigneul & Ganea, "Riemannian Adaptive Optimization Methods", ICLR 2019 (Alg. 1);
      geoopt ``RiemannianAdam``.
    """
    _check_learning_rate(learning_rate)
    guards.check_curvature(curvature)
    _check_unit_interval("b1", b1)
    _check_unit_interval("b2", b2)
    if guards.is_concrete(eps) and not (math.isfinite(float(eps)) and float(eps) >= 0):
        raise ValueError(f"eps={float(eps)} must be finite and ≥ 0")
    _check_retraction(retraction)

    if isinstance(manifold, str):
        _check_manifold(manifold)

    def _nu_zeros(p, tag):
        return _zeros_work(p, (*p.shape[:-1], 1) if MANIFOLDS[tag].per_point else None)

    def init_fn(params: PyTree) -> RiemannianAdamState:
        tags = _leaf_manifolds(manifold, params)
        jax.tree_util.tree_map(_check_leaf, params, tags)
        mu = jax.tree_util.tree_map(_zeros_work, params)
        nu = jax.tree_util.tree_map(_nu_zeros, params, tags)
        nu_max = jax.tree_util.tree_map(jnp.zeros_like, nu) if amsgrad else None
        return RiemannianAdamState(jnp.zeros((), jnp.int32), mu, nu, nu_max)

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        _require_params(params, "riemannian_adam")
        count = optax.safe_int32_increment(state.count)
        lr = _learning_rate_at(learning_rate, state.count)

        def leaf(g, p, m, v, v_max, tag):
            _check_leaf(p, tag)
            geometry = MANIFOLDS[tag]
            work = guards.compute_dtype(p.dtype)
            p_work = p.astype(work)
            t = count.astype(work)
            bc1 = 1 - jnp.asarray(b1, work) ** t
            bc2 = 1 - jnp.asarray(b2, work) ** t
            x = geometry.project(p_work, curvature=curvature)
            rgrad = geometry.rgrad(x, g.astype(work), curvature=curvature)
            sq = geometry.sq(x, rgrad, curvature=curvature)
            m = b1 * m + (1 - b1) * rgrad
            v = b2 * v + (1 - b2) * sq
            if v_max is not None:
                v_max = jnp.maximum(v_max, v)
            v_used = v if v_max is None else v_max
            direction = (m / bc1) / (jnp.sqrt(v_used / bc2) + eps)
            u = -lr.astype(work) * direction
            y, m = _retract_transport(x, u, m, curvature, retraction, tag)
            return (y - p_work).astype(p.dtype), m.astype(work), v.astype(work), v_max

        v_max_tree = state.nu_max if amsgrad else jax.tree_util.tree_map(lambda _: None, params)
        tags = _leaf_manifolds(manifold, params)
        out = jax.tree_util.tree_map(
            leaf,
            updates,
            params,
            state.mu,
            state.nu,
            v_max_tree,
            tags,
            is_leaf=lambda v: v is None,
        )
        new_updates, mu, nu, nu_max = _unzip(out, updates, 4)
        return new_updates, RiemannianAdamState(count, mu, nu, nu_max if amsgrad else None)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _zeros_work(p: jax.Array, shape: tuple[int, ...] | None = None) -> jax.Array:
    """Zeros for optimizer state in the compute dtype (float32 for bfloat16/float16 params)."""
    return jnp.zeros(p.shape if shape is None else shape, guards.compute_dtype(p.dtype))


def _unzip(out: PyTree, like: PyTree, n: int) -> tuple[PyTree, ...]:
    """Split a pytree of n-tuples (with the structure of ``like``) into n pytrees."""
    treedef = jax.tree_util.tree_structure(like)
    leaves = treedef.flatten_up_to(out)
    return tuple(treedef.unflatten([leaf[i] for leaf in leaves]) for i in range(n))


# --------------------------------------------------------------------------- apply_updates


def apply_updates(
    params: PyTree,
    updates: PyTree,
    *,
    curvature: Any = -1.0,
    mask: PyTree | Callable[[PyTree], PyTree] | None = None,
    manifold: ManifoldSpec = "poincare",
) -> PyTree:
    """Add updates and re-project ball parameters: ``project(p + u)``.

    The rule: for every leaf selected by ``mask`` (all leaves when ``mask`` is None) the new
    value is ``project(p + u, curvature)``, i.e. the sum clipped to norm ≤ (1 − ε)/√c along
    the last axis; other leaves get ``p + u`` as in ``optax.apply_updates``. The result has
    the dtype of ``params``. With the displacements emitted by ``riemannian_sgd`` /
    ``riemannian_adam``, ``p + u`` is the new point up to one rounding, and the
    projection only acts when that rounding (or a foreign transform in the chain) would
    leave the ball.

    Args:
      params: current parameters.
      updates: updates of the same structure (``MaskedNode``/None leaves are skipped).
      curvature: K ≤ 0 of the ball.
      mask: a pytree of bools (a prefix of ``params`` is enough) marking ball leaves, or a
        callable ``params -> such pytree`` (e.g. built from an ``optax.partition`` label
        function).
      manifold: what "project" means per leaf, as in the transforms: ``"poincare"`` (clip
        into the ball), ``"lorentz"`` (``lorentz.project``: x₀ recomputed from the spatial
        part), ``"euclidean"`` (none); a tag, a pytree of tags (prefix of params) or a
        callable ``params -> such a pytree``. Pass the one given to the transform.

    Returns:
      The new parameters.
    """
    guards.check_curvature(curvature)
    if callable(mask):
        mask = mask(params)
    tags = _leaf_manifolds(manifold, params)

    def add(p, u, tag, on_ball=True):
        if u is None or isinstance(u, optax.MaskedNode):
            return p
        if on_ball:
            guards.check_shapes((("params", p), ("updates", u)))
        new = jnp.asarray(p + u).astype(jnp.asarray(p).dtype)
        if on_ball and MANIFOLDS[tag].per_point:
            _check_point_leaf(new)
            new = MANIFOLDS[tag].project(new, curvature=curvature).astype(new.dtype)
        return new

    if mask is None:
        return jax.tree_util.tree_map(add, params, updates, tags, is_leaf=lambda v: v is None)

    def add_subtree(m, p_sub, u_sub, t_sub):
        return jax.tree_util.tree_map(
            lambda p, u, t: add(p, u, t, bool(m)), p_sub, u_sub, t_sub, is_leaf=lambda v: v is None
        )

    return jax.tree_util.tree_map(add_subtree, mask, params, updates, tags)
