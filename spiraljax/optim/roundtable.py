"""``roundtable``: scale the top-k / middle / bottom-k magnitude bands of each gradient leaf.

SpiralTorch's trainer split the output gradient into three bands — the k entries of
largest magnitude ("above"), the k of smallest ("beneath") and the rest ("here") — and
weighted them. This is that idea as an explicit optax transform over every leaf: with
the entries of a leaf ordered by decreasing |g| (total order, NaN largest, equal
magnitudes by lower flat index),

    u = w_top · g on the first k_top entries,
        w_bottom · g on the last k_bottom entries,
        w_mid · g elsewhere,

with ``k_bottom`` capped at ``size − k_top`` so the bands never overlap. Bands are
selected exactly with Rank-K (``spiraljax.kernels.topk`` / ``bottomk``); the bottom band
is taken on the reversed leaf so its tie-breaking is the mirror of the top band's and the
three bands partition the leaf.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from spiraljax.kernels import bottomk, topk


class RoundtableState(NamedTuple):
    """Steps taken, and Σ|g| of the last update's (top, middle, bottom) bands."""

    count: jax.Array
    band_energy: jax.Array


def _band_size(spec, size: int, name: str) -> int:
    if isinstance(spec, bool) or not isinstance(spec, (int, float)):
        raise ValueError(f"{name}={spec!r} must be an int count or a float fraction")
    if isinstance(spec, float):
        if not 0.0 <= spec <= 1.0:
            raise ValueError(f"{name}={spec} must be a fraction in [0, 1]")
        return math.ceil(spec * size)
    if spec < 0:
        raise ValueError(f"{name}={spec} must be ≥ 0")
    return min(spec, size)


def roundtable(
    top_k=8,
    bottom_k=8,
    weights=(1.0, 1.0, 1.0),
    *,
    implementation: str = "auto",
) -> optax.GradientTransformation:
    """Scale each leaf's top-k / middle / bottom-k bands (by |g|) by ``weights``.

    Args:
      top_k: entries in the top band per leaf — an int (capped at the leaf size) or a
        float fraction of the leaf size (rounded up).
      bottom_k: same for the bottom band, capped at ``size − top band``.
      weights: ``(w_top, w_mid, w_bottom)``.
      implementation: Rank-K backend.

    Returns:
      ``optax.GradientTransformation`` with state ``RoundtableState``.
    """
    if len(weights) != 3:
        raise ValueError(f"weights={weights!r} must be (top, middle, bottom)")
    _band_size(top_k, 1, "top_k")
    _band_size(bottom_k, 1, "bottom_k")

    def init_fn(params):
        del params
        return RoundtableState(jnp.zeros([], jnp.int32), jnp.zeros([3], jnp.float32))

    def split(g):
        flat = g.reshape(-1)
        n = flat.size
        kt = _band_size(top_k, n, "top_k")
        kb = min(_band_size(bottom_k, n, "bottom_k"), n - kt)
        mag = jnp.abs(flat)
        band = jnp.ones([n], jnp.int32)  # 0 top, 1 middle, 2 bottom
        if kt:
            band = band.at[topk(mag, kt, implementation=implementation)[1]].set(0)
        if kb:
            rev = bottomk(mag[::-1], kb, implementation=implementation)[1]
            band = band.at[n - 1 - rev].set(2)
        w = jnp.asarray(weights, g.dtype)[band]
        energy = jnp.stack([jnp.sum(jnp.where(band == b, mag, 0)) for b in range(3)])
        return (w * flat).reshape(g.shape), energy.astype(jnp.float32)

    def update_fn(updates, state, params=None):
        del params
        leaves, treedef = jax.tree_util.tree_flatten(updates)
        out, energy = [], jnp.zeros([3], jnp.float32)
        for g in leaves:
            if g.size == 0:
                out.append(g)
                continue
            u, e = split(g)
            out.append(u)
            energy = energy + e
        new = RoundtableState(state.count + 1, energy)
        return jax.tree_util.tree_unflatten(treedef, out), new

    return optax.GradientTransformation(init_fn, update_fn)
