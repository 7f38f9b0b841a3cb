r"""Poincaré multi-head attention (HNN++, Shimizu et al. 2021, §3.5).

Queries, keys and values are Poincaré fully connected layers of the inputs, each β-split
into H heads of n/H coordinates. Head h scores query i against key j by the negative
distance, α^h_ij = softmax_j(−τ_h d(q^h_i, k^h_j)) (Gulcehre et al. 2019, §3: the
bias −γ of their f(−τ d − γ) cancels in the softmax), and aggregates the values by the
Möbius gyromidpoint

m^h_i = ½ ⊗ ( Σ_j α^h_ij λ_{v_j} v^h_j / Σ_j α^h_ij (λ_{v_j} − 1) ),

the weighted Einstein midpoint written in the ball (``weighted_midpoint``). The heads are
β-concatenated and passed through an output Poincaré FC layer.

References: R. Shimizu, Y. Mukuta, T. Harada, *Hyperbolic Neural Networks++*, ICLR 2021,
§3.5; C. Gulcehre et al., *Hyperbolic Attention Networks*, ICLR 2019, §3.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from spiraljax.geometry import poincare as pm
from spiraljax.geometry.guards import as_float, ball_eps, clamp_boundary, curvature_to_c
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
    beta_ratio,
    fused,
)
from spiraljax.geometry.layers.poincare import _check_zr, _poincare_fc_core, _poincare_linear_init

__all__ = ["poincare_attention"]

_PROJECTIONS = ("q", "k", "v", "o")


def _poincare_attention_init(
    key: jax.Array,
    embed_dim: int,
    num_heads: int,
    *,
    context_dim: int | None = None,
    curvature: ArrayLike = -1.0,
    dtype: Any = jnp.float32,
) -> Params:
    """Four ``poincare_linear`` params ``q`` (n → n), ``k``, ``v`` (context_dim → n), ``o``
    (n → n), and inverse temperatures ``tau`` (H,) = 1. ``num_heads`` must divide n."""
    _check_features(embed_dim=embed_dim, num_heads=num_heads)
    if embed_dim % num_heads:
        raise ValueError(f"num_heads={num_heads} must divide embed_dim={embed_dim}")
    context_dim = embed_dim if context_dim is None else context_dim
    _check_features(context_dim=context_dim)
    dtype = _check_float_dtype(dtype)
    keys = jax.random.split(key, 4)
    dims = {"q": embed_dim, "k": context_dim, "v": context_dim, "o": embed_dim}
    params = {
        name: _poincare_linear_init(k, dims[name], embed_dim, curvature=curvature, dtype=dtype)
        for name, k in zip(_PROJECTIONS, keys, strict=True)
    }
    params["tau"] = jnp.ones((num_heads,), dtype)
    return params


def _split_heads(y, c, heads, eps):
    # β-split of (..., L, n) into H heads, as (..., H, L, n/H).
    n = y.shape[-1]
    u = pm._logmap0(y, c).reshape(*y.shape[:-1], heads, n // heads)
    u = u * (1 / beta_ratio(n, n // heads))
    return jnp.swapaxes(pm._expmap0(u, c, eps), -2, -3)


def _merge_heads(u, c, eps):
    # β-concatenation of heads given by their log₀ (..., H, L, n/H) into points (..., L, n).
    heads, dh = u.shape[-3], u.shape[-1]
    u = jnp.swapaxes(u, -2, -3) * beta_ratio(heads * dh, dh)
    return pm._expmap0(u.reshape(*u.shape[:-2], heads * dh), c, eps)


def _gyromidpoint_log0(alpha, v, c):
    # log₀ of the gyromidpoint m = ½ ⊗ p, p = α·(λv) / α·(λ − 1): log₀ m = ½ log₀ p, so the
    # β-concatenation that follows needs no Möbius scalar multiplication. Two matrix
    # products over the keys, no (Lq, Lk, d) array.
    lam = 2 / clamp_boundary(1 - c * jnp.sum(v * v, axis=-1, keepdims=True))
    num = jnp.matmul(alpha, lam * v, precision=HIGHEST)
    den = jnp.matmul(alpha, lam - 1, precision=HIGHEST)
    # den ≥ Σ_j α_ij; a fully masked row has α = 0 and gives the origin.
    return 0.5 * pm._logmap0(num / jnp.maximum(den, 1e-10), c)


def _attention_core(x, ctx, params, mask, c, *, heads, eps, has_mask, return_weights):
    self_attention = ctx is None
    ctx = x if self_attention else ctx
    batch = jnp.broadcast_shapes(x.shape[:-2], ctx.shape[:-2])
    x = jnp.broadcast_to(x, (*batch, *x.shape[-2:]))
    ctx = jnp.broadcast_to(ctx, (*batch, *ctx.shape[-2:]))

    def fcs(names, inp):
        # Projections of one input, vmapped over stacked params: one traced FC, not several.
        z = jnp.stack([params[n]["z"] for n in names])
        r = jnp.stack([params[n]["r"] for n in names])

        def one(z, r):
            return _split_heads(_poincare_fc_core(inp, z, r, c, eps), c, heads, eps)

        return list(jax.vmap(one)(z, r))  # (..., H, L, dh) each

    if self_attention:
        q, k, v = fcs(("q", "k", "v"), x)
    else:
        (q,), (k, v) = fcs(("q",), x), fcs(("k", "v"), ctx)
    d = pm._pairwise_dist(q, k, c, True, False)  # (..., H, Lq, Lk), exact near points
    logits = -params["tau"][:, None, None] * d
    if has_mask:
        mask = jnp.broadcast_to(mask, logits.shape)
        low = jnp.asarray(jnp.finfo(logits.dtype).min / 2, logits.dtype)
        alpha = jax.nn.softmax(jnp.where(mask, logits, low), axis=-1) * mask
    else:
        alpha = jax.nn.softmax(logits, axis=-1)
    m = _merge_heads(_gyromidpoint_log0(alpha, v, c), c, eps)
    y = _poincare_fc_core(m, params["o"]["z"], params["o"]["r"], c, eps)
    return (y, alpha) if return_weights else y


def _poincare_attention_apply(
    params: Params,
    x: ArrayLike,
    context: ArrayLike | None = None,
    *,
    curvature: ArrayLike = -1.0,
    mask: ArrayLike | None = None,
    return_weights: bool = False,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    r"""Poincaré multi-head attention (Shimizu et al. 2021, §3.5; module docstring).

    For head h: q^h = β-split(F_q(x))_h, k^h, v^h likewise from the context,
    α^h_ij = softmax_j(−τ_h d(q^h_i, k^h_j)) over the unmasked keys, m^h_i the gyromidpoint
    of the v^h_j with weights α^h_ij, and y = F_o(β-concat(m^1, …, m^H)).

    Args:
      params: from ``poincare_attention.init``.
      x: queries ``(..., Lq, n)`` on the ball.
      context: keys and values ``(..., Lk, context_dim)``; default ``x`` (self-attention).
        Leading axes of ``x`` and ``context`` broadcast.
      mask: optional boolean array broadcasting to ``(..., H, Lq, Lk)``; True = attend. A
        query with no key to attend to gets the origin as its midpoint.
      return_weights: also return the attention weights α ``(..., H, Lq, Lk)``.

    Returns:
      Points ``(..., Lq, n)`` (and α when ``return_weights``).
    """
    layer = "poincare_attention"
    _check_params(params, (*_PROJECTIONS, "tau"), layer)
    shapes = {name: _check_zr(params[name], f"{layer} {name!r}") for name in _PROJECTIONS}
    n = shapes["q"][0]
    heads = int(np.shape(params["tau"])[0]) if np.ndim(params["tau"]) == 1 else None
    if heads is None or n % heads:
        raise ValueError(
            f"{layer} params['tau'] must have shape (H,) with H dividing {n}, "
            f"got {np.shape(params['tau'])}"
        )
    ctx_dim = shapes["k"][1]
    _check_param_shape(layer, "q z", params["q"]["z"], (n, n))
    _check_param_shape(layer, "k z", params["k"]["z"], (n, ctx_dim))
    _check_param_shape(layer, "v z", params["v"]["z"], (n, ctx_dim))
    _check_param_shape(layer, "o z", params["o"]["z"], (n, n))
    self_attention = context is None
    context = x if self_attention else context
    for name, value in (("x", x), ("context", context)):
        if np.ndim(value) < 2:
            raise ValueError(f"{name} must have shape (..., L, d), got {np.shape(value)}")
    _check_last_axis(layer, "x", x, n, " (embed_dim)")
    _check_last_axis(layer, "context", context, ctx_dim, " (context_dim)")
    try:
        batch = np.broadcast_shapes(np.shape(x)[:-2], np.shape(context)[:-2])
    except ValueError:
        raise ValueError(
            f"x {np.shape(x)} and context {np.shape(context)} have leading axes that do not "
            "broadcast"
        ) from None
    scores = (*batch, heads, np.shape(x)[-2], np.shape(context)[-2])
    if mask is not None:
        mask = jnp.asarray(mask)
        if mask.dtype != jnp.bool_:
            raise ValueError(f"mask has dtype {mask.dtype}; pass a boolean array (True = attend)")
        try:
            if np.broadcast_shapes(mask.shape, scores) != scores:
                raise ValueError
        except ValueError:
            raise ValueError(
                f"mask of shape {mask.shape} does not broadcast to the scores (..., H, Lq, Lk) "
                f"= {scores}"
            ) from None
    leaves, tree = jax.tree.flatten(params)
    (x, context, *leaves), out, work = as_float(
        ("x", x),
        ("context", context),
        *((f"params leaf {i}", leaf) for i, leaf in enumerate(leaves)),
    )
    context = None if self_attention else context
    c = curvature_to_c(curvature, work)
    static = (
        ("heads", heads),
        ("eps", ball_eps(out)),
        ("has_mask", mask is not None),
        ("return_weights", bool(return_weights)),
    )
    params = jax.tree.unflatten(tree, leaves)
    return fused(_attention_core, out, static, x, context, params, mask, c)


#: HNN++ Poincaré multi-head attention (Shimizu et al. 2021 §3.5).
poincare_attention = Layer(_poincare_attention_init, _poincare_attention_apply)
