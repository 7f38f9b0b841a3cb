"""Exact Top/Bottom-K by sampled threshold + one filtering pass (``Choice.sample > 0``).

The radix kernels of ``radix.py`` read a row once per radix pass (about twice with
filtering). For continuous data a row can be reduced to a few hundred candidates with a
*single* read, as in sample-select / Floyd–Rivest:

1. **Threshold** (in the filter kernel): ``S = Choice.sample`` keys of the row, in
   blocks of ``SAMPLE_BLOCK`` contiguous entries spread evenly along it, are loaded into
   registers and ``thr``, the ``j``-th largest of them, is found by a bitwise search
   (``bits`` counting steps), with ``j`` chosen so that about ``j·n/S`` keys of the row —
   comfortably more than ``k`` — are ``≥ thr`` (``sample_rank``). Every program of
   a row computes the same ``thr`` from the same sample.
2. **Filter** (same kernel): a grid of ``rows × chunks`` programs reads the row once and
   writes every key ``≥ thr`` with its index, in index order, to the chunk's segment of
   ``cap`` slots (exclusive prefix sums give the slots; blocks without a candidate skip
   the prefix sum), and the chunk's count.
3. **Select** (XLA): unused slots of the ``chunks·cap`` candidate slots get
   ``INT32_MIN``, below every candidate; a stable sort of the slot keys (descending)
   orders the candidates by key and, among equal keys, by slot — which is index order —
   and the first k slots are mapped back to row indices. (Packing the segments and
   running the radix kernel on them instead measured slower on the H200 for the large
   candidate sets of batch-1 rows.)

Exactness does not depend on the sample. If ``#{key ≥ thr} ≥ k`` then the k-th largest
key ``T`` is ``≥ thr``, so every key ``> T`` and every tie ``== T`` is a candidate, and
candidates keep index order — the selection over them is the selection over the row. The
result is used only when every row has ``≥ k`` candidates, no segment overflowed and
``thr > INT32_MIN`` (so filler slots can never be chosen); otherwise the whole batch
takes the radix path (``fallback``). Data where a sample says little about the row —
heavy ties, rows sorted so that the survivors crowd into one chunk — take that fallback
and run at the radix path's speed; random-looking data takes the single-read path.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.experimental import pallas as pl

from spiraljax.kernels.keys import INT32_MIN, key_bits, kind_key
from spiraljax.kernels.pallas.lowering import (
    I32,
    compiler_params,
    masked_load,
    masked_store,
    to_signed,
)

#: contiguous entries per sample block (a whole number of 32-byte sectors for 4-byte keys).
SAMPLE_BLOCK = 64


def applicable(n: int, k: int, kind: str, sample: int) -> bool:
    """Whether the sampled path can run: Top/Bottom-K, a sample of ≤ n/4 entries."""
    return kind != "mid" and sample > 0 and 4 * _sample_size(n, sample) <= n and 0 < k < n


def _sample_size(n: int, sample: int) -> int:
    blocks = max(1, min(sample // SAMPLE_BLOCK, n // SAMPLE_BLOCK))
    return blocks * SAMPLE_BLOCK


def sample_rank(n: int, k: int, s: int) -> int:
    """Rank ``j`` (1-based, from the top) of the sampled threshold.

    About ``μ = k·s/n`` sample keys lie above the row's k-th key; ``j = ⌈μ + 4√μ + 8⌉``
    makes ``#{key ≥ thr} < k`` (the fallback) vanishingly rare for exchangeable data.
    """
    mu = k * s / n
    return int(min(s, math.ceil(mu + 4 * math.sqrt(mu) + 8)))


def _pow2(v: float) -> int:
    return 1 << max(4, math.ceil(v) - 1).bit_length()


def capacity(n: int, k: int, s: int, chunks: int) -> int:
    """Slots per chunk: a high quantile of the candidates a chunk receives.

    The count of keys ``≥ thr`` in a row is about ``(n/s)·Gamma(j)``, so a row gets
    ``(j + 6√j + 10)·n/s`` and a chunk its share plus Poisson slack (a power of two).
    Exceeding it means the fallback, never a wrong answer.
    """
    j = sample_rank(n, k, s)
    m = (j + 6 * math.sqrt(j) + 10) * n / s / chunks
    return _pow2(m + 5 * math.sqrt(m) + 16)


def _chunks(n, choice):
    ct = choice.compact_tile
    tiles = pl.cdiv(n, ct)
    per = pl.cdiv(tiles, min(choice.chunks, tiles))
    return per * ct, pl.cdiv(tiles, per)


def _sample_threshold(x_ref, row, *, n, kind, nbits, s, j):
    """The j-th largest of the row's sample keys (signed kind key), by bitwise search."""
    blocks = s // SAMPLE_BLOCK
    stride = n // blocks
    i = lax.broadcasted_iota(I32, (s,), 0)
    cols = (i // SAMPLE_BLOCK) * stride + i % SAMPLE_BLOCK
    key = kind_key(_gather(x_ref, row, cols), kind)
    prefix = I32(0)  # unsigned bit pattern of the threshold found so far
    for b in range(nbits - 1, -1, -1):
        bit = np.array(1 << b, np.uint32).view(np.int32)
        cand = prefix | bit
        cnt = jnp.sum((key >= to_signed(cand, nbits)).astype(I32), dtype=I32)
        prefix = jnp.where(cnt >= j, cand, prefix)
    return to_signed(prefix, nbits)


def _gather(ref, row, cols):
    from jax.experimental.pallas import triton as plt

    return plt.load(ref.at[row, cols])


def _filter_kernel(
    x_ref, ok_ref, oi_ref, cnt_ref, t_ref, *, n, kind, nbits, s, j, clen, cap, width, skip
):
    row, c = pl.program_id(0), pl.program_id(1)
    thr = _sample_threshold(x_ref, row, n=n, kind=kind, nbits=nbits, s=s, j=j)
    t_ref[row, c] = thr
    lo = c * clen
    hi = jnp.minimum(lo + clen, n)
    lane = lax.broadcasted_iota(I32, (width,), 0)
    dump = ok_ref.shape[1] - width + lane  # private slots for unselected lanes

    def body(t, m):
        v, cols, mask = masked_load(x_ref, row, lo + t * width, width, n)
        key = kind_key(v, kind)
        sel = (key >= thr) & mask & (cols < hi)
        si = sel.astype(I32)
        found = jnp.sum(si, dtype=I32)

        def write():
            pos = m + jnp.cumsum(si, dtype=I32) - si
            keep = sel & (pos < cap)
            slot = jnp.where(keep, c * cap + pos, dump)
            masked_store(ok_ref, row, slot, key, keep)
            masked_store(oi_ref, row, slot, cols, keep)

        if skip:
            lax.cond(found > 0, write, lambda: None)
        else:
            write()
        return m + found

    ntiles = ((hi - lo + width - 1) // width).astype(I32)
    cnt_ref[row, c] = lax.fori_loop(I32(0), ntiles, body, I32(0))


#: skip the prefix sum and stores of blocks without candidates (``lax.cond`` per block).
SKIP_EMPTY = True


def filter_candidates(x2d, k, kind, choice, interpret):
    """Stages 1–2: segment keys/indices ``(rows, chunks·cap)``, counts, thresholds."""
    rows, n = x2d.shape
    s = _sample_size(n, choice.sample)
    clen, nch = _chunks(n, choice)
    cap = capacity(n, k, s, nch)
    width = choice.compact_tile
    kernel = functools.partial(
        _filter_kernel,
        n=n,
        kind=kind,
        nbits=key_bits(x2d.dtype),
        s=s,
        j=sample_rank(n, k, s),
        clen=clen,
        cap=cap,
        width=width,
        skip=SKIP_EMPTY and not interpret,
    )
    slots = jax.ShapeDtypeStruct((rows, nch * cap + width), I32)
    per_chunk = jax.ShapeDtypeStruct((rows, nch), I32)
    ckey, cidx, cnt, thr = pl.pallas_call(
        kernel,
        out_shape=(slots, slots, per_chunk, per_chunk),
        grid=(rows, nch),
        name="rankk_sample_filter",
        interpret=interpret,
        **compiler_params(choice, interpret),
    )(x2d)
    return ckey[:, : nch * cap], cidx[:, : nch * cap], cnt, thr[:, 0]


def select_candidates(ckey, cidx, cnt, k, cap):
    """Stage 3: the k best candidates (key descending, ties by slot, i.e. by index)."""
    rows, slots = ckey.shape
    slot = lax.broadcasted_iota(I32, (rows, slots), 1)
    used = (slot % cap) < jnp.repeat(cnt, cap, axis=1, total_repeat_length=slots)
    ckey = jnp.where(used, ckey, INT32_MIN)
    _, order = lax.sort((~ckey, slot), dimension=1, num_keys=1, is_stable=True)
    return jnp.take_along_axis(cidx, order[:, :k], axis=1)


def select_indices_sampled(x2d, k, kind, choice, *, interpret, fallback):
    """Ordered indices of the Top/Bottom-K of each row (contract of ``radix.py``).

    ``fallback(x2d)`` — the radix path — runs instead when the sample did not bound the
    selection (see the module docstring).
    """
    _rows, n = x2d.shape
    s = _sample_size(n, choice.sample)
    _, nch = _chunks(n, choice)
    cap = capacity(n, k, s, nch)
    if nch * cap <= k:  # no room to select from: the radix path
        return fallback(x2d)
    ckey, cidx, cnt, thr = filter_candidates(x2d, k, kind, choice, interpret)
    ok = (
        jnp.all(cnt <= cap)
        & jnp.all(jnp.sum(cnt, axis=1) >= k)
        & jnp.all(thr > np.int32(INT32_MIN))
    )
    return lax.cond(ok, lambda: select_candidates(ckey, cidx, cnt, k, cap), lambda: fallback(x2d))
