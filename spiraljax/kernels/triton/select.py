"""Filtered Top-K / Bottom-K: one read of the input, a small candidate buffer, one sort.

The selection of the k largest order keys of a row (``keys.kind_key``; ties to the lower
index) as three Triton kernels (``kernels.py``):

1. *optional* ``scan`` in mode 0 + ``kth``: the maxima of ``row_groups`` groups of
   consecutive keys; their k-th largest ``t_row`` is a **safe** threshold — the k groups
   whose maxima rank first each hold a key ≥ ``t_row``, so at least k keys are ≥ it, so
   the k-th largest key of the row is ≥ ``t_row`` (Dr. Top-k's delegates). The groups
   may cover only every ``row_stride``-th chunk: the argument holds for any groups of
   the row's keys, and the bound then costs a fraction of a read.
   Or (``sample``) ``scan`` in mode 3 + ``kth``: the k-th largest of ``sample`` keys of
   the row (blocks of consecutive keys at even strides) — safe for the same reason (the
   sampled keys are keys of the row), and it costs a read of ``sample / n`` of the row
   rather than all of it; about ``k · n / sample`` keys survive it.
2. ``scan`` in mode 1 reads each chunk of ``chunk`` keys once and keeps every key ≥
   ``max(t_row, t_chunk)``, where ``t_chunk`` is the same bound over the chunk's own
   ``groups`` group maxima (the k-th largest key of a chunk is ≤ the k-th largest of the
   row, so this is safe too). Every selected entry — ties included — is therefore kept;
   for i.i.d. data about ``−G ln(1 − k/G)`` keys per bound of ``G`` groups survive.
   Survivors go to a buffer of ``capacity`` slots per row, packed so that one signed
   64-bit order is (key descending, index ascending).
3. ``pick`` sorts each row's buffer and writes the first k indices.

If a row keeps more than ``capacity`` keys (many ties, sorted or adversarial data) its
buffer is incomplete; ``pick`` sees that from the row's count and selects that row's k
from the input itself instead (``kernels.exact_k``: the k-th key found bit by bit, 34
counting passes over the row), so the result is exact on every input with no fallback
launch and no host round-trip (a ``lax.cond`` on the GPU waits for its predicate on the
host: 30–90 µs measured on the H200). The flag ``filtered_indices`` returns says whether
every buffer held its row, i.e. whether no row needed that slow repair.

Rows longer than ``segment`` are selected whole (``_plan_wide``): the scans of a row are
spread over all its chunks (so a batch-1 row has the whole GPU), the row bound comes from
group maxima of the entire row (a group may span several chunks, ``bound_pipe``), and
there is one buffer and one ``pick`` per row. The repair of such a row cannot be one
program's passes over 2²⁶ keys: ``segk`` selects the k of each segment of ``segment`` keys
of an overflowing row in parallel (rows that fit do nothing there), and ``pick``
(``MEND``) takes the row's k from those ``nseg · k`` by a 64-bit bitwise search — the
union of the segments' k holds the row's k, and the packed (key, index) values are
distinct, so the k-th largest of them splits exactly. Measured on the H200 (2026-12-04):
1×2²⁶, k = 1024: 0.25 ms against 0.59 for the segmented plan below; 64×2²⁰, k = 256:
0.21 against 0.36. A row of ties or sorted keys takes that repair: exact, and slow (1×2²⁶
all tied: 28 ms against XLA's 2.1).

With ``wide=False`` (or where the wide buffer would not fit) long rows are split into
segments (virtual rows) whose Top-K are selected as above; the union of the segments' Top-K
holds the row's Top-K, and a second selection over those ``nseg · k`` candidate keys (in
segment order, so ties still go to the lower index) finishes it.

On CPU the same kernels run in Triton's interpreter through ``jax.pure_callback``
(``interpret=True``), which is how the tests check the kernel logic without a GPU.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

I32 = jnp.int32

#: Longest row handled without splitting into segments.
SEGMENT = 65536
#: Largest candidate buffer per row (``pick`` sorts it in one program).
CAPACITY_MAX = 8192
#: Above this expected number of survivors per row the row bound (step 1) is computed.
ROW_BOUND_FROM = 1024
#: Keys per sample block (consecutive, so a sample reads whole sectors).
SAMPLE_BLOCK = 32


def _check_launch(p) -> None:
    """The launch fields shared by ``FilterParams`` and ``MidParams``."""
    if p.atomic not in (0, 1, 2):
        raise ValueError(f"atomic must be 0, 1 or 2, got {p.atomic!r}")
    for name in ("pipeline", "stages"):
        v = getattr(p, name)
        if not (isinstance(v, int) and v >= 1):
            raise ValueError(f"{name} must be an int >= 1, got {v!r}")


@dataclasses.dataclass(frozen=True)
class FilterParams:
    """Launch parameters of the filtered selection of rows of ``seg_len`` keys.

    Attributes:
      seg_len: keys per (virtual) row; rows longer than this are split into segments.
      chunk: keys per ``scan`` program (a power of two).
      groups: group maxima per chunk for the chunk's own bound (0: no chunk bound).
      row_groups: group maxima per row for the row bound (0: no row bound, step 1 skipped).
      capacity: candidate slots per row (a power of two).
      warps: warps per ``scan`` program.
      pick_warps: warps per ``pick`` program.
      refine: count-verified bisection steps raising each chunk bound.
      running: chunks also use the best bound other chunks of the row published.
      search_kth: the row bound by a 32-step bitwise search instead of a sort (far
        quicker to compile).
      atomic: how survivors get their buffer slots: 0, one acquire-release atomic each
        (Triton's default order, which fences every one); 1, one relaxed atomic each (a
        slot needs no ordering: ``pick`` runs after the launch ends; ``plan_filter``'s
        choice, the fastest on the H200); 2, one relaxed atomic per program reserving
        all its survivors' slots, placed by a prefix count over the tile.
      pipeline: consecutive chunks per ``scan`` program (1: one chunk per program).
      stages: Triton software-pipelining stages of that loop (``tl.range(num_stages=)``):
        with ``stages > 1`` the next chunks' loads go to shared memory while this
        chunk's atomics round-trip (1: no pipelining).
      sample: keys per (virtual) row whose k-th largest is the row bound (0: none; a
        power of two ≥ ``SAMPLE_BLOCK``, below ``seg_len``; not with ``row_groups``).
      row_stride: the row bound's group maxima come from every ``row_stride``-th chunk
        only (``chunks // row_stride`` of them, ``row_groups`` maxima in all): still safe
        (they are groups of the row's keys), a read of ``1 / row_stride`` of the row, and
        about ``row_stride`` times as many survivors (1: every chunk).
      sparse: a ``scan`` program appends its survivors only after one count over its
        tile found some. ``plan_filter`` sets it where a chunk keeps less than one key
        on average (H200, 2026-12-04: 1×2²⁶, k = 1024: 0.215 ms against 0.230;
        64×1048576 bfloat16, k = 256: 0.259 against 0.305); where most chunks keep
        some, the count only costs (8192×4096, k = 8: 0.153 against 0.145).
      search_pick: ``pick`` finds its k among the buffer by a 64-bit bitwise search and
        sorts only those (pow2 ≥ k slots) instead of the whole buffer. Off for Top-K
        (H200, 2026-12-04: 1024×65536, k = 1024, no faster than sorting its 2048 slots);
        Mid-K's default, where the band's 4096 slots hold few of the wanted ranks.
      bound_pipe: sampled chunks per row-bound program; each of its groups is the union
        of the matching slices of those chunks (fewer, larger groups on long rows).
      fused: rows of one chunk (``seg_len ≤ chunk``, chunk bounds only) go through one
        ``whole`` launch: scan and pick in one program per row, survivors placed by a
        prefix count instead of atomics (the scan's slot, running-bound and pipelining
        options have nothing to do there). Off by default: slower on the H200
        (2026-12-04: 8192×4096, k = 8: 0.268 ms against 0.182 for the two launches;
        32768×2048, k = 32: 0.469 against 0.465).
      raw: without chunk bounds (``groups == 0``), the filtering scan tests the bound on
        the raw bits (``kernels.at_least``: one or two integer compares a key where the
        bound is a non-negative finite key, instead of the order key's seven operations)
        and appends raw bits, which ``pick`` turns into order keys (the scan was bound by
        its integer work: 47–58 % of DRAM peak under ncu). The plans set it wherever
        there are no chunk bounds: faster on all seven shapes timed (H200, 2026-12-04,
        ms, raw against keyed: 1024×65536, k = 16: 0.167 / 0.179, bfloat16 0.126 /
        0.196, Bottom-K 0.146 / 0.161, k = 1024 0.434 / 0.438; 4096×32768, k = 50:
        0.342 / 0.377; 64×1048576, k = 256: 0.200 / 0.225; 1×2²⁶, k = 1024: 0.212 /
        0.219). With chunk bounds (``kernels.raw_chunk_bound``: group maxima from the raw
        bits where every group holds a key of the selected sign) it is not measured yet:
        there the plans leave it off.
      repair_segment: 0, a row that overflows its buffer is repaired by ``pick`` alone
        (fine for rows of up to ``SEGMENT`` keys); > 0 (long rows selected whole), by
        ``segk`` programs over segments of this many keys in parallel, then ``pick``.
    """

    seg_len: int
    chunk: int
    groups: int
    row_groups: int
    capacity: int
    warps: int = 8
    pick_warps: int = 8
    refine: int = 4
    running: bool = True
    search_kth: bool = True
    atomic: int = 0
    pipeline: int = 1
    stages: int = 1
    sample: int = 0
    row_stride: int = 1
    sparse: bool = False
    search_pick: bool = False
    bound_pipe: int = 1
    repair_segment: int = 0
    fused: bool = False
    raw: bool = False

    def __post_init__(self):
        _check_launch(self)
        if self.raw and self.fused:
            raise ValueError("raw and fused exclude each other: whole has no raw path")
        if self.fused and (
            self.seg_len > self.chunk
            or not self.groups
            or self.row_groups
            or self.sample
            or self.search_pick
        ):
            raise ValueError(
                f"fused needs rows of one chunk (seg_len={self.seg_len} <= chunk="
                f"{self.chunk}) bounded by their own groups (groups={self.groups}, "
                f"row_groups={self.row_groups}, sample={self.sample}), without "
                f"search_pick (={self.search_pick})"
            )
        b = self.bound_pipe
        if not (isinstance(b, int) and b >= 1 and not b & (b - 1)):
            raise ValueError(f"bound_pipe must be a power of two >= 1, got {b!r}")
        if b > 1 and not self.row_groups:
            raise ValueError(f"bound_pipe={b} needs a row bound (row_groups > 0)")
        q = self.repair_segment
        if not (isinstance(q, int) and (q == 0 or 256 <= q < self.seg_len)):
            raise ValueError(
                f"repair_segment must be 0 or in [256, seg_len={self.seg_len}), got {q!r}"
            )
        f = self.row_stride
        if not (isinstance(f, int) and f >= 1 and not f & (f - 1) and f <= self.chunks):
            raise ValueError(
                f"row_stride must be a power of two in [1, chunks={self.chunks}], got {f!r}"
            )
        if f > 1 and not self.row_groups:
            raise ValueError(f"row_stride={f} needs a row bound (row_groups > 0)")
        m = self.sample
        if m and (m & (m - 1) or not SAMPLE_BLOCK <= m < self.seg_len or self.row_groups):
            raise ValueError(
                f"sample must be 0 or a power of two >= {SAMPLE_BLOCK} below seg_len="
                f"{self.seg_len}, without row_groups (={self.row_groups}); got {m!r}"
            )

    @property
    def chunks(self) -> int:
        return -(-self.seg_len // self.chunk)


def _pow2ceil(v: float) -> int:
    return 1 << max(0, math.ceil(math.log2(max(v, 1.0))))


def _pow2floor(v: int) -> int:
    return 1 << (int(v).bit_length() - 1)


def _survivors(groups: int, k: int) -> float:
    """Expected keys ≥ the k-th largest of ``groups`` group maxima (i.i.d. keys)."""
    if groups <= k:
        return math.inf
    return -groups * math.log1p(-k / groups)


def _chunk_survivors(k: int, refine: int, groups: int) -> float:
    """Keys a chunk keeps under its own bound (not a guarantee). With bisection (≥ 4
    steps): 1.6·k + 8, measured on normal data. Without: the least of G group maxima,
    above which about G·H_G keys of i.i.d. data lie (H_G the harmonic number ≈ ln G +
    0.577: each group keeps about H_G / (its size) of its keys)."""
    if refine >= 4:
        return 1.6 * k + 8
    return groups * (math.log(groups) + 0.577) + 8


def _buffer(expect: float) -> int:
    """Candidate slots for ``expect`` survivors: eight standard deviations and 32 over."""
    return _pow2ceil(expect + 8 * math.sqrt(expect) + 32)


def _pick_warps(cap: int) -> int:
    """Warps of ``pick`` for ``cap`` slots: 16 from 2048 (H200, 2026-12-04: 1024×65536,
    k = 1024, buffer 2048: 0.431 ms with 16 warps, 0.485 with 8)."""
    return 4 if cap <= 1024 else 16


def _stride_fits(row_groups: int, nch: int, stride: int, chunk: int) -> bool:
    """The row bound's ``row_groups`` maxima spread evenly over every stride-th chunk, in
    groups of ≥ 8 keys."""
    sampled = nch // stride
    return row_groups % sampled == 0 and row_groups // sampled <= chunk // 8


def _plan_wide(n: int, k: int, c: int, segment: int, row_stride: int | None):
    """A row longer than ``segment`` selected whole: the row bound from group maxima of
    the entire row (``bound_pipe`` chunks per group where the row has more chunks than
    groups), one buffer and one ``pick`` per row, and the repair of an overflowing row
    split over its segments (``segk``). None where the buffer would not fit."""
    if not 1 <= k < n or 2 * k > CAPACITY_MAX:
        return None
    c = min(c, _pow2ceil(n))
    nch = -(-n // c)
    pipe = _pow2ceil(nch / 65535)  # a grid's second axis holds at most 65535 programs
    rg = min(16384, _pow2ceil(8 * k), _pow2floor(nch * (c // 8)))  # groups of >= 8 keys
    if rg <= 2 * k:
        return None

    def groups(rg, stride):
        """(maxima, chunks per row-bound program, maxima per program, survivors)."""
        sampled = nch // stride
        g0 = min(_pow2floor(max(1, rg // sampled)), c // 8)
        # at most 8 chunks per program: enough programs to keep the loads in flight
        bp = min(8, _pow2floor(sampled // rg)) if rg < sampled else 1
        ng = -(-sampled // bp) * g0
        return ng, bp, g0, _survivors(ng, k) * nch / sampled

    stride = row_stride
    if stride is None:  # as plan_filter: the buffer no larger than max(256, stride 1's)
        limit = max(256, _buffer(groups(rg, 1)[3]))
        stride = 1
        while stride < 8 and 2 * stride <= nch and _buffer(groups(rg, 2 * stride)[3]) <= limit:
            stride *= 2
    if not (isinstance(stride, int) and stride >= 1 and not stride & (stride - 1)):
        return None  # FilterParams names the bad value
    cap0 = _buffer(groups(rg, stride)[3])
    while rg // 2 > 2 * k and _buffer(groups(rg // 2, stride)[3]) == cap0:
        rg //= 2
    ng, bp, _, expect = groups(rg, stride)
    if ng <= k or -(-(nch // stride) // bp) > 65535 or n >= 2**31:
        return None  # too few maxima; a row-bound grid too long; int32 indices
    cap = max(_buffer(expect), _pow2ceil(k))
    if cap > CAPACITY_MAX:
        return None
    return FilterParams(
        n,
        c,
        0,
        ng,
        cap,
        warps=4 if k <= 32 else 8,
        pick_warps=_pick_warps(cap),
        refine=0,
        running=False,
        atomic=1,
        pipeline=pipe,
        row_stride=stride,
        sparse=expect < nch,
        bound_pipe=bp,
        repair_segment=segment,
        raw=True,
    )


def plan_filter(
    n: int,
    k: int,
    *,
    chunk: int | None = None,
    segment: int = SEGMENT,
    refine: int | None = None,
    sample: int = 0,
    row_stride: int | None = None,
    wide: bool = True,
) -> FilterParams | None:
    """Default launch parameters for rows of n keys, or None where this path does not fit.

    The row is split into segments of ``segment`` keys when longer. Each chunk (2048
    keys on rows of ≥ 16384 keys, with 4 warps for k ≤ 32, else 8; shorter rows 4096,
    8192 for k ≥ 512) bounds itself with ``pow2 ≥ k`` group maxima of ≥ 8 keys (``refine``
    count-verified bisection steps on top; ``None``: 4, or none where they would not
    shrink the buffer); where the chunks together
    would keep more than ``ROW_BOUND_FROM`` keys the row bound replaces them; the buffer
    holds the expected survivors plus eight standard deviations; slots go by relaxed
    atomics (``atomic=1``). ``sample > 0``: the row bound is the k-th largest of
    ``sample`` keys of each (virtual) row instead (no chunk bounds; chunks of 2048),
    where the row is longer than the sample and holds more than k of its keys. The row
    bound reads every ``row_stride``-th chunk (``None``: the largest power of two ≤ 8
    whose buffer is no larger than max(256, the buffer of every chunk)).

    Rows longer than ``segment`` get ``_plan_wide``'s plan (``wide=False``: segments).
    ``sparse`` is set where a chunk keeps less than one key on average.

    Why these: four H200 runs on 2026-12-03 (``benchmarks/rankk_filtered.py --variants``,
    RESULTS.md): the stride rule picked the fastest stride on the three shapes timed
    (1024×65536, k = 16: 0.160 ms at 4 against 0.216 at 1; k = 128: 0.225 at 2 against
    0.253; 4096×32768, k = 50: 0.376 at 2 against 0.446); before the stride existed,
    chunks of 2048 were the fastest on every long-row shape (1024×65536,
    k = 16 / 128 / 1024: 0.21 / 0.24 / 0.50 ms against 0.34 / 0.26 / 0.55–0.64 with
    chunks of 4096–8192; a sample of n/8 … n/4 keys: 0.23–0.31 / 0.37–0.45 / 1.9), 4
    warps beat 8 at k = 16 (0.213 vs 0.222; bfloat16 0.252 vs 0.278), and no bisection
    beat 4 steps on rows of 4096 (8192×4096, k = 8: 0.154 / 0.167 vs 0.186 / 0.171).
    """
    seg_len = n
    if n > segment and wide and not sample:
        p = _plan_wide(n, k, chunk or 2048, segment, row_stride)
        if p is not None:
            return p
    if n > segment:
        # Segments of (nearly) equal length, so the last one holds at least k keys too.
        nseg = -(-n // segment)
        per_seg = -(-n // nseg)
        seg_len = -(-per_seg // 256) * 256
        if n - (nseg - 1) * seg_len <= k:
            return None
    if not 1 <= k < seg_len:
        return None
    if sample:
        m = min(_pow2ceil(sample), _pow2ceil(seg_len) // 2)
        if m > k and m >= SAMPLE_BLOCK:
            p = _plan_sampled(seg_len, k, min(chunk or 2048, _pow2ceil(seg_len)), m)
            if p is not None:
                return p
    c = chunk or (2048 if seg_len >= 16384 else 8192 if k >= 512 else 4096)
    c = min(c, _pow2ceil(seg_len))
    nch = -(-seg_len // c)
    g = _pow2ceil(k)
    last = seg_len - (nch - 1) * c  # valid keys of the last chunk
    if last < c:
        g = max(g, _pow2ceil(k * c / last))  # k groups with a valid key there too
    if g > c // 8:
        g = 0
    if refine is None:  # no bisection where it would not shrink the buffer
        caps = [_buffer(min(nch * _chunk_survivors(k, r, max(g, 1)), seg_len)) for r in (0, 4)]
        refine = 0 if caps[0] == caps[1] else 4
    expect = min(nch * _chunk_survivors(k, refine, g), seg_len) if g else seg_len
    row_groups = 0
    stride = 1
    per_chunk = min(c // 2, max(1, _pow2ceil(8 * k) // nch), max(1, 8192 // nch))
    per_chunk = 1 << int(math.log2(per_chunk))
    # The row bound where the chunks together would keep too many keys, or (rows of
    # several chunks) where it sorts a buffer at least four times smaller: 2048×16384,
    # k = 64 sorted 2048 slots a row under the chunk bounds (0.50 ms, 0.54× RAFT) where
    # the row bound needs 256, for one more read of the row at most.
    row_cap = _buffer(_survivors(per_chunk * nch, k)) if per_chunk * nch > k else math.inf
    if expect > ROW_BOUND_FROM or (nch >= 2 and 4 * row_cap <= _buffer(expect)):
        if per_chunk * nch > k:
            row_groups = per_chunk * nch
            expect = _survivors(row_groups, k)
            g = 0  # the row bound makes the chunks' own bounds redundant
            stride = row_stride
            if stride is None:  # the buffer no larger than max(256, that of stride 1)
                limit = max(256, _buffer(expect))
                stride = 1
                while (
                    stride < 8
                    and 2 * stride <= nch
                    and _stride_fits(row_groups, nch, 2 * stride, c)
                    and _buffer(expect * nch / (nch // (2 * stride))) <= limit
                ):
                    stride *= 2
            if stride > 1:
                if not _stride_fits(row_groups, nch, stride, c):
                    return None
                expect *= nch / (nch // stride)
            # The fewest maxima that keep the same buffer: ``kth`` reads them all, and
            # at k = 1024 on rows of 65536 its 8192 took 59 µs of a 0.51 ms call (ncu).
            cap0 = _buffer(expect)
            while row_groups // 2 > 2 * k and row_groups // 2 >= nch // stride:
                half = _survivors(row_groups // 2, k) * nch / (nch // stride)
                if _buffer(half) != cap0:
                    break
                row_groups //= 2
                expect = half
    if row_stride not in (None, 1) and not row_groups:
        raise ValueError(
            f"row_stride={row_stride!r}: the plan for n={n}, k={k} has no row bound to stride"
        )
    cap = _buffer(expect)
    if cap > CAPACITY_MAX:
        return None
    cap = max(cap, _pow2ceil(k))
    return FilterParams(
        seg_len,
        c,
        g,
        row_groups,
        cap,
        warps=4 if c == 2048 and k <= 32 else 8,
        pick_warps=_pick_warps(cap),
        refine=refine if g else 0,
        running=bool(g),  # without chunk bounds every chunk's bound is the same
        atomic=1,
        row_stride=stride,
        sparse=expect < nch,
        raw=not g,
    )


def _plan_sampled(seg_len: int, k: int, chunk: int, m: int) -> FilterParams | None:
    """``plan_filter`` with the sampled row bound: the k-th largest of m sample keys.

    Of i.i.d. keys a fraction ~ Beta(k, m − k + 1) lies at or above it: about
    ``k·n/m ± √k·n/m`` survivors per row, which size the buffer (eight deviations).
    """
    expect = k * seg_len / m
    sd = math.sqrt(k) * seg_len / m
    cap = max(_pow2ceil(expect + 8 * sd + 32), _pow2ceil(k))
    if cap > CAPACITY_MAX:
        return None
    return FilterParams(
        seg_len,
        chunk,
        0,
        0,
        cap,
        warps=8 if chunk >= 4096 else 4,
        pick_warps=_pick_warps(cap),
        refine=0,
        running=False,
        atomic=1,
        sample=m,
        raw=True,
    )


_DT = {
    np.dtype(jnp.float32): (0, jnp.int32),
    np.dtype(jnp.bfloat16): (1, jnp.int16),
    np.dtype(jnp.float16): (2, jnp.int16),
    np.dtype(jnp.int32): (3, jnp.int32),
    np.dtype(jnp.uint32): (4, jnp.int32),
}


def _bits(x):
    """Raw bits of ``x`` as the integer type the kernels read, and its encoding code."""
    code, itype = _DT[np.dtype(x.dtype)]
    bits = x if x.dtype == itype else lax.bitcast_convert_type(x, itype)
    return bits, code


def _launches(
    rows: int, n: int, k: int, p: FilterParams, code: int, bottom: bool, by_index: bool = False
):
    """The three launches as (kernel, grid, inputs, outputs, constants, warps) specs."""
    nseg = -(-n // p.seg_len)
    vr = rows * nseg
    common = dict(
        n=n,
        nseg=nseg,
        seg_len=p.seg_len,
        C=p.chunk,
        K=k,
        DT=code,
        BOTTOM=int(bottom),
        REFINE=p.refine,
        RUNNING=int(p.running),
        ATOMIC=p.atomic,
        SPARSE=int(p.sparse),
    )
    steps = []
    if p.fused:
        return [
            (
                "whole",
                (vr,),
                ("x",),
                (
                    ("idx", (vr, k), np.int32),
                    ("cnt", (vr, 2), np.int32),
                    ("scr", (vr, 2 * p.capacity), np.int32),
                ),
                dict(
                    n=n,
                    C=p.chunk,
                    G=p.groups,
                    K=k,
                    CAP=p.capacity,
                    DT=code,
                    BOTTOM=int(bottom),
                    REFINE=p.refine,
                ),
                p.warps,
                (),
            )
        ]
    if p.row_groups:
        sampled = p.chunks // p.row_stride  # chunks 0, row_stride, 2·row_stride, …
        progs = -(-sampled // p.bound_pipe)  # each over bound_pipe of them
        g0 = p.row_groups // progs
        steps.append(
            (
                "scan",
                (vr, progs),
                ("x", "none32"),
                (
                    ("gm", (vr, p.row_groups), np.int32),
                    ("none32", (1,), np.int32),
                    ("none64", (2,), np.int32),
                ),
                dict(common, G=g0, CAP=1, MODE=0, HINT=0, CSTRIDE=p.row_stride, PIPE=p.bound_pipe),
                p.warps,
                (),
            )
        )
        steps.append(
            (
                "kth",
                (vr,),
                ("gm",),
                (("thr", (vr,), np.int32),),
                dict(ng=p.row_groups, GP=_pow2ceil(p.row_groups), K=k, SEARCH=int(p.search_kth)),
                4 if p.row_groups <= 2048 else 8 if p.row_groups <= 8192 else 16,
                (),
            )
        )
    if p.sample:
        steps.append(
            (
                "scan",
                (vr, 1),
                ("x", "none32"),
                (
                    ("gm", (vr, p.sample), np.int32),
                    ("none32", (1,), np.int32),
                    ("none64", (2,), np.int32),
                ),
                dict(common, C=p.sample, G=0, CAP=1, MODE=3, HINT=0, SB=SAMPLE_BLOCK),
                8 if p.sample >= 4096 else 4,
                (),
            )
        )
        steps.append(
            (
                "kth",
                (vr,),
                ("gm",),
                (("thr", (vr,), np.int32),),
                dict(ng=p.sample, GP=p.sample, K=k, SEARCH=1),
                8 if p.sample >= 4096 else 4,
                (),
            )
        )
    bounded = bool(p.row_groups or p.sample)
    steps.append(
        (
            "scan",
            (vr, -(-p.chunks // p.pipeline)),
            ("x", "thr" if bounded else "none32", "none32"),
            (("cnt", (vr, 2), np.int32), ("cand", (vr, 2 * p.capacity), np.int32)),
            dict(
                common,
                G=p.groups,
                CAP=p.capacity,
                MODE=1,
                HINT=int(bounded),
                PIPE=p.pipeline,
                STAGES=p.stages,
                RAW=int(p.raw),
            ),
            p.warps,
            ("cnt",),
        )
    )
    repair = dict(n=n, nseg=nseg, seg_len=p.seg_len, REPAIR=1)
    if p.repair_segment:  # a long row's repair, over its segments in parallel
        nrep = -(-n // p.repair_segment)
        seg = dict(n=n, nseg=nrep, seg_len=p.repair_segment, DT=code, BOTTOM=int(bottom))
        steps.append(
            (
                "segk",
                (vr, nrep),
                ("cnt", "x"),
                (("seg", (vr, 2 * nrep * k), np.int32), ("low", (vr, 2 * nrep), np.int32)),
                dict(seg, CAP=p.capacity, K=k, KP=_pow2ceil(k)),
                8,
                (),
            )
        )
        repair = dict(n=n, nseg=nrep, seg_len=p.repair_segment, MEND=1, NSP=_pow2ceil(nrep))
    steps.append(
        (
            "pick",
            (vr,),
            ("cnt", "cand", "seg", "low") if p.repair_segment else ("cnt", "cand", "x", "none64"),
            (("idx", (vr, k), np.int32), ("scr", (vr, 2 * p.capacity), np.int32)),
            dict(
                repair,
                CAP=p.capacity,
                K=k,
                BY_INDEX=int(by_index),
                DT=code,
                BOTTOM=int(bottom),
                SEARCH=int(p.search_pick),
                KP=_pow2ceil(k),
                RAW=int(p.raw),
            ),
            p.pick_warps,
            (),
        )
    )
    return steps


def _presets(rows: int, consts=()):
    """Arrays the launches read that no launch writes: dummies and constant bounds."""
    pre = {"none32": ((1,), 0), "none64": ((2,), 0)}
    pre.update({name: ((rows,), value) for name, value in consts})
    return pre


@functools.cache
def _kernel_parameters(name: str) -> tuple[frozenset, dict]:
    """(all parameter names, the defaulted ones with their defaults) of kernel ``name``."""
    from spiraljax.kernels.triton.kernels import _KERNELS

    params = inspect.signature(_KERNELS[name]).parameters
    defaults = {a: q.default for a, q in params.items() if q.default is not inspect.Parameter.empty}
    return frozenset(params), defaults


def _full_constants(name: str, consts: dict) -> dict:
    """``consts`` with every defaulted parameter of kernel ``name`` given explicitly.

    jax-triton passes the kernel's omitted constexpr parameters as None rather than their
    defaults (a ``PIPE`` left out of the MODE-0 launch made ``PIPE == 1`` false on the
    H200), so every launch names all of them; the interpreter runs the same dict.
    """
    names, defaults = _kernel_parameters(name)
    unknown = set(consts) - names
    if unknown:  # the interpreter drops unknown keywords silently; the compiler would not
        raise TypeError(f"kernel {name} has no parameters {sorted(unknown)}")
    return {**defaults, **consts}


# How the launches reach XLA: None, jax-triton's legacy custom call unless
# ``SPIRALJAX_TRITON_FFI=1`` asks for the typed FFI call (``ffi.py``: no faster on the
# H200); True / False force it on / off (``benchmarks/launch_overhead.py`` times both; set
# it before the first trace of a shape, as ``jit`` caches its lowering).
TRITON_FFI: bool | None = None


def _run_gpu(arrays, steps, presets):
    import jax_triton as jt  # GPU-only, imported lazily

    from spiraljax.kernels.triton import ffi, kernels

    use_ffi = ffi.requested() if TRITON_FFI is None else TRITON_FFI
    if use_ffi and not ffi.available():
        raise RuntimeError(
            "FFI Triton launches asked for (SPIRALJAX_TRITON_FFI=1 or select.TRITON_FFI), "
            f"but this jaxlib has no {ffi.FFI_TARGET!r} custom call target"
        )
    if use_ffi:
        ffi.install()
    target = {"custom_call_target_name": ffi.FFI_TARGET} if use_ffi else {}
    env = dict(arrays)
    env.update({a: jnp.full(shape, v, I32) for a, (shape, v) in presets.items()})
    for name, grid, ins, outs, consts, warps, zeroed in steps:
        shapes = [jax.ShapeDtypeStruct(s, d) for _, s, d in outs]
        res = jt.triton_call(
            *[env[i] for i in ins],
            kernel=kernels.compiled(name),
            out_shape=shapes,
            grid=grid,
            num_warps=warps,
            num_stages=1,
            zeroed_outputs=tuple(j for j, (o, _, _) in enumerate(outs) if o in zeroed),
            **target,
            **_full_constants(name, consts),
        )
        env.update({o: v for (o, _, _), v in zip(outs, res, strict=True)})
    return env["idx"], env["cnt"]


class _NpTensor:
    """The part of ``torch.Tensor`` that Triton's interpreter uses, over a numpy array."""

    def __init__(self, arr):
        self.arr = arr
        self.dtype = _TorchDtypeName(f"torch.{arr.dtype.name}")

    def data_ptr(self):
        return self.arr.ctypes.data

    def untyped_storage(self):
        return _NpStorage(self.arr)

    def storage_offset(self):
        return 0

    def size(self):
        return self.arr.shape

    def stride(self):
        return tuple(s // self.arr.itemsize for s in self.arr.strides)

    def new_empty(self, *args, **kwargs):
        return _NpTensor(self.arr)

    def set_(self, storage, offset, size, stride):
        self.arr = storage.arr
        return self


class _NpStorage:
    def __init__(self, arr):
        self.arr = arr

    def data_ptr(self):
        return self.arr.ctypes.data

    def cpu(self):
        return self

    def copy_(self, other):
        if other.arr is not self.arr:
            self.arr[...] = other.arr


class _TorchDtypeName(str):
    """``str(dtype)`` is what Triton's type mangling reads."""


def _interpreter_kernels():
    """``kernels`` with Triton in interpreter mode.

    Triton's interpreter only runs the library's own jitted helpers (``tl.sort``,
    ``tl.cumsum``) when ``TRITON_INTERPRET=1`` was set before ``triton`` was imported.
    """
    if "triton" not in sys.modules:
        os.environ["TRITON_INTERPRET"] = "1"
    import triton

    if not triton.knobs.runtime.interpret:
        raise RuntimeError(
            "the filtered Rank-K kernels run on CPU through Triton's interpreter, which "
            "needs TRITON_INTERPRET=1 set before triton is imported (it was imported "
            "without it in this process)"
        )
    from spiraljax.kernels.triton import kernels

    return kernels


def _run_interpreted(*values, names, steps, presets):
    kernels = _interpreter_kernels()

    env = {a: np.array(v) for a, v in zip(names, values, strict=True)}
    env.update({a: np.full(shape, v, np.int32) for a, (shape, v) in presets.items()})
    for name, grid, ins, outs, consts, _, _ in steps:
        for o, shape, dtype in outs:
            # Poisoned, except the counters: a slot the kernels forget shows up as garbage.
            env[o] = np.zeros(shape, dtype) if o == "cnt" else np.full(shape, -7, dtype)
        args = [_NpTensor(env[a]) for a in [*ins, *(o for o, _, _ in outs)]]
        kernels.interpreted(name)[grid](*args, **_full_constants(name, consts))
    return env["idx"], env["cnt"]


def _execute(arrays: dict, steps, presets, out_rows: int, k: int, interpret: bool):
    """Run the launches on the named input ``arrays``; returns the ``idx`` (out_rows, k)
    and ``cnt`` (out_rows, 2) arrays."""
    if interpret:
        shapes = (
            jax.ShapeDtypeStruct((out_rows, k), I32),
            jax.ShapeDtypeStruct((out_rows, 2), I32),
        )
        names = tuple(arrays)
        return jax.pure_callback(
            functools.partial(_run_interpreted, names=names, steps=steps, presets=presets),
            shapes,
            *arrays.values(),
            vmap_method="sequential",
        )
    return _run_gpu(arrays, steps, presets)


def _filtered(x2d, k: int, bottom: bool, p: FilterParams, interpret: bool):
    """Indices (rows, k) of the k largest kind keys of each row and a flag "all rows fit"."""
    rows, n = x2d.shape
    bits, code = _bits(x2d)
    nseg = -(-n // p.seg_len)
    # Segments hand their k in index order to the merge: runs sorted by key would defeat
    # the group-maxima bounds there, and index order keeps ties going to lower indices.
    steps = _launches(rows, n, k, p, code, bottom, by_index=nseg > 1)
    idx, cnt = _execute({"x": bits}, steps, _presets(rows * nseg), rows * nseg, k, interpret)
    # A safe bound keeps ≥ k keys of every (virtual) row; more than the buffer: not held.
    ok = jnp.all((cnt[:, 0] <= p.capacity) & (cnt[:, 0] >= k))
    return idx.reshape(rows, nseg * k), ok, nseg


def filtered_indices(
    x2d, k: int, kind: str, p: FilterParams | None = None, *, interpret: bool = False
):
    """Indices (rows, k) by the filtered kernels and the flag "every buffer held its row".

    The indices are exact either way; where the flag is False some row overflowed its
    buffer and ``pick`` repaired it from the input (slow: see the module docstring).
    ``p`` defaults to ``plan_filter``; a row longer than ``p.seg_len`` is selected in
    segments and merged (see the module docstring).
    """
    from spiraljax.kernels.keys import kind_key

    if kind not in ("top", "bottom"):
        raise ValueError(f"kind={kind!r}: the filtered kernels do 'top' and 'bottom'")
    _rows, n = x2d.shape
    if p is None:
        p = plan_filter(n, k)
    if p is None:
        raise ValueError(f"no filtered plan for n={n}, k={k}")
    idx, ok, nseg = _filtered(x2d, k, kind == "bottom", p, interpret)
    if nseg > 1:
        # Candidates of every segment in index order, so ties keep going to lower indices.
        ckey = jnp.take_along_axis(kind_key(x2d, kind), idx, axis=-1)
        pos, ok2 = _merge(ckey, k, p.seg_len, interpret)
        idx = jnp.take_along_axis(idx, pos, axis=-1)
        ok = ok & ok2
    return idx, ok


def select_indices(
    x2d, k: int, kind: str, p: FilterParams | None = None, *, interpret: bool = False
):
    """Exact Top-K / Bottom-K indices (rows, k) of a 2-D array by the filtered kernels.

    A row that keeps more candidates than its buffer holds is selected from the input
    by ``pick`` itself, so the result is exact on every input without a fallback branch.
    """
    return filtered_indices(x2d, k, kind, p, interpret=interpret)[0]


def _merge_pick(rows: int, m: int, k: int):
    """The launch of ``_merge`` sorting m ≤ ``CAPACITY_MAX`` candidates a row outright."""
    cap = _pow2ceil(m)
    return (
        "pick",
        (rows,),
        ("cnt", "cand", "none32", "none64"),
        (("idx", (rows, k), np.int32), ("scr", (1,), np.int32)),
        dict(n=1, nseg=1, seg_len=1, CAP=cap, K=k),
        _pick_warps(cap),
        (),
    )


def _merge(ckey, k: int, segment: int, interpret: bool):
    """Positions of the k largest int32 keys of each row, and the "all fit" flag.

    Up to ``CAPACITY_MAX`` candidates are sorted outright by ``pick``; more go through
    the filtered selection again.
    """
    rows, m = ckey.shape
    if m == k:
        return jnp.broadcast_to(jnp.arange(k, dtype=I32), (rows, k)), jnp.bool_(True)
    if m <= CAPACITY_MAX:
        cap = _pow2ceil(m)
        pos = jnp.broadcast_to(jnp.arange(m, dtype=I32), (rows, m))
        # little-endian int64 (key << 32 | ~pos) as two int32 words: ~pos first
        words = jnp.stack([~pos, ckey], axis=-1).reshape(rows, 2 * m)
        words = jnp.pad(words, ((0, 0), (0, 2 * (cap - m))))
        cnt = jnp.broadcast_to(jnp.array([m, 0], I32), (rows, 2))
        steps = [_merge_pick(rows, m, k)]
        idx, _ = _execute({"cnt": cnt, "cand": words}, steps, _presets(rows), rows, k, interpret)
        return idx, jnp.bool_(True)
    p = plan_filter(m, k, segment=segment)
    if p is None:
        from spiraljax.kernels.xla import select_indices as xla_indices

        return xla_indices(ckey, k, "top"), jnp.bool_(True)
    idx, ok, nseg = _filtered(ckey, k, False, p, interpret)
    if nseg > 1:
        pos, ok2 = _merge(jnp.take_along_axis(ckey, idx, axis=-1), k, segment, interpret)
        idx = jnp.take_along_axis(idx, pos, axis=-1)
        ok = ok & ok2
    return idx, ok


# ---------------------------------------------------------------------------------------
# Mid-K: ranks s … s + k − 1 (s = ⌊(n − k)/2⌋) of the selected-first order of the
# complemented key (ascending values). No safe bound exists for middle ranks, so the band
# comes from a sample and is *verified*: with ``above`` keys over the band and ``cnt``
# inside it, the band holds the wanted ranks iff above ≤ s and above + cnt ≥ s + k.
# ``pick`` checks that per row and selects a row whose band failed from the input.


@dataclasses.dataclass(frozen=True)
class MidParams:
    """Launch parameters of the filtered Mid-K of rows of n keys.

    Attributes:
      sample: sample keys per row (a power of two; the whole row when n ≤ sample).
      chunk: keys per ``scan`` program.
      capacity: candidate slots per row.
      sigmas: half-width of the band, in standard deviations of the sample quantile.
      atomic: how survivors get their buffer slots (as ``FilterParams.atomic``).
      pipeline, stages: the ``scan`` loop over chunks (as ``FilterParams``).
      sparse, search_pick: as ``FilterParams``.
    """

    sample: int
    chunk: int
    capacity: int
    sigmas: float = 4.0
    warps: int = 8
    pick_warps: int = 8
    atomic: int = 0
    pipeline: int = 1
    stages: int = 1
    sparse: bool = False
    search_pick: bool = False

    def __post_init__(self):
        _check_launch(self)


def _band_ranks(n: int, k: int, p: MidParams) -> tuple[int, int, int]:
    """Sample ranks (1-based, from the top) of the band's upper and lower ends; sample size."""
    s = (n - k) // 2
    if n <= p.sample:
        return s + 1, s + k, n  # the sample is the row: the band is exact
    m = p.sample
    hi_q, lo_q = s / n, (s + k) / n
    d_hi = p.sigmas * math.sqrt(m * hi_q * (1 - hi_q)) + 1
    d_lo = p.sigmas * math.sqrt(m * lo_q * (1 - lo_q)) + 1
    return math.floor(hi_q * m - d_hi) + 1, math.ceil(lo_q * m + d_lo), m


def plan_mid(n: int, k: int, *, sample: int = 8192) -> MidParams | None:
    """Default Mid-K launch parameters for rows of n keys, or None where they do not fit."""
    if not 1 <= k < n or n > SEGMENT:
        return None
    sample = min(sample, _pow2ceil(n))
    # Relaxed slot atomics and 16 warps per scan (H200, 2026-12-04, 1024×65536, k = 16:
    # 1.10 / 1.14 ms in two runs against 1.26 / 1.36 with acquire-release atomics, 8 warps).
    # ``pick`` sorting only its k (H200, 2026-12-04: 1024×65536, k = 16: 0.633 ms against
    # 1.083 sorting its 4096 slots; 4096×32768, k = 50: 1.483 against 2.133).
    p = MidParams(
        sample=sample,
        chunk=min(4096, _pow2ceil(n)),
        capacity=0,
        atomic=1,
        warps=16,
        search_pick=True,
    )
    j_hi, j_lo, m = _band_ranks(n, k, p)
    expect = (j_lo - j_hi + 1) * n / m
    cap = max(_pow2ceil(1.25 * expect + 64), _pow2ceil(k))
    if cap > CAPACITY_MAX:
        return None
    return dataclasses.replace(p, capacity=cap, pick_warps=4 if cap <= 1024 else 8)


def _mid_launches(rows: int, n: int, k: int, p: MidParams, code: int):
    s = (n - k) // 2
    j_hi, j_lo, m = _band_ranks(n, k, p)
    sb = SAMPLE_BLOCK if n > p.sample else p.sample
    ends = (("hi", j_hi, 2**31 - 1), ("lo", j_lo, -(2**31)))  # open ends: these constants
    common = dict(n=n, nseg=1, seg_len=n, K=k, DT=code, BOTTOM=1, HINT=0, REFINE=0, RUNNING=0)
    steps = [
        (
            "scan",
            (rows, 1),
            ("x", "none32"),
            (
                ("gm", (rows, p.sample), np.int32),
                ("none32", (1,), np.int32),
                ("none64", (2,), np.int32),
            ),
            dict(common, C=p.sample, G=0, CAP=1, MODE=3, SB=sb),
            8,
            (),
        )
    ]
    consts = []
    if all(1 <= j <= m for _, j, _ in ends):
        # both ends of the band in one launch (one read of the sample)
        steps.append(
            (
                "kth2",
                (rows,),
                ("gm",),
                (("hi", (rows,), np.int32), ("lo", (rows,), np.int32)),
                dict(ng=p.sample, GP=p.sample, K_HI=j_hi, K_LO=j_lo),
                8,
                (),
            )
        )
    else:
        for name, j, default in ends:
            if 1 <= j <= m:
                steps.append(
                    (
                        "kth",
                        (rows,),
                        ("gm",),
                        ((name, (rows,), np.int32),),
                        dict(ng=p.sample, GP=p.sample, K=j, SEARCH=1),
                        8,
                        (),
                    )
                )
            else:
                consts.append((name, default))  # the band is open on this side
    nch = -(-n // p.chunk)
    steps.append(
        (
            "scan",
            (rows, -(-nch // p.pipeline)),
            ("x", "lo", "hi"),
            (("cnt", (rows, 2), np.int32), ("cand", (rows, 2 * p.capacity), np.int32)),
            dict(
                common,
                C=p.chunk,
                G=0,
                CAP=p.capacity,
                MODE=2,
                SB=SAMPLE_BLOCK,
                ATOMIC=p.atomic,
                PIPE=p.pipeline,
                STAGES=p.stages,
                SPARSE=int(p.sparse),
            ),
            p.warps,
            ("cnt",),
        )
    )
    steps.append(
        (
            "pick",
            (rows,),
            ("cnt", "cand", "x", "none64"),
            (("idx", (rows, k), np.int32), ("scr", (rows, 2 * p.capacity), np.int32)),
            dict(
                n=n,
                nseg=1,
                seg_len=n,
                CAP=p.capacity,
                K=k,
                MID=1,
                S_RANK=s,
                REPAIR=1,  # a row whose band failed: its ranks from the input (exact_band)
                DT=code,
                BOTTOM=1,
                SEARCH=int(p.search_pick),
                KP=_pow2ceil(k),
            ),
            p.pick_warps,
            (),
        )
    )
    return steps, consts


def filtered_mid_indices(x2d, k: int, p: MidParams | None = None, *, interpret: bool = False):
    """Mid-K indices (rows, k) by the filtered kernels and the flag "every band held".

    The indices are exact either way: ``pick`` selects a row whose band failed from the
    input itself (``kernels.exact_band``: 64 passes over the row, slow)."""
    rows, n = x2d.shape
    if p is None:
        p = plan_mid(n, k)
    if p is None:
        raise ValueError(f"no filtered Mid-K plan for n={n}, k={k}")
    bits, code = _bits(x2d)
    steps, consts = _mid_launches(rows, n, k, p, code)
    idx, cnt = _execute({"x": bits}, steps, _presets(rows, consts), rows, k, interpret)
    s = (n - k) // 2
    inside, above = cnt[:, 0], cnt[:, 1]
    ok = jnp.all((inside <= p.capacity) & (above <= s) & (above + inside >= s + k))
    return idx, ok


def select_mid_indices(x2d, k: int, p: MidParams | None = None, *, interpret: bool = False):
    """Exact Mid-K indices (rows, k): a row whose band did not hold is repaired in ``pick``
    (no ``lax.cond``, which waits for its predicate on the host of a GPU)."""
    return filtered_mid_indices(x2d, k, p, interpret=interpret)[0]
