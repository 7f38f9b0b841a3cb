r"""Hyperbolic neural-network layers on the Poincaré ball (Ganea, Bécigneul & Hofmann 2018).

Each layer is a ``Layer``: a pair of pure functions ``init(key, ...) -> params`` and
``apply(params, x, *, curvature)``; params are plain dicts of arrays (pytrees), so they go
through ``jit``, ``vmap``, ``grad`` and optax unchanged. Ball-valued parameters (biases,
hyperplane offsets) should be updated with a Riemannian optimizer; the others are Euclidean.

* ``mobius_linear`` — y = (W ⊗ x) ⊕ b = exp₀(W log₀ x) ⊕ b.
* ``poincare_mlr`` — hyperbolic multinomial logistic regression logits.
* ``hyperbolic_cross_entropy`` — softmax cross entropy over ``poincare_mlr`` logits.

Reference: O. Ganea, G. Bécigneul, T. Hofmann, *Hyperbolic Neural Networks*, NeurIPS 2018
(arXiv:1805.09112), §3.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from spiraljax.geometry import poincare as pm
from spiraljax.geometry.guards import (
    arsinh_ratio,
    as_float,
    ball_eps,
    clamp_boundary,
    clamp_min,
    curvature_to_c,
)

__all__ = ["Layer", "hyperbolic_cross_entropy", "mobius_linear", "poincare_mlr"]

ArrayLike = Any
Params = dict[str, jax.Array]


class Layer(NamedTuple):
    """A layer as two pure functions; calling the layer calls ``apply``."""

    init: Callable[..., Any]
    apply: Callable[..., Any]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.apply(*args, **kwargs)


def _check_features(**sizes: int) -> None:
    for name, n in sizes.items():
        if not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"{name}={n!r} must be a positive int")


def _check_float_dtype(dtype: Any) -> jnp.dtype:
    dtype = jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(f"dtype={dtype} must be a floating dtype")
    return dtype


def _check_params(params: Any, keys: tuple[str, ...], layer: str) -> None:
    if not isinstance(params, dict) or not all(k in params for k in keys):
        got = sorted(params) if isinstance(params, dict) else type(params).__name__
        raise ValueError(f"{layer} params must be a dict with keys {keys}, got {got}")


# --------------------------------------------------------------------------------------
# Möbius linear layer
# --------------------------------------------------------------------------------------


def _mobius_linear_init(
    key: jax.Array,
    in_features: int,
    out_features: int,
    *,
    curvature: ArrayLike = -1.0,
    bias_scale: float = 1e-3,
    dtype: Any = jnp.float32,
) -> Params:
    """Glorot-uniform ``weight`` (out, in) and a ball ``bias`` exp₀(N(0, bias_scale²)) (out,)."""
    _check_features(in_features=in_features, out_features=out_features)
    dtype = _check_float_dtype(dtype)
    k_w, k_b = jax.random.split(key)
    limit = float(np.sqrt(6.0 / (in_features + out_features)))
    weight = jax.random.uniform(k_w, (out_features, in_features), dtype, -limit, limit)
    tangent = bias_scale * jax.random.normal(k_b, (out_features,), dtype)
    return {"weight": weight, "bias": pm.expmap0(tangent, curvature=curvature)}


def _mobius_linear_apply(params: Params, x: ArrayLike, *, curvature: ArrayLike = -1.0) -> jax.Array:
    """y = (W ⊗ x) ⊕ b  (Ganea et al. 2018, eqs. 26–28). x: ``(..., in)`` → ``(..., out)``."""
    _check_params(params, ("weight", "bias"), "mobius_linear")
    h = pm.mobius_matvec(params["weight"], x, curvature=curvature)
    return pm.mobius_add(h, params["bias"], curvature=curvature)


#: Möbius linear layer y = exp₀(W log₀ x) ⊕ b (Ganea et al. 2018).
mobius_linear = Layer(_mobius_linear_init, _mobius_linear_apply)


# --------------------------------------------------------------------------------------
# Hyperbolic multinomial logistic regression
# --------------------------------------------------------------------------------------


def _poincare_mlr_init(
    key: jax.Array,
    in_features: int,
    num_classes: int,
    *,
    curvature: ArrayLike = -1.0,
    dtype: Any = jnp.float32,
) -> Params:
    """Offsets ``p`` (K, d) at the origin and normals ``a`` (K, d) ~ N(0, 1/d)."""
    _check_features(in_features=in_features, num_classes=num_classes)
    dtype = _check_float_dtype(dtype)
    del curvature  # p = 0 lies in every ball
    a = jax.random.normal(key, (num_classes, in_features), dtype) / float(np.sqrt(in_features))
    return {"p": jnp.zeros((num_classes, in_features), dtype), "a": a}


def _poincare_mlr_apply(params: Params, x: ArrayLike, *, curvature: ArrayLike = -1.0) -> jax.Array:
    r"""Hyperbolic MLR logits (Ganea et al. 2018, §3.1, eq. 25):

    ζ_k(x) = (λ_{p_k}‖a_k‖/√c) · arsinh( 2√c⟨(−p_k) ⊕ x, a_k⟩ / ((1 − c‖(−p_k) ⊕ x‖²)‖a_k‖) ),

    the signed distance of x to the gyroplane through p_k with normal a_k, scaled by the
    Riemannian norm of a_k. ``params["p"]`` (K, d) are points of the ball; ``params["a"]``
    (K, d) are the normals given at the origin and parallel-transported to p_k,
    a_k = P_{0→p_k}(a⁰_k) = (1 − c‖p_k‖²) a⁰_k (the paper's parametrisation, so a⁰ is a
    Euclidean parameter). At c = 0 the logits are 4⟨x − p_k, a⁰_k⟩.

    Computed for all (point, class) pairs from the matrix products x·aᵀ and x·pᵀ (using
    ⟨s, a⟩ and 1 − c‖s‖² in closed form), without a (batch, K, d) intermediate.

    Args:
      x: points ``(..., d)``. Returns logits ``(..., K)``.
    """
    _check_params(params, ("p", "a"), "poincare_mlr")
    (x, p, a0), out, work = as_float(("x", x), ("p", params["p"]), ("a", params["a"]))
    if p.ndim != 2 or a0.shape != p.shape:
        raise ValueError(f"p and a must both have shape (K, d), got {p.shape} and {a0.shape}")
    if x.ndim == 0 or x.shape[-1] != p.shape[-1]:
        raise ValueError(
            f"x has coordinate axis of size {x.shape[-1] if x.ndim else None}, "
            f"but the MLR expects {p.shape[-1]}"
        )
    c = curvature_to_c(curvature, work)
    p = pm._project(p, c, ball_eps(out))
    p2 = jnp.sum(p * p, axis=-1)  # (K,)
    bp = clamp_boundary(1 - c * p2)  # 1 − c‖p‖² = 2/λ_p
    a = bp[:, None] * a0  # transported normals
    a2 = jnp.sum(a * a, axis=-1)
    pa = jnp.sum(p * a, axis=-1)
    x2 = jnp.sum(x * x, axis=-1, keepdims=True)  # (..., 1)
    hi = jax.lax.Precision.HIGHEST  # full float32 products on GPU/TPU (no TF32 passes)
    xa = jnp.matmul(x, a.T, precision=hi)  # (..., K)
    xp = jnp.matmul(x, p.T, precision=hi)
    d2 = jnp.maximum(x2 + p2 - 2 * xp, 0)  # ‖x − p‖²
    bx = clamp_boundary(1 - c * x2)
    # With s = (−p) ⊕ x:  ‖a‖·2⟨s,a⟩/((1 − c‖s‖²)‖a‖) = 2((1 − c‖p‖²)(⟨x,a⟩ − ⟨p,a⟩)
    #   − c‖x − p‖²⟨p,a⟩) / ((1 − c‖p‖²)(1 − c‖x‖²)); the common denominator D cancels.
    z = 2 * (bp * (xa - pa) - c * d2 * pa) / (bp * bx)
    # λ_p‖a‖/√c · arsinh(√c z/‖a‖) = λ_p · z · arsinh_ratio(c z²/‖a‖²); 0 when a = 0.
    logits = (2 / bp) * z * arsinh_ratio(c * z * z / clamp_min(a2))
    return logits.astype(out)


#: Hyperbolic multinomial logistic regression (Ganea et al. 2018 §3).
poincare_mlr = Layer(_poincare_mlr_init, _poincare_mlr_apply)


# --------------------------------------------------------------------------------------
# Cross entropy
# --------------------------------------------------------------------------------------

_REDUCTIONS = ("mean", "sum", "none")


def _hyperbolic_cross_entropy(
    logits_or_params: ArrayLike | Params,
    x: ArrayLike | None,
    labels: ArrayLike,
    *,
    curvature: ArrayLike = -1.0,
    reduction: str = "mean",
) -> jax.Array:
    """Softmax cross entropy over ``poincare_mlr`` logits.

    loss = −log softmax(ζ(x))[label], ζ = ``poincare_mlr.apply(params, x)``.

    Args:
      logits_or_params: MLR params (dict with ``p``, ``a``) — then ``x`` are the points —
        or precomputed logits ``(..., K)`` (then ``x`` is ignored and may be None).
      x: points ``(..., d)`` when params are given.
      labels: integer class indices ``(...)`` in [0, K), or class probabilities ``(..., K)``.
      reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` (per-example losses).
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction={reduction!r} must be one of {_REDUCTIONS}")
    if isinstance(logits_or_params, dict):
        if x is None:
            raise ValueError("x=None: points are required when MLR params are given")
        logits = _poincare_mlr_apply(logits_or_params, x, curvature=curvature)
    else:
        (logits,), _, _ = as_float(("logits", logits_or_params))
    labels = jnp.asarray(labels)
    logp = jax.nn.log_softmax(logits.astype(jnp.promote_types(logits.dtype, jnp.float32)))
    if jnp.issubdtype(labels.dtype, jnp.integer):
        if labels.shape != logits.shape[:-1]:
            raise ValueError(
                f"labels of shape {labels.shape} must match the logits' batch shape "
                f"{logits.shape[:-1]}"
            )
        num_classes = logits.shape[-1]
        try:
            concrete = np.asarray(labels)
        except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
            concrete = None
        if (
            concrete is not None
            and concrete.size
            and (concrete.min() < 0 or concrete.max() >= num_classes)
        ):
            raise ValueError(
                f"labels must lie in [0, {num_classes}), got values in "
                f"[{concrete.min()}, {concrete.max()}]"
            )
        loss = -jnp.take_along_axis(logp, labels[..., None].astype(jnp.int32), axis=-1)[..., 0]
    elif jnp.issubdtype(labels.dtype, jnp.floating):
        if labels.shape != logits.shape:
            raise ValueError(
                f"probability labels of shape {labels.shape} must match logits {logits.shape}"
            )
        loss = -jnp.sum(labels * logp, axis=-1)
    else:
        raise ValueError(f"labels has unsupported dtype {labels.dtype}")
    loss = loss.astype(logits.dtype)
    if reduction == "mean":
        return jnp.mean(loss)
    if reduction == "sum":
        return jnp.sum(loss)
    return loss


#: Softmax cross entropy over hyperbolic MLR logits. ``init`` is ``poincare_mlr.init``; call it
#: (or ``apply``) as ``(logits_or_params, x, labels, *, curvature, reduction)``.
hyperbolic_cross_entropy = Layer(_poincare_mlr_init, _hyperbolic_cross_entropy)
