"""XLA (pure ``lax``) Rank-K selection: the CPU path and the reference for every backend.

All kinds reduce to "the k largest *kind keys*, ties to the lower index" (see
``keys.kind_key``): Top-K on the signed key, Bottom-K on its complement ``~key``, and
Mid-K as ranks ``[s, s + k)`` of the complemented key with ``s = ⌊(n − k)/2⌋``.

Why ``lax.top_k`` on a float32 *carrier* on CPU: the XLA CPU TopK runtime compares
float32 through total-order integer keys with ties to the lower index, at O(n log k); on
int32 (and on 16-bit floats and float64) ``lax.top_k`` lowers to a full stable sort,
tens of times slower. ``keys.float32_carrier`` turns any int32 key into a float32 with
the same total order, so every ≤32-bit dtype takes the fast path. Elsewhere (GPU, TPU)
the int32 key goes to ``lax.top_k`` directly, which is exact (stable sort or RAFT with
ties handled by the integer key) though not fast — the GPU fast path is the Pallas kernel.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from spiraljax.kernels.keys import float32_carrier, kind_key


def _top_indices(key, k: int):
    """Indices of the k largest int keys along the last axis, ties to the lower index."""
    if key.dtype == jnp.int32:

        def cpu(key):
            return lax.top_k(float32_carrier(key), k)[1]

        def other(key):
            return lax.top_k(key, k)[1]

        return lax.platform_dependent(key, cpu=cpu, default=other)
    # int64 keys (float64 input): a stable sort, which is what lax.top_k does anyway.
    iota = lax.broadcasted_iota(jnp.int32, key.shape, key.ndim - 1)
    _, idx = lax.sort((~key, iota), dimension=key.ndim - 1, num_keys=1, is_stable=True)
    return idx[..., :k]


def select_indices(x, k: int, kind: str):
    """Indices (int32, shape ``x.shape[:-1] + (k,)``) selected along the last axis.

    Output order: Top-K descending, Bottom-K and Mid-K ascending (in the total order),
    equal keys by increasing index.
    """
    n = x.shape[-1]
    if kind == "top" and x.dtype == jnp.float32:
        # float32 without NaN is already in the total order the CPU TopK runtime uses
        # (integer compare of the bits, ties to the lower index): skip the key pass then.
        # NaNs must be canonicalised first so that different payloads tie by index.
        def cpu(x):
            def keyed(x):
                return lax.top_k(float32_carrier(kind_key(x, kind)), k)[1]

            return lax.cond(jnp.any(x != x), keyed, lambda x: lax.top_k(x, k)[1], x)

        def other(x):
            return _top_indices(kind_key(x, kind), k)

        return lax.platform_dependent(x, cpu=cpu, default=other)
    key = kind_key(x, kind)
    if kind == "mid":
        s = (n - k) // 2
        return _top_indices(key, s + k)[..., s:]
    return _top_indices(key, k)
