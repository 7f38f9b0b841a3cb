r"""Fully hyperbolic layers on the hyperboloid (Lorentz model, points ``(..., d+1)``).

* ``lorentz_linear`` — the Lorentz linear layer of Chen et al. 2022 (§3.2): one matrix on
  the whole ambient vector, the time coordinate from a scaled sigmoid, the space part
  rescaled onto the hyperboloid (no exp/log maps).
* ``lorentz_norm`` — layer normalisation of the space part, time coordinate re-derived.
* ``lorentz_activation`` — an activation of the space part, time coordinate re-derived.

As in ``spiraljax.geometry.lorentz``, inputs are read by their spatial part x_s (x₀ is
recomputed from the constraint ⟨x, x⟩_L = −1/c) and ``curvature`` K < 0 (K = 0 raises: the
hyperboloid has no point there). Sizes are manifold dimensions d: a layer from d_in to
d_out maps points with d_in + 1 coordinates to points with d_out + 1.

References: W. Chen et al., *Fully Hyperbolic Neural Networks*, ACL 2022 (arXiv:2105.14686),
§3.2; A. Bdeir, K. Schwethelm, N. Landwehr, *Fully Hyperbolic Convolutional Neural Networks
for Computer Vision*, ICLR 2024 (activations on the space part); M. Yang et al.,
*Hypformer*, KDD 2024 (layer normalisation on the space part).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from spiraljax.geometry import lorentz as lm
from spiraljax.geometry.guards import clamp_min
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
    fused,
)

__all__ = ["lorentz_activation", "lorentz_linear", "lorentz_norm"]


def _dim_hint(d: int) -> str:
    return f" (points of the {d}-dimensional hyperboloid have d+1 = {d + 1} coordinates)"


def _prep(curvature, layer, x, dim, params=()):
    """Check x against manifold dimension ``dim`` (d+1 coordinates); cast; c > 0."""
    _check_last_axis(layer, "x", x, dim + 1, _dim_hint(dim))
    arrays, c, out, _ = lm._prep(curvature, points=(("x", x),), others=params)
    return arrays, c, out


def _lorentz_linear_init(
    key: jax.Array,
    in_dim: int,
    out_dim: int,
    *,
    curvature: ArrayLike = -1.0,
    scale: float = 10.0,
    dtype: Any = jnp.float32,
) -> Params:
    """``weight`` (d_out+1, d_in+1) ~ U(±√(6/(d_in + d_out + 2))) (Glorot), ``bias``
    (d_out+1,) = 0 and ``log_scale`` = log(scale) (λ = 10 as in Chen et al.'s code)."""
    _check_features(in_dim=in_dim, out_dim=out_dim)
    dtype = _check_float_dtype(dtype)
    if not scale > 0:
        raise ValueError(f"scale={scale} must be > 0")
    del curvature
    limit = float(np.sqrt(6.0 / (in_dim + out_dim + 2)))
    weight = jax.random.uniform(key, (out_dim + 1, in_dim + 1), dtype, -limit, limit)
    return {
        "weight": weight,
        "bias": jnp.zeros((out_dim + 1,), dtype),
        "log_scale": jnp.asarray(np.log(scale), dtype),
    }


def _lorentz_linear_core(x, w, b, log_scale, c, *, eps):
    x = lm._project(x, c)  # x₀ recomputed from the spatial part
    h = jnp.matmul(x, w.T, precision=HIGHEST) + b  # (..., d_out + 1)
    # y₀ = λσ(h₀) + (1 + ε)/√c, so y₀ − 1/√c = λσ(h₀) + ε/√c > 0 and
    # ‖y_s‖² = y₀² − 1/c = (y₀ − 1/√c)(y₀ + 1/√c) without cancellation.
    inv = jax.lax.rsqrt(c)
    gap = jnp.exp(log_scale) * jax.nn.sigmoid(h[..., :1]) + eps * inv
    radius = jnp.sqrt(gap * (gap + 2 * inv))
    u = h[..., 1:]
    un = lm._robust_norm(u)
    return lm._project_s(radius * u / clamp_min(un, lm._floor(u.dtype)), c)


def _lorentz_linear_apply(
    params: Params, x: ArrayLike, *, curvature: ArrayLike = -1.0, eps: float = 0.1
) -> jax.Array:
    r"""Lorentz linear layer (Chen et al. 2022, §3.2):

    h = W x + b,  y₀ = λ σ(h₀) + (1 + ε)/√c,  y_s = √(y₀² − 1/c) · h_s / ‖h_s‖,

    with W ``(d_out+1, d_in+1)`` acting on the whole point x = (x₀, x_s), its first row
    (v, b′) giving the time coordinate h₀ = vᵀx + b′, λ = exp(``log_scale``) > 0 learnable.
    Chen et al. write the offset as ε > 1/√c (their code: 1.1 at c = 1); here it is
    (1 + ε)/√c so that it stays valid for a learnable c, and ``eps`` = 0.1 gives their 1.1.
    y lies on the hyperboloid by construction, with no exp/log map. (Their h(·) — dropout
    or an activation before W — is left to the caller: compose with ``lorentz_activation``.)

    Args:
      params: ``{"weight": (d_out+1, d_in+1), "bias": (d_out+1,), "log_scale": ()}``.
      x: points ``(..., d_in+1)``.
      eps: ε > 0 of the time offset.

    Returns:
      Points ``(..., d_out+1)``.
    """
    layer = "lorentz_linear"
    _check_params(params, ("weight", "bias", "log_scale"), layer)
    w_shape = tuple(np.shape(params["weight"]))
    if len(w_shape) != 2 or min(w_shape) < 2:
        raise ValueError(f"{layer} params['weight'] must be (d_out+1, d_in+1), got {w_shape}")
    _check_param_shape(layer, "bias", params["bias"], (w_shape[0],))
    _check_param_shape(layer, "log_scale", params["log_scale"], ())
    if not eps > 0:
        raise ValueError(f"eps={eps} must be > 0")
    named = (("weight", params["weight"]), ("bias", params["bias"]))
    named += (("log_scale", params["log_scale"]),)
    (x, w, b, s), c, out = _prep(curvature, layer, x, w_shape[1] - 1, named)
    return fused(_lorentz_linear_core, out, (("eps", float(eps)),), x, w, b, s, c)


#: Lorentz linear layer (Chen et al. 2022 §3.2).
lorentz_linear = Layer(_lorentz_linear_init, _lorentz_linear_apply)


def _lorentz_norm_init(
    key: jax.Array, dim: int, *, curvature: ArrayLike = -1.0, dtype: Any = jnp.float32
) -> Params:
    """``gamma`` (d,) = 1 and ``beta`` (d,) = 0 (``key`` unused: a deterministic init)."""
    _check_features(dim=dim)
    dtype = _check_float_dtype(dtype)
    del key, curvature
    return {"gamma": jnp.ones((dim,), dtype), "beta": jnp.zeros((dim,), dtype)}


def _lorentz_norm_core(x, gamma, beta, c, *, eps):
    s, _, _ = lm._point(x, c)
    mean = jnp.mean(s, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(s - mean), axis=-1, keepdims=True)
    return lm._project_s((s - mean) * jax.lax.rsqrt(var + eps) * gamma + beta, c)


def _lorentz_norm_apply(
    params: Params, x: ArrayLike, *, curvature: ArrayLike = -1.0, eps: float = 1e-5
) -> jax.Array:
    r"""Lorentz layer normalisation: LayerNorm of the space part, time re-derived.

    y_s = γ ⊙ (x_s − mean(x_s)) / √(var(x_s) + ε) + β,  y₀ = √(1/c + ‖y_s‖²),

    mean and variance over the d spatial coordinates of each point (the space-part
    convention of Hypformer's HypLayerNorm, Yang et al. 2024). The output is on the
    hyperboloid by construction.

    Args:
      params: ``{"gamma": (d,), "beta": (d,)}``.
      x: points ``(..., d+1)``.

    Returns:
      Points ``(..., d+1)``.
    """
    layer = "lorentz_norm"
    _check_params(params, ("gamma", "beta"), layer)
    g_shape = tuple(np.shape(params["gamma"]))
    if len(g_shape) != 1:
        raise ValueError(f"{layer} params['gamma'] must have shape (d,), got {g_shape}")
    _check_param_shape(layer, "beta", params["beta"], g_shape)
    if not eps > 0:
        raise ValueError(f"eps={eps} must be > 0")
    named = (("gamma", params["gamma"]), ("beta", params["beta"]))
    (x, g, b), c, out = _prep(curvature, layer, x, g_shape[0], named)
    return fused(_lorentz_norm_core, out, (("eps", float(eps)),), x, g, b, c)


#: Layer normalisation of the space part, time re-derived (Lorentz model).
lorentz_norm = Layer(_lorentz_norm_init, _lorentz_norm_apply)


def _activation_core(x, c, *, fn):
    s, _, _ = lm._point(x, c)
    return lm._project_s(fn(s), c)


def lorentz_activation(
    x: ArrayLike,
    fn: Callable[[jax.Array], jax.Array] = jax.nn.relu,
    *,
    curvature: ArrayLike = -1.0,
) -> jax.Array:
    r"""Activation on the hyperboloid: y_s = f(x_s), y₀ = √(1/c + ‖f(x_s)‖²).

    The space-part convention (Bdeir et al. 2024; Chen et al. 2022 §3.2 apply f inside the
    linear layer): f acts on the spatial coordinates and the time coordinate is re-derived
    from the constraint, so no exp/log map is needed and y is on the hyperboloid. A plain
    function (no parameters).

    Args:
      x: points ``(..., d+1)``.
      fn: an elementwise (or any shape-preserving) function of the spatial part; it must be
        hashable (module-level functions and ``functools.partial`` objects are).

    Returns:
      Points ``(..., d+1)``.
    """
    if not callable(fn):
        raise ValueError(f"fn={fn!r} must be callable")
    (x,), c, out, _ = lm._prep(curvature, points=(("x", x),))
    return fused(_activation_core, out, (("fn", fn),), x, c)
