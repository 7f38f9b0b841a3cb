r"""Layers on the Poincaré ball: HNN (Ganea et al. 2018) and HNN++ (Shimizu et al. 2021).

Each layer is a ``Layer``: a pair of pure functions ``init(key, ...) -> params`` and
``apply(params, x, *, curvature)``; params are plain dicts of arrays (pytrees), so they go
through ``jit``, ``vmap``, ``grad`` and optax unchanged. Ball-valued parameters (biases,
hyperplane offsets) should be updated with a Riemannian optimizer; the others are Euclidean.

* ``mobius_linear`` — y = (W ⊗ x) ⊕ b = exp₀(W log₀ x) ⊕ b (Ganea et al.).
* ``poincare_mlr`` — hyperbolic multinomial logistic regression logits (Ganea et al.).
* ``hyperbolic_cross_entropy`` — softmax cross entropy over ``poincare_mlr`` logits.
* ``unidirectional_mlr`` — the HNN++ MLR, one Euclidean normal z_k and one scalar offset r_k
  per class (Shimizu et al. §3.1).
* ``poincare_linear`` — the HNN++ Poincaré fully connected layer (§3.2).
* ``beta_concat`` / ``beta_split`` — Poincaré β-concatenation and β-split (§3.3).

Every apply runs its math as one jitted computation (``_common.fused``),
so eager calls, and eager gradients, compile once per shape instead of op by op.

References: O. Ganea, G. Bécigneul, T. Hofmann, *Hyperbolic Neural Networks*, NeurIPS 2018
(arXiv:1805.09112), §3; R. Shimizu, Y. Mukuta, T. Harada, *Hyperbolic Neural Networks++*,
ICLR 2021 (arXiv:2006.08210), §3.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from spiraljax.geometry import poincare as pm
from spiraljax.geometry.guards import (
    _series_split,
    arsinh_ratio,
    as_float,
    ball_eps,
    clamp_boundary,
    clamp_min,
    curvature_to_c,
    safe_sqrt,
    sinh_ratio,
)
from spiraljax.geometry.layers._common import (
    HIGHEST,
    ArrayLike,
    Layer,
    Params,
    _check_features,
    _check_float_dtype,
    _check_last_axis,
    _check_param_shape,
    _check_params,
    _prepare,
    beta_ratio,
    fused,
)

__all__ = [
    "beta_concat",
    "beta_split",
    "hyperbolic_cross_entropy",
    "mobius_linear",
    "poincare_linear",
    "poincare_mlr",
    "unidirectional_mlr",
]


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
    _check_last_axis("the MLR", "x", x, p.shape[-1])
    c = curvature_to_c(curvature, work)
    return fused(_poincare_mlr_core, out, (("eps", ball_eps(out)),), x, p, a0, c)


def _poincare_mlr_core(x, p, a0, c, eps):
    p = pm._project(p, c, eps)
    p2 = jnp.sum(p * p, axis=-1)  # (K,)
    bp = clamp_boundary(1 - c * p2)  # 1 − c‖p‖² = 2/λ_p
    a = bp[:, None] * a0  # transported normals
    a2 = jnp.sum(a * a, axis=-1)
    pa = jnp.sum(p * a, axis=-1)
    x2 = jnp.sum(x * x, axis=-1, keepdims=True)  # (..., 1)
    xa = jnp.matmul(x, a.T, precision=HIGHEST)  # (..., K)
    xp = jnp.matmul(x, p.T, precision=HIGHEST)
    d2 = jnp.maximum(x2 + p2 - 2 * xp, 0)  # ‖x − p‖²
    bx = clamp_boundary(1 - c * x2)
    # With s = (−p) ⊕ x:  ‖a‖·2⟨s,a⟩/((1 − c‖s‖²)‖a‖) = 2((1 − c‖p‖²)(⟨x,a⟩ − ⟨p,a⟩)
    #   − c‖x − p‖²⟨p,a⟩) / ((1 − c‖p‖²)(1 − c‖x‖²)); the common denominator D cancels.
    z = 2 * (bp * (xa - pa) - c * d2 * pa) / (bp * bx)
    # λ_p‖a‖/√c · arsinh(√c z/‖a‖) = λ_p · z · arsinh_ratio(c z²/‖a‖²); 0 when a = 0.
    return (2 / bp) * z * arsinh_ratio(c * z * z / clamp_min(a2))


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


# --------------------------------------------------------------------------------------
# HNN++: unidirectional MLR and the Poincaré fully connected layer
# --------------------------------------------------------------------------------------

#: Beyond √c|v_k| = this, ``_poincare_fc_core`` scales w by e^{−shift} (sinh overflows
#: float32 near 89, its square near 44).
_SINH_SHIFT = 30.0


def _sinh_ratio_scaled(w, shift):
    """e^{−shift} sinh(√w)/√w for w ≥ 0 without overflow while √w − shift stays small."""
    small, ws, wd = _series_split(w)
    series = (1 + ws * (1 / 6 + ws * (1 / 120 + ws * (1 / 5040)))) * jnp.exp(-shift)
    root = jnp.sqrt(wd)
    return jnp.where(small, series, (jnp.exp(root - shift) - jnp.exp(-root - shift)) / (2 * root))


def _unidirectional_mlr_core(x, z, r, c):
    """v_k(x) of HNN++ eq. (6) for x ``(..., n)``, z ``(K, n)``, r ``(K,)`` → ``(..., K)``.

    v = (2‖z‖/√c) arsinh(√c B),  B = (2⟨x, ẑ⟩ cosh(2√c r) − (1 + c‖x‖²) sinh(2√c r)/√c)
    / (1 − c‖x‖²), i.e. λ_x⟨x, ẑ⟩cosh − (λ_x − 1) sinh/√c, written with ratios so that
    it is exact at c = 0 (v = 4(⟨x, z⟩ − r‖z‖)) and smooth in c.
    """
    zn = safe_sqrt(jnp.sum(z * z, axis=-1))  # (K,); gradient 0 at z = 0
    zhat = z / clamp_min(zn)[:, None]
    x2 = jnp.sum(x * x, axis=-1, keepdims=True)
    bx = clamp_boundary(1 - c * x2)
    xz = jnp.matmul(x, zhat.T, precision=HIGHEST)
    w = 4 * c * r * r  # (2√c r)²
    sr = sinh_ratio(w)  # sinh(2√c r)/(2√c r)
    cosh = jnp.sqrt(1 + w * sr * sr)  # cosh² = 1 + sinh²: no √c, exact at c = 0
    b = (2 * xz * cosh - (1 + c * x2) * (2 * r) * sr) / bx
    return 2 * zn * b * arsinh_ratio(c * b * b)


def _poincare_fc_core(x, z, r, c, eps):
    """HNN++ §3.2: y = w / (1 + √(1 + c‖w‖²)), w_k = sinh(√c v_k(x))/√c."""
    v = _unidirectional_mlr_core(x, z, r, c)
    cv2 = c * v * v
    # With w = e^s w̃: y = w̃ / (e^{−s} + √(e^{−2s} + c‖w̃‖²)) exactly; s = max√c|v| − T when
    # that is positive (no gradient: y does not depend on s) keeps w̃ finite.
    top = jax.lax.stop_gradient(jnp.max(cv2, axis=-1, keepdims=True))
    shift = jnp.maximum(safe_sqrt(top) - _SINH_SHIFT, 0)
    w = v * _sinh_ratio_scaled(cv2, shift)
    e = jnp.exp(-shift)
    y = w / (e + jnp.sqrt(e * e + c * jnp.sum(w * w, axis=-1, keepdims=True)))
    return pm._project(y, c, eps)


def _check_zr(params: Any, layer: str) -> tuple[int, int]:
    _check_params(params, ("z", "r"), layer)
    z_shape = np.shape(params["z"])
    if len(z_shape) != 2:
        raise ValueError(f"{layer} params['z'] must have shape (out, in), got {z_shape}")
    _check_param_shape(layer, "r", params["r"], (z_shape[0],))
    return z_shape


def _zr_prepare(layer, params, x, curvature):
    k, n = _check_zr(params, layer)
    _check_last_axis(layer, "x", x, n, f" (params['z'] has shape {(k, n)})")
    return _prepare(curvature, ("x", x), ("z", params["z"]), ("r", params["r"]))


def _unidirectional_mlr_init(
    key: jax.Array,
    in_features: int,
    num_classes: int,
    *,
    curvature: ArrayLike = -1.0,
    dtype: Any = jnp.float32,
) -> Params:
    """Normals ``z`` (K, n) ~ N(0, 1/n) and offsets ``r`` (K,) = 0 (HNN++'s initialisation
    at c = 1; ``curvature`` is accepted for a uniform signature)."""
    _check_features(in_features=in_features, num_classes=num_classes)
    dtype = _check_float_dtype(dtype)
    del curvature
    z = jax.random.normal(key, (num_classes, in_features), dtype) / float(np.sqrt(in_features))
    return {"z": z, "r": jnp.zeros((num_classes,), dtype)}


def _unidirectional_mlr_apply(
    params: Params, x: ArrayLike, *, curvature: ArrayLike = -1.0
) -> jax.Array:
    r"""HNN++ unidirectional MLR logits (Shimizu et al. 2021, §3.1):

    v_k(x) = (2‖z_k‖/√c) · arsinh( λ_x ⟨√c x, [z_k]⟩ cosh(2√c r_k) − (λ_x − 1) sinh(2√c r_k) ),

    λ_x = 2/(1 − c‖x‖²), [z_k] = z_k/‖z_k‖. This is Ganea's MLR (``poincare_mlr``) with the
    offset point q_k = exp₀(r_k [z_k]) on the ray of z_k and the normal z_k transported from
    the origin: v_k(x) = λ_{q_k}‖a_k‖ · (signed distance of x to the gyroplane), with one
    Euclidean vector z_k ∈ T₀ and one scalar r_k per class instead of a ball point and a
    normal (fewer parameters, all Euclidean). At c = 0: v_k = 4(⟨x, z_k⟩ − r_k‖z_k‖).

    Args:
      params: ``{"z": (K, n), "r": (K,)}``.
      x: points ``(..., n)``.

    Returns:
      Logits ``(..., K)``; a zero z_k gives v_k = 0 (finite gradients).
    """
    (x, z, r), c, out = _zr_prepare("unidirectional_mlr", params, x, curvature)
    return fused(_unidirectional_mlr_core, out, (), x, z, r, c)


#: HNN++ unidirectional MLR (Shimizu et al. 2021 §3.1).
unidirectional_mlr = Layer(_unidirectional_mlr_init, _unidirectional_mlr_apply)


def _poincare_linear_init(
    key: jax.Array,
    in_features: int,
    out_features: int,
    *,
    curvature: ArrayLike = -1.0,
    dtype: Any = jnp.float32,
) -> Params:
    """``z`` (out, in) ~ N(0, 1/(2·in·out)) and ``r`` (out,) = 0, as in HNN++'s code."""
    _check_features(in_features=in_features, out_features=out_features)
    dtype = _check_float_dtype(dtype)
    del curvature
    std = float((2 * in_features * out_features) ** -0.5)
    z = std * jax.random.normal(key, (out_features, in_features), dtype)
    return {"z": z, "r": jnp.zeros((out_features,), dtype)}


def _poincare_linear_apply(
    params: Params, x: ArrayLike, *, curvature: ArrayLike = -1.0
) -> jax.Array:
    r"""HNN++ Poincaré fully connected layer (Shimizu et al. 2021, §3.2):

    y = w / (1 + √(1 + c‖w‖²)),  w_k = (1/√c) sinh(√c v_k(x)),

    v_k the ``unidirectional_mlr`` logits. y is the point whose signed distance to the k-th
    coordinate hyperplane through the origin is v_k(x) (the paper's defining property), so
    every output coordinate is one hyperplane's response. At c = 0, y = v(x)/2 = 2(z x − r‖z‖).
    Overflowing sinh (√c|v_k| > 30) is rescaled; those outputs lie on the projection boundary.

    Args:
      params: ``{"z": (out, in), "r": (out,)}``.
      x: points ``(..., in)``.

    Returns:
      Points ``(..., out)``, projected into the ball.
    """
    (x, z, r), c, out = _zr_prepare("poincare_linear", params, x, curvature)
    return fused(_poincare_fc_core, out, (("eps", ball_eps(out)),), x, z, r, c)


#: HNN++ Poincaré fully connected layer (Shimizu et al. 2021 §3.2).
poincare_linear = Layer(_poincare_linear_init, _poincare_linear_apply)


# --------------------------------------------------------------------------------------
# HNN++: β-concatenation and β-split
# --------------------------------------------------------------------------------------


def _beta_concat_core(*args, sizes, eps):
    *xs, c = args
    n = sum(sizes)
    vs = [pm._logmap0(x, c) * beta_ratio(n, m) for x, m in zip(xs, sizes, strict=True)]
    shape = jnp.broadcast_shapes(*(v.shape[:-1] for v in vs))
    v = jnp.concatenate([jnp.broadcast_to(v, (*shape, v.shape[-1])) for v in vs], axis=-1)
    return pm._expmap0(v, c, eps)


def _beta_split_core(x, c, sizes, eps):
    n = sum(sizes)
    v = pm._logmap0(x, c)
    bounds = np.cumsum(sizes)[:-1].tolist()
    parts = jnp.split(v, bounds, axis=-1)
    return tuple(
        pm._expmap0(p * (1 / beta_ratio(n, m)), c, eps) for p, m in zip(parts, sizes, strict=True)
    )


def beta_concat(xs: Sequence[ArrayLike], *, curvature: ArrayLike = -1.0) -> jax.Array:
    r"""Poincaré β-concatenation (Shimizu et al. 2021, §3.3):

    y = exp₀( (β_n/β_{n_1}) log₀ x_1, …, (β_n/β_{n_N}) log₀ x_N ),  β_m = B(m/2, 1/2),

    n = Σ n_i. The scale keeps the expected norm of the concatenated tangent vector that of
    one n-dimensional input (concatenating in T₀ without it would push points outwards as
    blocks are added). Exactly the Euclidean concatenation, up to those factors, at c = 0.

    Args:
      xs: a non-empty sequence of points ``(..., n_i)``; leading axes broadcast.

    Returns:
      Points ``(..., n)``.
    """
    if isinstance(xs, jax.Array | np.ndarray) or not isinstance(xs, Sequence) or not xs:
        raise ValueError(f"xs must be a non-empty sequence of point arrays, got {type(xs)}")
    named = [(f"xs[{i}]", x) for i, x in enumerate(xs)]
    for name, x in named:
        if np.ndim(x) == 0:
            raise ValueError(f"{name} must have a coordinate axis, got a scalar")
    sizes = tuple(int(np.shape(x)[-1]) for x in xs)
    try:
        np.broadcast_shapes(*(np.shape(x)[:-1] for x in xs))
    except ValueError:
        shapes = [np.shape(x) for x in xs]
        raise ValueError(f"xs have shapes {shapes} whose leading axes do not broadcast") from None
    arrays, c, out = _prepare(curvature, *named)
    static = (("sizes", sizes), ("eps", ball_eps(out)))
    return fused(_beta_concat_core, out, static, *arrays, c)


def beta_split(
    x: ArrayLike, sections: int | Sequence[int], *, curvature: ArrayLike = -1.0
) -> list[jax.Array]:
    r"""Poincaré β-split (Shimizu et al. 2021, §3.3), the inverse of ``beta_concat``:

    (v_1, …, v_N) = log₀ x,  y_i = exp₀((β_{n_i}/β_n) v_i),  β_m = B(m/2, 1/2).

    Args:
      x: points ``(..., n)``.
      sections: the number N of equal parts (dividing n), or the sizes (n_1, …, n_N) ≥ 1
        summing to n.

    Returns:
      A list of N points ``(..., n_i)``.
    """
    if np.ndim(x) == 0:
        raise ValueError("x must have a coordinate axis, got a scalar")
    n = int(np.shape(x)[-1])
    if isinstance(sections, int | np.integer) and not isinstance(sections, bool):
        if sections < 1 or n % sections:
            raise ValueError(f"sections={sections} must be ≥ 1 and divide the size {n} of x")
        sizes = (n // int(sections),) * int(sections)
    else:
        sizes = tuple(int(s) for s in sections)
        if not sizes or min(sizes) < 1 or sum(sizes) != n:
            raise ValueError(
                f"sections={tuple(sections)} must be sizes ≥ 1 summing to the size {n} of x"
            )
    (x,), c, out = _prepare(curvature, ("x", x))
    return list(fused(_beta_split_core, out, (("sizes", sizes), ("eps", ball_eps(out))), x, c))
