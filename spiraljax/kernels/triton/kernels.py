"""Triton kernels of the filtered Rank-K selection (imported lazily: needs ``triton``).

The kernels, each one pass; ``select.py`` chains them and says why the result is exact.

* ``scan`` (grid ``rows × chunks``) reads a chunk of ``C`` entries of a row once, as raw
  bits, and turns them into the order key of ``keys.kind_key`` in registers.
  ``MODE == 0``: writes the maxima of the chunk's ``G`` groups of ``C / G`` consecutive
  keys (the *delegates* of Dr. Top-k); program j reads chunk ``j · CSTRIDE``.
  ``MODE == 1``: keeps the keys at or above a safe threshold — the largest of the chunk's
  own bound (the least of its ``G ≥ k`` group maxima, raised by ``REFINE`` count-verified
  bisection steps; ``G == 0``: none), the row's bound from ``kth`` (``HINT``) and the
  best bound other chunks of the row have published (``RUNNING``) — and appends them to
  the row's candidate buffer, one atomic add per survivor, packed as
  ``key << 32 | ~index`` so that one signed 64-bit order is (key descending, index
  ascending).
  ``RAW`` (mode 1): the bound is tested on the raw bits (``at_least``: one or two
  compares a key instead of the order key; a chunk's own bound by ``raw_chunk_bound``)
  and the survivors are appended as raw bits, which ``pick`` (``RAW``) turns into keys.
  ``MODE == 2`` (Mid-K): keeps the keys inside a band ``[lo, hi]`` and counts the keys
  above it. ``MODE == 3`` (Mid-K, and the sampled row bound): writes the keys of a sample
  of the row (blocks of ``SB`` consecutive keys at even strides).
  Mode 0 with ``PIPE > 1`` makes each group the union of the matching slices of PIPE
  chunks (long rows: fewer, larger groups). ``SPARSE``: modes 1 and 2 append a tile's
  survivors only after one count over the tile found some.
* ``kth`` (grid ``rows``): the k-th largest of a row's group maxima (or sample keys).
* ``segk`` (grid ``rows × segments``, long rows selected whole): for a row whose buffer
  overflowed, the k of each segment of the row, in parallel (``exact_k``); nothing for
  rows that fit.
* ``whole`` (grid ``rows``, rows of one chunk): ``scan`` and ``pick`` fused, the survivors
  placed by a prefix count instead of atomics.
* ``kth2`` (grid ``rows``): two ranks of the sample at once (Mid-K's band).
* ``pick`` (grid ``rows``): sorts a row's candidates and writes the indices of the first k
  (``MID``: of ranks ``S_RANK − above … S_RANK − above + k − 1``). ``REPAIR``: a row
  whose buffer overflowed takes its k from the input instead (``exact_k``: 34 counting
  passes over the row, into a scratch), and a Mid-K row whose band failed its ranks
  (``exact_band``: 64 passes), so no fallback launch is needed. ``MEND`` (long rows): an
  overflowed row's k from ``segk``'s candidates (``top_packed``: a 64-bit bitwise
  search). ``SEARCH``: the k are found by a bitwise search over the buffer and only they
  are sorted.

Counters are two int32 per row: survivors, and (Mid-K) keys above the band.

The kernels are plain Python functions; ``compiled(name)`` wraps one with ``triton.jit``
(GPU) and ``interpreted(name)`` with Triton's interpreter (CPU, the tests). The helpers
they call (``order_key``, ``exact_k``) are ``triton.jit`` functions, which the interpreter
runs too because ``TRITON_INTERPRET=1`` is set before ``triton`` is imported there.
"""

from __future__ import annotations

import functools

import triton
import triton.language as tl

# Globals a kernel reads must be constexpr for the Triton compiler.
I32_MIN = tl.constexpr(-2147483648)
I64_MIN = tl.constexpr(-9223372036854775808)
I64_MAX = tl.constexpr(9223372036854775807)

# Input encodings (the raw bits the kernels read; see select._bits).
F32, BF16, F16, I32, U32 = (tl.constexpr(v) for v in range(5))


@triton.jit
def order_key(b, DT: tl.constexpr, BOTTOM: tl.constexpr):
    """The order key (``keys.kind_key``) of raw bits ``b``, integer ops only."""
    if DT == F32:
        key = tl.where(b < 0, b ^ 0x7FFFFFFF, b)
        key = tl.where((b & 0x7FFFFFFF) > 0x7F800000, tl.where(b < 0, I32_MIN, 0x7FFFFFFF), key)
    elif DT == BF16 or DT == F16:
        b = b.to(tl.int32)  # int16 bits, sign-extended
        key = tl.where(b < 0, b ^ 0x7FFF, b)
        inf = 0x7F80 if DT == BF16 else 0x7C00
        key = tl.where((b & 0x7FFF) > inf, tl.where(b < 0, -32768, 32767), key)
    elif DT == I32:
        key = b
    else:
        key = b ^ I32_MIN
    if BOTTOM:
        key = ~key
    return key


@triton.jit
def at_least(b, t, DT: tl.constexpr, BOTTOM: tl.constexpr):
    """``order_key(b, DT, BOTTOM) >= t`` on the raw bits ``b`` for a scalar bound ``t``.

    Where t lies among the order keys of the non-negative floats up to +Inf (plus one for
    Top-K: any bound of data with k positive values), one or two integer compares per key
    decide it: Top-K keeps the bits b ≥ t (positive NaNs included, as their key is the
    largest); Bottom-K keeps the negative bits b ≥ t ^ sign (a negative float's key is
    −1 − its magnitude bits, NaNs included). Other bounds take the order key itself.
    """
    if DT == I32:
        if BOTTOM:
            keep = b <= ~t
        else:
            keep = b >= t
    elif DT == U32:
        keep = order_key(b, DT, BOTTOM) >= t
    else:
        if DT == F32:
            inf: tl.constexpr = 0x7F800000
            sign: tl.constexpr = -2147483648
        else:
            b = b.to(tl.int32)  # int16 bits, sign-extended
            inf: tl.constexpr = 0x7F80 if DT == BF16 else 0x7C00
            sign: tl.constexpr = -32768
        if (t >= 0) & (t <= inf + 1 - BOTTOM):
            if BOTTOM:
                keep = (b < 0) & (b >= (t ^ sign))
            else:
                keep = b >= t
        else:
            keep = order_key(b, DT, BOTTOM) >= t
    return keep


@triton.jit
def exact_k(
    x_ptr,
    out64,
    r,
    n,
    nseg,
    seg_len,
    K: tl.constexpr,
    DT: tl.constexpr,
    BOTTOM: tl.constexpr,
    RB: tl.constexpr,
):
    """Writes the k largest keys of (virtual) row r, packed, to ``out64[0:K]`` (any order).

    The repair of a row whose buffer overflowed: the k-th largest key ``thr`` bit by bit
    from the top (32 counting passes over the row), the keys above it, then the ties at
    ``thr`` in index order until k are taken (two more passes). Slow, and exact on any row.
    """
    start = (r % nseg) * seg_len
    base = (r // nseg).to(tl.int64) * n + start
    m = tl.minimum(seg_len, n - start)
    lane = tl.arange(0, RB)
    u = r * 0  # the bits found so far, in the unsigned order
    for j in range(32):
        bit = u | ((u * 0 + 1) << (31 - j))
        t = bit ^ I32_MIN
        got = r * 0
        for b0 in range(0, m, RB):
            valid = b0 + lane < m
            key = order_key(tl.load(x_ptr + base + b0 + lane, mask=valid, other=0), DT, BOTTOM)
            got += tl.sum((valid & (key >= t)).to(tl.int32), axis=0)
        u = tl.where(got >= K, bit, u)
    thr = u ^ I32_MIN
    above = r * 0
    for b0 in range(0, m, RB):
        valid = b0 + lane < m
        key = order_key(tl.load(x_ptr + base + b0 + lane, mask=valid, other=0), DT, BOTTOM)
        above += tl.sum((valid & (key > thr)).to(tl.int32), axis=0)
    need = K - above  # ties at thr to take, lowest indices first
    taken = r * 0
    ties = r * 0
    for b0 in range(0, m, RB):
        valid = b0 + lane < m
        key = order_key(tl.load(x_ptr + base + b0 + lane, mask=valid, other=0), DT, BOTTOM)
        eq = (valid & (key == thr)).to(tl.int32)
        keep = (valid & (key > thr)) | ((eq > 0) & (ties + tl.cumsum(eq, axis=0) - eq < need))
        ki = keep.to(tl.int32)
        pos = taken + tl.cumsum(ki, axis=0) - ki
        idx = (start + b0 + lane).to(tl.int64)
        packed = (key.to(tl.int64) << 32) | (idx ^ 0xFFFFFFFF)
        tl.store(out64 + pos, packed, mask=keep)
        taken += tl.sum(ki, axis=0)
        ties += tl.sum(eq, axis=0)


@triton.jit
def exact_band(
    x_ptr, out64, r, n, K: tl.constexpr, S: tl.constexpr, DT: tl.constexpr, RB: tl.constexpr
):
    """Writes the packed values of ranks ``S … S + K − 1`` of row r (descending packed
    order of the complemented keys: the Mid-K order) to ``out64[0:K]`` (any order).

    The repair of a row whose band did not hold: the (S+1)-th and (S+K)-th largest packed
    values found bit by bit together (64 passes over the row, two counts each), then the
    K values between them (the packed values are distinct). Slow, and exact on any row.
    """
    base = r.to(tl.int64) * n
    lane = tl.arange(0, RB)
    hi = (r * 0).to(tl.int64)  # bits of the (S+1)-th largest so far, unsigned order
    lo = (r * 0).to(tl.int64)  # bits of the (S+K)-th largest
    for j in range(64):
        one = (hi * 0 + 1) << ((hi * 0 + 63) - j)
        bh = hi | one
        bl = lo | one
        got_h = r * 0
        got_l = r * 0
        for b0 in range(0, n, RB):
            valid = b0 + lane < n
            key = order_key(tl.load(x_ptr + base + b0 + lane, mask=valid, other=0), DT, 1)
            v = (key.to(tl.int64) << 32) | ((b0 + lane).to(tl.int64) ^ 0xFFFFFFFF)
            got_h += tl.sum((valid & (v >= (bh ^ I64_MIN))).to(tl.int32), axis=0)
            got_l += tl.sum((valid & (v >= (bl ^ I64_MIN))).to(tl.int32), axis=0)
        hi = tl.where(got_h >= S + 1, bh, hi)
        lo = tl.where(got_l >= S + K, bl, lo)
    p_hi = hi ^ I64_MIN
    p_lo = lo ^ I64_MIN
    taken = r * 0
    for b0 in range(0, n, RB):
        valid = b0 + lane < n
        key = order_key(tl.load(x_ptr + base + b0 + lane, mask=valid, other=0), DT, 1)
        v = (key.to(tl.int64) << 32) | ((b0 + lane).to(tl.int64) ^ 0xFFFFFFFF)
        ki = (valid & (v >= p_lo) & (v <= p_hi)).to(tl.int32)
        tl.store(out64 + taken + tl.cumsum(ki, axis=0) - ki, v, mask=ki > 0)
        taken += tl.sum(ki, axis=0)


@triton.jit
def top_packed(src, m, out64, r, K: tl.constexpr, RB: tl.constexpr):
    """Writes the K largest of the ``m`` packed (unique, or ``I64_MIN``) values at ``src``
    to ``out64[0:K]`` (any order): the K-th largest found bit by bit (64 counting passes),
    then the values at or above it. (``r``: the program id, for scalar tensors: ``m`` may
    be a constexpr, as jax-triton passes keyword scalars.)"""
    lane = tl.arange(0, RB)
    u = (r * 0).to(tl.int64)  # the bits found so far, in the unsigned order
    for j in range(64):
        bit = u | ((u * 0 + 1) << ((u * 0 + 63) - j))
        t = bit ^ I64_MIN
        got = r * 0
        for b0 in range(0, m, RB):
            valid = b0 + lane < m
            v = tl.load(src + b0 + lane, mask=valid, other=I64_MIN)
            got += tl.sum((valid & (v >= t)).to(tl.int32), axis=0)
        u = tl.where(got >= K, bit, u)
    thr = u ^ I64_MIN
    taken = r * 0
    for b0 in range(0, m, RB):
        valid = b0 + lane < m
        v = tl.load(src + b0 + lane, mask=valid, other=I64_MIN)
        ki = (valid & (v >= thr)).to(tl.int32)
        pos = taken + tl.cumsum(ki, axis=0) - ki
        tl.store(out64 + pos, v, mask=ki > 0)
        taken += tl.sum(ki, axis=0)


@triton.jit
def chunk_bound(key, valid, K: tl.constexpr, REFINE: tl.constexpr):
    """A safe bound of a [G, C / G] tile of keys (invalid ones I32_MIN): G ≥ K groups each
    hold a key ≥ the least group maximum (over the groups with a valid key; fewer than K
    of them: no bound), raised by REFINE bisection steps in key space, each verified by a
    count."""
    gmax = tl.max(key, axis=1)
    gvalid = tl.max(valid.to(tl.int32), axis=1)
    lo = tl.min(tl.where(gvalid > 0, gmax, 2147483647), axis=0)
    lo = tl.where(tl.sum(gvalid, axis=0) >= K, lo, I32_MIN)
    if REFINE > 0:
        hi = tl.max(gmax, axis=0)
        for _ in range(REFINE):
            mid = ((lo.to(tl.int64) + hi.to(tl.int64) + 1) >> 1).to(tl.int32)
            got = tl.sum(tl.sum((key >= mid).to(tl.int32), axis=1), axis=0)
            lo = tl.where(got >= K, mid, lo)
            hi = tl.where(got >= K, hi, mid - 1)
    return lo


@triton.jit
def raw_chunk_bound(
    b, valid, K: tl.constexpr, REFINE: tl.constexpr, DT: tl.constexpr, BOTTOM: tl.constexpr
):
    """``chunk_bound`` of the order keys of the raw bits ``b`` (int32; 16-bit floats
    sign-extended), mostly without computing them. Where every group with a valid key
    holds a non-negative float (Top-K) or a negative one (Bottom-K), each group's maximum
    key comes from its maximum bits (Top-K: the order key is monotone on the non-negative
    bits) or its largest negative magnitude bits (Bottom-K: a negative float's key is its
    magnitude bits; a NaN's is larger still, so the bound only gets lower: still safe);
    the bisection steps count with ``at_least``. Elsewhere: the keys and ``chunk_bound``."""
    if (DT == I32) | (DT == U32):
        lo = chunk_bound(tl.where(valid, order_key(b, DT, BOTTOM), I32_MIN), valid, K, REFINE)
    else:
        sign = I32_MIN if DT == F32 else -32768
        if BOTTOM:
            g = tl.max(tl.where(valid & (b < 0), b ^ sign, -1), axis=1)
        else:
            g = tl.max(tl.where(valid, b, -1), axis=1)
        gvalid = tl.max(valid.to(tl.int32), axis=1)
        least = tl.min(tl.where(gvalid > 0, g, 2147483647), axis=0)
        if (least >= 0) & (tl.sum(gvalid, axis=0) >= K):
            if BOTTOM:
                lo = least
                hi = tl.max(g, axis=0)
            else:
                lo = order_key(least, DT, BOTTOM)
                hi = order_key(tl.max(g, axis=0), DT, BOTTOM)
            for _ in range(REFINE):
                mid = ((lo.to(tl.int64) + hi.to(tl.int64) + 1) >> 1).to(tl.int32)
                got = tl.sum(tl.sum((valid & at_least(b, mid, DT, BOTTOM)).to(tl.int32), 1), 0)
                lo = tl.where(got >= K, mid, lo)
                hi = tl.where(got >= K, hi, mid - 1)
        else:
            key = tl.where(valid, order_key(b, DT, BOTTOM), I32_MIN)
            lo = chunk_bound(key, valid, K, REFINE)
    return lo


@triton.jit
def append(keep, key, col, start, r, cnt_ptr, cand_ptr, CAP: tl.constexpr, ATOMIC: tl.constexpr):
    """Appends the kept keys of a tile to row r's candidate buffer (packed)."""
    if ATOMIC == 2:
        # One atomic per chunk reserves the survivors' slots; a prefix count over
        # the tile (row-major, i.e. column order) places each survivor.
        ki = keep.to(tl.int32)
        per_group = tl.sum(ki, axis=1)
        got = tl.sum(per_group, axis=0)
        slot0 = tl.atomic_add(cnt_ptr + 2 * r, got, sem="relaxed")
        before = tl.cumsum(per_group, axis=0) - per_group
        pos = slot0 + before[:, None] + tl.cumsum(ki, axis=1) - ki
    elif ATOMIC == 1:
        # One relaxed atomic per survivor: only the slot is needed, no ordering.
        ones = tl.zeros_like(col)
        pos = tl.atomic_add(cnt_ptr + 2 * r + ones, 1, mask=keep, sem="relaxed")
    else:
        # One atomic per survivor gives its slot (survivors are few; no prefix sum).
        pos = tl.atomic_add(cnt_ptr + 2 * r + tl.zeros_like(col), 1, mask=keep)
    idx = (start + col).to(tl.int64)
    packed = (key.to(tl.int64) << 32) | (idx ^ 0xFFFFFFFF)
    # The buffer is declared int32 (no x64 needed in JAX): two words per candidate.
    cand64 = cand_ptr.to(tl.pointer_type(tl.int64))
    tl.store(cand64 + r.to(tl.int64) * CAP + pos, packed, mask=keep & (pos < CAP))


def scan(
    x_ptr,
    thr_ptr,
    gm_ptr,
    cnt_ptr,
    cand_ptr,
    n,
    nseg,
    seg_len,
    C: tl.constexpr,
    G: tl.constexpr,
    K: tl.constexpr,
    CAP: tl.constexpr,
    DT: tl.constexpr,
    BOTTOM: tl.constexpr,
    MODE: tl.constexpr,
    HINT: tl.constexpr,
    REFINE: tl.constexpr = 0,
    RUNNING: tl.constexpr = 0,
    SB: tl.constexpr = 32,
    ATOMIC: tl.constexpr = 0,
    PIPE: tl.constexpr = 1,
    STAGES: tl.constexpr = 1,
    CSTRIDE: tl.constexpr = 1,
    SPARSE: tl.constexpr = 0,
    RAW: tl.constexpr = 0,
):
    if RAW:
        # Mode 1: the bounds are found and tested on the raw bits (raw_chunk_bound,
        # at_least) and the survivors appended as raw bits, which pick turns into keys.
        tl.static_assert(MODE == 1)
    if PIPE > 1:
        # Modes 1 and 2 carry one bound across the program's chunks; mode 0 makes each of
        # its G groups the union of the matching slices of its PIPE chunks.
        tl.static_assert(MODE != 3)
    r = tl.program_id(0)  # (virtual) row: segment r % nseg of input row r // nseg
    start = (r % nseg) * seg_len
    # The chunk as a [GR, C // GR] tile: row g of the tile is group g (no reshape needed).
    GR: tl.constexpr = G if G > 0 else 1
    lane = tl.arange(0, GR)[:, None] * (C // GR) + tl.arange(0, C // GR)[None, :]
    base = (r // nseg).to(tl.int64) * n + start
    # PIPE consecutive chunks per program (modes 1 and 2); with STAGES > 1 Triton's
    # pipeliner issues the next chunks' loads (into shared memory) while this chunk's
    # atomics round-trip.
    c0 = tl.program_id(1) * PIPE
    t_prev = r * 0 + I32_MIN  # the best bound an earlier chunk of this program found
    gacc = tl.full((GR,), I32_MIN, tl.int32)  # mode 0: the groups' maxima so far
    for j in tl.range(0, PIPE, num_stages=STAGES):
        if MODE == 3:
            col = (lane // SB) * (seg_len // (C // SB)) + lane % SB  # sample positions
        else:
            col = (c0 + j) * CSTRIDE * C + lane  # column inside the segment
        valid = (col < seg_len) & (start + col < n)
        b = tl.load(x_ptr + base + col, mask=valid, other=0)
        if RAW:
            key = b.to(tl.int32)  # what append packs: the bits (int16 ones sign-extended)
        else:
            key = tl.where(valid, order_key(b, DT, BOTTOM), I32_MIN)
        if MODE == 0:
            gacc = tl.maximum(gacc, tl.max(key, axis=1))
        elif MODE == 3:
            tl.store(gm_ptr + r.to(tl.int64) * C + lane, key)
        else:
            if MODE == 2:
                hi = tl.load(gm_ptr + r)
                keep = valid & (key >= tl.load(thr_ptr + r)) & (key <= hi)
                above = tl.sum(tl.sum((valid & (key > hi)).to(tl.int32), axis=1), axis=0)
                tl.atomic_add(cnt_ptr + 2 * r + 1, above)
            else:
                t = r * 0 + I32_MIN
                if G > 0:
                    if RAW:
                        t = raw_chunk_bound(key, valid, K, REFINE, DT, BOTTOM)
                    else:
                        t = chunk_bound(key, valid, K, REFINE)
                if HINT:
                    t = tl.maximum(t, tl.load(thr_ptr + r))
                # Every bound found is a lower bound of the row's k-th key: keep the best.
                t = tl.maximum(t, t_prev)
                if RUNNING:
                    # The largest bound any chunk of this row has published so far, kept
                    # biased in the counter's 2nd word.
                    run = (cnt_ptr + 2 * r + 1).to(tl.pointer_type(tl.uint32))
                    biased = (t ^ I32_MIN).to(tl.uint32, bitcast=True)
                    if ATOMIC > 0:
                        prev = tl.atomic_max(run, biased, sem="relaxed")
                    else:
                        prev = tl.atomic_max(run, biased)
                    t = tl.maximum(t, prev.to(tl.int32, bitcast=True) ^ I32_MIN)
                t_prev = t
                if RAW:
                    keep = valid & at_least(b, t, DT, BOTTOM)
                else:
                    keep = valid & (key >= t)
            if SPARSE:
                # Most chunks keep nothing: one count over the tile skips the slot
                # atomics and the 64-bit packing there (integer work the scan is bound by).
                if tl.sum(tl.sum(keep.to(tl.int32), axis=1), axis=0) > 0:
                    append(keep, key, col, start, r, cnt_ptr, cand_ptr, CAP, ATOMIC)
            else:
                append(keep, key, col, start, r, cnt_ptr, cand_ptr, CAP, ATOMIC)
    if MODE == 0:
        row_out = r.to(tl.int64) * (tl.num_programs(1) * G) + tl.program_id(1) * G
        tl.store(gm_ptr + row_out + tl.arange(0, GR), gacc)


def kth(gm_ptr, thr_ptr, ng, GP: tl.constexpr, K: tl.constexpr, SEARCH: tl.constexpr = 0):
    r = tl.program_id(0)
    i = tl.arange(0, GP)
    g = tl.load(gm_ptr + r.to(tl.int64) * ng + i, mask=i < ng, other=I32_MIN)
    if SEARCH:
        # Bit by bit from the top: the largest t with #{g >= t} >= K (a 32-step loop,
        # far smaller to compile than a sort of GP values).
        u = r * 0  # the bits found so far, in the unsigned order (an int32 scalar)
        for j in range(32):
            cand = u | ((u * 0 + 1) << (31 - j))
            cnt = tl.sum((g >= (cand ^ I32_MIN)).to(tl.int32), axis=0)
            u = tl.where(cnt >= K, cand, u)
        tl.store(thr_ptr + r, u ^ I32_MIN)
    else:
        srt = tl.sort(g, descending=True)
        tl.store(thr_ptr + r, tl.max(tl.where(i == K - 1, srt, I32_MIN), axis=0))


def segk(
    cnt_ptr,
    x_ptr,
    seg_ptr,
    low_ptr,
    n,
    nseg,
    seg_len,
    CAP: tl.constexpr,
    K: tl.constexpr,
    KP: tl.constexpr,
    DT: tl.constexpr,
    BOTTOM: tl.constexpr,
    RB: tl.constexpr = 1024,
):
    """Grid (rows, nseg), for rows selected whole (no segments): where row r overflowed
    its buffer, program s writes the k largest keys of segment s of the row (packed,
    ``I64_MIN`` in unused slots) to the row's ``nseg · K`` scratch, which holds the row's
    k among them, and the least of them to ``low[r, s]``; ``pick`` (``MEND``) takes the
    row's k from there. Rows that fit: nothing."""
    r = tl.program_id(0)
    s = tl.program_id(1)
    if tl.load(cnt_ptr + 2 * r) > CAP:
        out64 = seg_ptr.to(tl.pointer_type(tl.int64)) + (r.to(tl.int64) * nseg + s) * K
        i = tl.arange(0, KP)
        tl.store(out64 + i, tl.full((KP,), I64_MIN, tl.int64), mask=i < K)
        tl.debug_barrier()
        exact_k(x_ptr, out64, r * nseg + s, n, nseg, seg_len, K, DT, BOTTOM, RB)
        tl.debug_barrier()
        least = tl.min(tl.load(out64 + i, mask=i < K, other=I64_MAX), axis=0)
        low64 = low_ptr.to(tl.pointer_type(tl.int64))
        tl.store(low64 + r.to(tl.int64) * nseg + s, least)


def pick(
    cnt_ptr,
    cand_ptr,
    x_ptr,
    low_ptr,
    idx_ptr,
    scr_ptr,
    n,
    nseg,
    seg_len,
    CAP: tl.constexpr,
    K: tl.constexpr,
    MID: tl.constexpr = 0,
    S_RANK: tl.constexpr = 0,
    BY_INDEX: tl.constexpr = 0,
    REPAIR: tl.constexpr = 0,
    DT: tl.constexpr = 0,
    BOTTOM: tl.constexpr = 0,
    RB: tl.constexpr = 1024,
    MEND: tl.constexpr = 0,
    SEARCH: tl.constexpr = 0,
    KP: tl.constexpr = 1,
    NSP: tl.constexpr = 1,
    RAW: tl.constexpr = 0,
):
    r = tl.program_id(0)
    i = tl.arange(0, CAP)
    cnt = tl.load(cnt_ptr + 2 * r)
    fresh = cnt <= CAP  # the candidates are the scan's (else a repair's, in the scratch)
    src = cand_ptr.to(tl.pointer_type(tl.int64)) + r.to(tl.int64) * CAP
    off = r * 0  # sorted position of the first output
    if MID:
        off = S_RANK - tl.load(cnt_ptr + 2 * r + 1)  # S_RANK − (keys above the band)
    if MEND:
        if cnt > CAP:
            # The buffer overflowed: the row's k from its segments' k (``segk``), which
            # ``x_ptr`` points at here (``nseg · K`` packed values per row). The row's
            # k-th largest packed value is ≥ every segment's (that segment alone holds k
            # values ≥ its own), so the largest of the segments' least (``low_ptr``) is
            # a bound: on tied or sorted rows only k pass it (else the bitwise search).
            src = scr_ptr.to(tl.pointer_type(tl.int64)) + r.to(tl.int64) * CAP
            seg = x_ptr.to(tl.pointer_type(tl.int64)) + r.to(tl.int64) * (nseg * K)
            s_i = tl.arange(0, NSP)
            low = low_ptr.to(tl.pointer_type(tl.int64)) + r.to(tl.int64) * nseg
            t = tl.max(tl.load(low + s_i, mask=s_i < nseg, other=I64_MIN), axis=0)
            lane = tl.arange(0, RB)
            got = r * 0
            for b0 in range(0, nseg * K, RB):
                v = tl.load(seg + b0 + lane, mask=b0 + lane < nseg * K, other=I64_MIN)
                got += tl.sum((v >= t).to(tl.int32), axis=0)
            if got <= CAP:
                taken = r * 0
                for b0 in range(0, nseg * K, RB):
                    v = tl.load(seg + b0 + lane, mask=b0 + lane < nseg * K, other=I64_MIN)
                    ki = (v >= t).to(tl.int32)
                    tl.store(src + taken + tl.cumsum(ki, axis=0) - ki, v, mask=ki > 0)
                    taken += tl.sum(ki, axis=0)
                cnt = got
            else:
                top_packed(seg, nseg * K, src, r, K, RB)
                cnt = cnt * 0 + K
            tl.debug_barrier()
    elif REPAIR:
        if MID:
            # The band held iff it kept no more than the buffer, at most S_RANK keys lie
            # above it, and with it at least S_RANK + K: else the ranks from the input.
            above = S_RANK - off
            if (cnt > CAP) | (above > S_RANK) | (above + cnt < S_RANK + K):
                src = scr_ptr.to(tl.pointer_type(tl.int64)) + r.to(tl.int64) * CAP
                exact_band(x_ptr, src, r, n, K, S_RANK, DT, RB)
                tl.debug_barrier()
                cnt = cnt * 0 + K
                off = off * 0
        elif cnt > CAP:
            # The buffer overflowed: the row's k from the input itself, into the scratch.
            src = scr_ptr.to(tl.pointer_type(tl.int64)) + r.to(tl.int64) * CAP
            exact_k(x_ptr, src, r, n, nseg, seg_len, K, DT, BOTTOM, RB)
            tl.debug_barrier()  # the scratch stores visible to every thread of the program
            cnt = cnt * 0 + K
    v = tl.load(src + i, mask=i < cnt, other=I64_MIN)
    if RAW:
        # The scan appended raw bits: their order keys, packed the same way.
        hi = order_key((v >> 32).to(tl.int32), DT, BOTTOM)
        packed = (hi.to(tl.int64) << 32) | (v & 0xFFFFFFFF)
        v = tl.where((i < cnt) & fresh, packed, v)
    if SEARCH:
        # Only the K values of sorted positions off … off + K − 1 are sorted: found by a
        # 64-bit bitwise search over the tile (the packed values are distinct), moved to
        # the row's scratch, then a sort of KP ≥ K slots instead of CAP.
        hi = (r * 0).to(tl.int64)  # bits of the (off+1)-th largest, unsigned order
        lo = (r * 0).to(tl.int64)  # bits of the (off+K)-th largest
        for b in range(64):
            one = (hi * 0 + 1) << ((hi * 0 + 63) - b)
            if MID:
                got = tl.sum((v >= ((hi | one) ^ I64_MIN)).to(tl.int32), axis=0)
                hi = tl.where(got >= off + 1, hi | one, hi)
            got = tl.sum((v >= ((lo | one) ^ I64_MIN)).to(tl.int32), axis=0)
            lo = tl.where(got >= off + K, lo | one, lo)
        keep = v >= (lo ^ I64_MIN)
        if MID:
            keep = keep & (v <= (hi ^ I64_MIN))
        ki = keep.to(tl.int32)
        dst = scr_ptr.to(tl.pointer_type(tl.int64)) + r.to(tl.int64) * CAP
        tl.debug_barrier()  # every thread has read src (it may be the scratch itself)
        tl.store(dst + tl.cumsum(ki, axis=0) - ki, v, mask=keep)
        tl.debug_barrier()
        q = tl.arange(0, KP)
        srt = tl.sort(tl.load(dst + q, mask=q < K, other=I64_MIN), descending=True)
        j = q
    else:
        q = i
        srt = tl.sort(v, descending=True)
        j = i - off
    # ~packed keeps the index in its low 32 bits.
    out = (~srt).to(tl.int32)
    if BY_INDEX:
        # The selected k in index order (segments feeding a merge: see select.py).
        out = tl.sort(tl.where(q < K, out, 2147483647))
    tl.store(idx_ptr + r.to(tl.int64) * K + j, out, mask=(j >= 0) & (j < K))


def whole(
    x_ptr,
    idx_ptr,
    cnt_ptr,
    scr_ptr,
    n,
    C: tl.constexpr,
    G: tl.constexpr,
    K: tl.constexpr,
    CAP: tl.constexpr,
    DT: tl.constexpr,
    BOTTOM: tl.constexpr,
    REFINE: tl.constexpr = 0,
    RB: tl.constexpr = 1024,
):
    """Grid (rows,), rows of n ≤ C keys: ``scan`` (one chunk, its own bound) and ``pick``
    in one program. The row is loaded once as a [G, C / G] tile; the least of its G ≥ k
    group maxima (raised by REFINE count-verified bisection steps) bounds it safely; the
    survivors go to the row's scratch at positions from a prefix count (one program per
    row: no atomics); a row with more than CAP takes its k from the input (``exact_k``).
    Writes the k indices (key descending, index ascending) and the survivors to cnt."""
    r = tl.program_id(0)
    lane = tl.arange(0, G)[:, None] * (C // G) + tl.arange(0, C // G)[None, :]
    valid = lane < n
    b = tl.load(x_ptr + r.to(tl.int64) * n + lane, mask=valid, other=0)
    key = tl.where(valid, order_key(b, DT, BOTTOM), I32_MIN)
    lo = chunk_bound(key, valid, K, REFINE)
    keep = valid & (key >= lo)
    ki = keep.to(tl.int32)
    per_group = tl.sum(ki, axis=1)
    cnt = tl.sum(per_group, axis=0)
    tl.store(cnt_ptr + 2 * r + tl.arange(0, 2), tl.where(tl.arange(0, 2) == 0, cnt, 0))
    dst = scr_ptr.to(tl.pointer_type(tl.int64)) + r.to(tl.int64) * CAP
    if cnt <= CAP:
        pos = (tl.cumsum(per_group, axis=0) - per_group)[:, None] + tl.cumsum(ki, axis=1) - ki
        packed = (key.to(tl.int64) << 32) | (lane.to(tl.int64) ^ 0xFFFFFFFF)
        tl.store(dst + pos, packed, mask=keep)
    else:
        exact_k(x_ptr, dst, r, n, 1, n, K, DT, BOTTOM, RB)
        cnt = cnt * 0 + K
    tl.debug_barrier()  # the scratch stores visible to every thread of the program
    i = tl.arange(0, CAP)
    srt = tl.sort(tl.load(dst + i, mask=i < cnt, other=I64_MIN), descending=True)
    tl.store(idx_ptr + r.to(tl.int64) * K + i, (~srt).to(tl.int32), mask=i < K)


def kth2(gm_ptr, hi_ptr, lo_ptr, ng, GP: tl.constexpr, K_HI: tl.constexpr, K_LO: tl.constexpr):
    """``kth`` (``SEARCH``) of two ranks of the same values at once: the K_HI-th and the
    K_LO-th largest of a row's ``ng`` values, one pass of the values per bit for both
    (Mid-K's band: one launch and one read of the sample instead of two)."""
    r = tl.program_id(0)
    i = tl.arange(0, GP)
    g = tl.load(gm_ptr + r.to(tl.int64) * ng + i, mask=i < ng, other=I32_MIN)
    u_hi = r * 0  # the bits found so far, in the unsigned order
    u_lo = r * 0
    for j in range(32):
        c_hi = u_hi | ((u_hi * 0 + 1) << (31 - j))
        c_lo = u_lo | ((u_lo * 0 + 1) << (31 - j))
        n_hi = tl.sum((g >= (c_hi ^ I32_MIN)).to(tl.int32), axis=0)
        n_lo = tl.sum((g >= (c_lo ^ I32_MIN)).to(tl.int32), axis=0)
        u_hi = tl.where(n_hi >= K_HI, c_hi, u_hi)
        u_lo = tl.where(n_lo >= K_LO, c_lo, u_lo)
    tl.store(hi_ptr + r, u_hi ^ I32_MIN)
    tl.store(lo_ptr + r, u_lo ^ I32_MIN)


_KERNELS = {"scan": scan, "kth": kth, "segk": segk, "pick": pick, "whole": whole, "kth2": kth2}


@functools.cache
def compiled(name: str):
    """The kernel ``name`` under ``triton.jit`` (for ``jax_triton.triton_call``)."""
    return triton.jit(_KERNELS[name])


@functools.cache
def interpreted(name: str):
    """The kernel ``name`` under Triton's interpreter (numpy on the CPU)."""
    from triton.runtime.interpreter import InterpretedFunction

    return InterpretedFunction(_KERNELS[name])
