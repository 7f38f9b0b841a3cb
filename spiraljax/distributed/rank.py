"""Exact Rank-K over an axis that is sharded across devices (see docs/concepts/distributed.md).

Each shard selects locally with ``spiraljax.kernels``, turns its local indices into
global ones, the candidates are all-gathered along the mesh axes that split the
selected axis, and one more selection merges them. Candidates are laid out shard by
shard, each shard's in rank order, so among equal values a lower position is a lower
global index: the merge's tie-break (lower index first) is the global one, and the
result is bit-equal to the unsharded ``spiraljax.kernels`` op (values and indices).

Per-shard candidate counts: ``min(k, shard)`` for top/bottom-k; for mid-k, whose
band starts at rank s = ⌊(n − k)/2⌋, each shard sends its ``min(s + k, shard)``
smallest entries — exact, but about half the data crosses the interconnect.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jax.sharding import NamedSharding, PartitionSpec

__all__ = ["bottomk", "midk", "topk"]


def _kernels():
    from spiraljax import kernels

    return kernels


def _mesh_axes_of(spec: PartitionSpec, axis: int) -> tuple[str, ...]:
    entries = tuple(spec) + (None,) * max(0, axis + 1 - len(tuple(spec)))
    names = entries[axis]
    if names is None:
        return ()
    return names if isinstance(names, tuple) else (names,)


def _select(kind: str, x: Any, k: int, axis: int) -> tuple[jax.Array, jax.Array]:
    kernels = _kernels()
    if isinstance(k, bool) or not isinstance(k, int):
        raise ValueError(f"k={k!r} must be an integer")
    x = jnp.asarray(x) if not isinstance(x, jax.Array) else x
    ndim = x.ndim
    if ndim == 0:
        raise ValueError("x must have at least one axis, got a scalar")
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis={axis} is out of range for an array of rank {ndim}")
    axis %= ndim
    n = x.shape[axis]
    if not 0 <= k <= n:
        raise ValueError(f"k={k} must lie in [0, {n}] (the size of axis {axis})")
    op = getattr(kernels, kind)
    sharding = getattr(x, "sharding", None)
    if not isinstance(sharding, NamedSharding):
        return op(x, k, axis=axis)
    names = _mesh_axes_of(sharding.spec, axis)
    if not names or k == 0:  # nothing to merge (XLA cannot all-gather empty blocks)
        return op(x, k, axis=axis)

    parts = 1
    for name in names:
        parts *= int(sharding.mesh.shape[name])
    in_spec = PartitionSpec(*(tuple(sharding.spec) + (None,) * (ndim - len(sharding.spec))))
    run = _sharded_select(kind, k, axis, n // parts, n, names, sharding.mesh, in_spec)
    return run(x)


@functools.lru_cache(maxsize=64)
def _sharded_select(kind, k, axis, local_n, n, names, mesh, in_spec):
    """The jit-compiled shard_map program for one (kind, k, layout); cached across calls."""
    kernels = _kernels()
    start = (n - k) // 2 if kind == "midk" else 0
    want = k + start
    keep = min(want, local_n)
    local_op = kernels.bottomk if kind in ("bottomk", "midk") else kernels.topk
    out_spec = PartitionSpec(*(None if i == axis else e for i, e in enumerate(in_spec)))

    def local(block):
        vals, idx = local_op(block, keep, axis=axis)
        offset = lax.axis_index(names) * local_n
        idx = idx + offset.astype(idx.dtype)
        vals = lax.all_gather(vals, names, axis=axis, tiled=True)
        idx = lax.all_gather(idx, names, axis=axis, tiled=True)
        mvals, pos = local_op(vals, want, axis=axis)
        midx = jnp.take_along_axis(idx, pos, axis=axis)
        if start:
            mvals = lax.slice_in_dim(mvals, start, start + k, axis=axis)
            midx = lax.slice_in_dim(midx, start, start + k, axis=axis)
        return mvals, midx

    return jax.jit(
        jax.shard_map(
            local, mesh=mesh, in_specs=(in_spec,), out_specs=(out_spec, out_spec), check_vma=False
        )
    )


def topk(x: Any, k: int, *, axis: int = -1) -> tuple[jax.Array, jax.Array]:
    """The k largest entries along ``axis`` of a sharded array, descending.

    Order and ties as ``spiraljax.kernels.topk`` (docs/concepts/rank-k.md).
    """
    return _select("topk", x, k, axis)


def bottomk(x: Any, k: int, *, axis: int = -1) -> tuple[jax.Array, jax.Array]:
    """The k smallest entries along ``axis`` of a sharded array, ascending."""
    return _select("bottomk", x, k, axis)


def midk(x: Any, k: int, *, axis: int = -1) -> tuple[jax.Array, jax.Array]:
    """The centred band of k ranks starting at ⌊(n − k)/2⌋, ascending."""
    return _select("midk", x, k, axis)
