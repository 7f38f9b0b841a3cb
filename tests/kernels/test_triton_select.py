"""The filtered Triton Rank-K kernels, run on CPU through Triton's interpreter.

Every case compares indices with the XLA path (the reference of every backend) and
checks whether the kernel path itself held the row (``ok``) where that is the point:
random data must not need the fallback, a long tie must take it.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spiraljax.kernels.triton import select as fsel
from spiraljax.kernels.xla import select_indices as xla_indices

# Not importorskip: importing triton here would precede TRITON_INTERPRET (conftest).
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("triton") is None, reason="needs the triton package"
)


def _data(rng, rows, n, dtype, nasty=False):
    x = rng.standard_normal((rows, n)).astype(np.float32)
    if nasty:
        m = rng.random((rows, n))
        x[m < 0.05] = np.round(x[m < 0.05], 1)  # ties
        x[(m > 0.5) & (m < 0.51)] = np.nan
        x[(m > 0.6) & (m < 0.605)] = np.inf
        x[(m > 0.7) & (m < 0.705)] = -np.inf
        x[(m > 0.8) & (m < 0.81)] = -0.0
        x[(m > 0.9) & (m < 0.91)] = 0.0
        x[0, :3] = -np.nan
    if np.dtype(dtype) == np.int32:
        return jnp.asarray(np.round(np.nan_to_num(x) * 1000).astype(np.int32))
    if np.dtype(dtype) == np.uint32:
        return jnp.asarray((np.nan_to_num(x) * 1e8).astype(np.int64).astype(np.uint32))
    return jnp.asarray(x).astype(dtype)


def _check(x, k, kind, p, *, expect_ok=True):
    # ok: every buffer held its row; the indices are exact either way (pick repairs a
    # row that overflowed from the input itself).
    idx, ok = jax.jit(lambda a: fsel.filtered_indices(a, k, kind, p, interpret=True))(x)
    ref = xla_indices(x, k, kind)
    if expect_ok is not None:
        assert bool(ok) is expect_ok
    np.testing.assert_array_equal(np.asarray(idx), np.asarray(ref))
    # select_indices is these indices (no fallback branch: test_select_indices_has_no_...)


@pytest.mark.parametrize(
    ("rows", "n", "k", "kind", "dtype"),
    [
        (4, 4096, 8, "top", jnp.float32),
        (3, 3000, 50, "bottom", jnp.float32),
        (2, 2048, 100, "top", jnp.bfloat16),
        (2, 2048, 16, "bottom", jnp.float16),
        (3, 3001, 7, "top", jnp.int32),
        (2, 1500, 9, "bottom", jnp.uint32),
    ],
)
def test_random_rows_take_the_kernel_path(rows, n, k, kind, dtype):
    rng = np.random.default_rng(rows * n + k)
    _check(_data(rng, rows, n, dtype), k, kind, fsel.plan_filter(n, k))


@pytest.mark.parametrize("kind", ["top", "bottom"])
def test_nan_inf_signed_zero_and_ties_are_exact(kind):
    rng = np.random.default_rng(7)
    x = _data(rng, 3, 4096, jnp.float32, nasty=True)
    _check(x, 40, kind, fsel.plan_filter(4096, 40), expect_ok=None)


@pytest.mark.parametrize(("search", "atomic"), [(False, 0), (True, 2)])
def test_row_bound_path(search, atomic):
    n, k = 2048, 300
    p = dataclasses.replace(fsel.plan_filter(n, k), search_kth=search, atomic=atomic)
    assert p.row_groups > 0 and p.groups == 0  # the chunk bound cannot help at this k
    _check(_data(np.random.default_rng(3), 1, n, jnp.float32), k, "top", p)


@pytest.mark.parametrize(("refine", "running", "atomic"), [(0, False, 2), (6, True, 1)])
def test_chunk_bound_options(refine, running, atomic):
    n, k = 2048, 20
    p = dataclasses.replace(fsel.plan_filter(n, k), refine=refine, running=running, atomic=atomic)
    _check(
        _data(np.random.default_rng(8), 2, n, jnp.float32, nasty=True),
        k,
        "bottom",
        p,
        expect_ok=None,
    )


@pytest.mark.parametrize(
    ("n", "k", "pipeline", "atomic", "stages"),
    [(4096, 20, 2, 1, 1), (3000, 20, 4, 0, 3), (2048, 300, 3, 1, 2), (5000, 64, 2, 2, 2)],
)
def test_pipelined_chunks_are_exact(n, k, pipeline, atomic, stages):
    # Several chunks per scan program (chunk counts not a multiple of the pipeline
    # included: the last program's surplus chunks are all masked out).
    base = fsel.plan_filter(n, k, chunk=512)
    p = dataclasses.replace(base, pipeline=pipeline, atomic=atomic, stages=stages)
    assert p.chunks > pipeline
    for nasty in (False, True):
        x = _data(np.random.default_rng(n + k), 2, n, jnp.float32, nasty=nasty)
        _check(x, k, "top", p, expect_ok=None if nasty else True)
        _check(x, k, "bottom", p, expect_ok=None)


@pytest.mark.parametrize(
    ("field", "value"), [("atomic", 3), ("pipeline", 0), ("stages", 0), ("pipeline", 2.0)]
)
def test_bad_launch_parameters_are_refused(field, value):
    base = fsel.plan_filter(4096, 20)
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(base, **{field: value})
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(fsel.plan_mid(4096, 20), **{field: value})


def test_segmented_rows_merge_exactly():
    n, k = 3000, 12
    p = fsel.plan_filter(n, k, segment=1024, wide=False)
    assert -(-n // p.seg_len) == 3 and p.seg_len % 256 == 0
    x = _data(np.random.default_rng(4), 1, n, jnp.float32, nasty=True)
    _check(x, k, "top", p, expect_ok=None)
    _check(x, k, "bottom", p, expect_ok=None)


def test_long_tie_takes_the_fallback():
    n, k = 4096, 16
    x = _data(np.random.default_rng(5), 3, n, jnp.float32).at[1, :].set(2.5)
    _check(x, k, "top", fsel.plan_filter(n, k), expect_ok=False)


def test_sorted_rows_take_the_fallback_and_stay_exact():
    n, k = 2048, 32
    x = jnp.tile(jnp.arange(n, dtype=jnp.float32), (2, 1))
    _check(x, k, "top", fsel.plan_filter(n, k), expect_ok=False)


def test_tiny_buffer_overflows_into_the_fallback():
    n, k = 2048, 8
    p = dataclasses.replace(fsel.plan_filter(n, k), capacity=8)
    x = _data(np.random.default_rng(6), 2, n, jnp.float32)
    _check(x, k, "top", p, expect_ok=False)


@pytest.mark.parametrize(
    ("n", "k"),
    [
        (4096, 8),
        (65536, 16),
        (65536, 128),
        (65536, 1024),
        (32768, 50),
        (1 << 26, 128),
        (1 << 26, 1024),
        (1 << 27, 64),
        (1048576, 256),
        (131072, 2048),
        (100, 5),
    ],
)
def test_plan_is_consistent(n, k):
    p = fsel.plan_filter(n, k)
    assert p is not None
    assert p.capacity >= k and p.capacity & (p.capacity - 1) == 0
    assert p.capacity <= fsel.CAPACITY_MAX
    assert p.chunk & (p.chunk - 1) == 0
    assert p.seg_len <= fsel.SEGMENT or (p.seg_len == n and p.repair_segment == fsel.SEGMENT)
    if p.groups:
        assert p.groups >= k and p.chunk // p.groups >= 8
    if p.row_groups:
        sampled = p.chunks // p.row_stride
        progs = -(-sampled // p.bound_pipe)
        assert p.row_groups > k and p.row_groups % progs == 0
        assert p.chunk // (p.row_groups // progs) >= 8
        assert p.bound_pipe <= 8 and -(-p.chunks // p.pipeline) <= 65535
    nseg = -(-n // p.seg_len)
    assert n - (nseg - 1) * p.seg_len > k  # the last segment holds k keys


@pytest.mark.parametrize(
    ("n", "k", "kind", "segment", "sample"),
    [
        (4096, 8, "top", 65536, 256),
        (3000, 20, "bottom", 65536, 512),  # n not a power of two
        (5000, 12, "top", 2048, 256),  # segmented: three virtual rows, merged
        (2048, 40, "bottom", 65536, 1024),
    ],
)
def test_sampled_row_bound_is_exact(n, k, kind, segment, sample):
    p = fsel.plan_filter(n, k, segment=segment, sample=sample)
    assert p.sample == sample and p.groups == 0 and p.row_groups == 0
    rng = np.random.default_rng(n + k)
    _check(_data(rng, 2, n, jnp.float32), k, kind, p)
    _check(_data(rng, 2, n, jnp.float32, nasty=True), k, kind, p, expect_ok=None)
    _check(_data(rng, 1, n, jnp.bfloat16), k, "top", p)


@pytest.mark.parametrize("sample", [100, 16, 4096, 8192])
def test_bad_sample_is_refused(sample):
    base = fsel.plan_filter(4096, 20, sample=0)
    with pytest.raises(ValueError, match="sample"):
        dataclasses.replace(base, sample=sample)  # not a power of two / too few / whole row
    with pytest.raises(ValueError, match="row_groups"):
        dataclasses.replace(fsel.plan_filter(2048, 300), sample=256)


@pytest.mark.parametrize(("n", "k"), [(65536, 16), (32768, 50), (1 << 26, 32), (65536, 4)])
def test_sampled_plan_sizes_its_buffer(n, k):
    p = fsel.plan_filter(n, k, sample=4096)
    assert fsel.plan_filter(n, k).sample == 0  # the sample is an option, not the default
    assert p.sample == 4096 and p.chunk == 2048 and p.groups == 0 and p.row_groups == 0
    expect = k * p.seg_len / p.sample
    assert expect + 8 * math.sqrt(k) * p.seg_len / p.sample <= p.capacity
    assert p.capacity <= 4 * (expect + 8 * math.sqrt(k) * p.seg_len / p.sample + 32)


@pytest.mark.parametrize("kind", ["top", "bottom"])
@pytest.mark.parametrize("segment", [65536, 1024])
def test_overflowing_rows_are_repaired_with_ties_to_lower_indices(kind, segment):
    # Row 1: five keys above a long tie (3000 keys) at the k-th value, so the bound sits at
    # the tie, the buffer overflows and pick selects that row from the input: the five,
    # then the tie's lowest indices. Row 0 is random and stays on the buffer.
    n, k = 4096, 16
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, n)).astype(np.float32) * 0.1
    sign = 1.0 if kind == "top" else -1.0
    tie = rng.choice(n, 3000, replace=False)
    x[1, tie] = 2.0 * sign
    x[1, rng.choice(np.setdiff1d(np.arange(n), tie), 5, replace=False)] = 3.0 * sign
    p = fsel.plan_filter(n, k, segment=segment)
    _check(jnp.asarray(x), k, kind, p, expect_ok=False)


def test_select_indices_has_no_fallback_branch():
    # The overflow repair is in the kernel: no lax.cond (a host round-trip on the GPU).
    x = jnp.zeros((2, 4096), jnp.float32)
    jaxpr = jax.make_jaxpr(lambda a: fsel.select_indices(a, 16, "top", interpret=True))(x)
    assert "cond" not in str(jaxpr)
    out = fsel.select_indices(x.at[1, 7].set(1.0), 16, "top", interpret=True)  # one long tie
    np.testing.assert_array_equal(
        np.asarray(out), np.asarray(xla_indices(x.at[1, 7].set(1.0), 16, "top"))
    )


@pytest.mark.parametrize(
    ("n", "k", "stride", "segment"),
    [(16384, 40, 4, 65536), (12000, 33, 2, 65536), (20000, 24, 2, 8192), (8192, 20, 4, 65536)],
)
def test_strided_row_bound_is_exact(n, k, stride, segment):
    # The row bound from every stride-th chunk's group maxima (n not a multiple of the
    # chunk and segmented rows included).
    p = fsel.plan_filter(n, k, chunk=512, segment=segment, refine=0, row_stride=stride)
    assert p.row_groups and p.row_stride == stride
    rng = np.random.default_rng(n + k)
    for kind in ("top", "bottom"):
        _check(_data(rng, 2, n, jnp.float32), k, kind, p)
        _check(_data(rng, 2, n, jnp.float32, nasty=True), k, kind, p, expect_ok=None)


@pytest.mark.parametrize(("n", "k", "want"), [(65536, 16, 4), (65536, 128, 2), (32768, 50, 2)])
def test_default_row_stride_keeps_the_buffer_small(n, k, want):
    # The largest stride whose buffer stays within max(256, the buffer of stride 1).
    p, one = fsel.plan_filter(n, k), fsel.plan_filter(n, k, row_stride=1)
    assert p.row_stride == want and one.row_stride == 1
    assert p.capacity <= max(256, one.capacity)
    assert fsel.plan_filter(n, k, row_stride=2 * want).capacity > max(256, one.capacity)


@pytest.mark.parametrize("stride", [3, 0, 64])
def test_bad_row_stride_is_refused(stride):
    base = fsel.plan_filter(16384, 40, chunk=512, refine=0, row_stride=1)
    with pytest.raises(ValueError, match="row_stride"):
        dataclasses.replace(base, row_stride=stride)
    with pytest.raises(ValueError, match="row_stride"):
        dataclasses.replace(fsel.plan_filter(4096, 8), row_stride=2)  # no row bound
    with pytest.raises(ValueError, match="row_stride=2"):
        fsel.plan_filter(4096, 8, row_stride=2)  # not silently dropped


def test_plan_refuses_what_does_not_fit():
    assert fsel.plan_filter(10, 10) is None
    assert fsel.plan_filter(65536, 20000) is None  # buffer beyond CAPACITY_MAX


def test_survivor_estimate():
    assert math.isinf(fsel._survivors(8, 8))
    assert fsel._survivors(64, 16) == pytest.approx(-64 * math.log(0.75))
    # the least of G group maxima keeps ~G·H_G keys of i.i.d. data (H_G harmonic)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 64, 32))  # 400 chunks of 64 groups of 32 keys
    kept = (x >= x.max(axis=2).min(axis=1)[:, None, None]).sum(axis=(1, 2)).mean()
    assert kept == pytest.approx(fsel._chunk_survivors(50, 0, 64) - 8, rel=0.1)


def test_bad_kind():
    with pytest.raises(ValueError, match="kind='mid'"):
        fsel.filtered_indices(jnp.zeros((2, 64)), 4, "mid", interpret=True)


def _check_mid(x, k, p, *, expect_ok=True):
    idx, ok = jax.jit(lambda a: fsel.filtered_mid_indices(a, k, p, interpret=True))(x)
    ref = xla_indices(x, k, "mid")
    if expect_ok is not None:
        assert bool(ok) is expect_ok
    if bool(ok):
        np.testing.assert_array_equal(np.asarray(idx), np.asarray(ref))
    out = fsel.select_mid_indices(x, k, p, interpret=True)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(ref))


@pytest.mark.parametrize(
    ("n", "k", "sample", "atomic", "pipeline"),
    [
        (4096, 16, 8192, 0, 1),  # the sample is the whole row: the band is exact
        (20000, 50, 2048, 0, 1),  # a sampled band
        (20000, 50, 2048, 1, 2),
        (9000, 7, 1024, 2, 3),
    ],
)
def test_filtered_midk_is_exact(n, k, sample, atomic, pipeline):
    p = dataclasses.replace(fsel.plan_mid(n, k, sample=sample), atomic=atomic, pipeline=pipeline)
    rng = np.random.default_rng(n + k)
    _check_mid(_data(rng, 2, n, jnp.float32), k, p)
    _check_mid(_data(rng, 2, n, jnp.float32, nasty=True), k, p, expect_ok=None)


def test_filtered_midk_band_failure_takes_the_fallback():
    n, k = 4000, 50
    p = fsel.plan_mid(n, k, sample=1024)
    x = _data(np.random.default_rng(1), 2, n, jnp.float32).at[1, :].set(0.5)
    _check_mid(x, k, p, expect_ok=False)  # one long tie: the band holds every key


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_midk_rows_whose_band_fails_are_repaired_in_pick(dtype):
    # A band far too narrow (0.01 standard deviations) misses the wanted ranks on most
    # rows; pick selects those rows from the input (ties at the band's ends included:
    # values rounded to 0.1, and a row with a tie across the middle ranks).
    n, k = 2500, 24
    p = dataclasses.replace(fsel.plan_mid(n, k, sample=512), sigmas=0.01)
    rng = np.random.default_rng(21)
    x = np.round(rng.standard_normal((2, n)), 1).astype(np.float32)
    x[1, rng.choice(n, 800, replace=False)] = 0.05
    _check_mid(jnp.asarray(x).astype(dtype), k, p, expect_ok=False)
    _check_mid(_data(rng, 1, n, dtype, nasty=True), k, p, expect_ok=None)


def test_select_midk_has_no_fallback_branch():
    x = jnp.zeros((2, 4096), jnp.float32)
    jaxpr = jax.make_jaxpr(lambda a: fsel.select_mid_indices(a, 16, interpret=True))(x)
    assert "cond" not in str(jaxpr)


def test_midk_plan_defaults():
    p = fsel.plan_mid(65536, 16)
    assert (p.atomic, p.warps, p.sparse, p.search_pick) == (1, 16, False, True)


@pytest.mark.parametrize(
    "launches",
    [
        lambda: fsel._launches(3, 65536, 128, fsel.plan_filter(65536, 128), 0, False),
        lambda: fsel._launches(2, 65536, 16, fsel.plan_filter(65536, 16), 0, True),
        lambda: fsel._mid_launches(2, 65536, 16, fsel.plan_mid(65536, 16), 0)[0],
        lambda: fsel._launches(2, 65536, 16, fsel.plan_filter(65536, 16, sample=4096), 1, True),
        lambda: fsel._launches(
            4, 4096, 8, dataclasses.replace(fsel.plan_filter(4096, 8), fused=True), 0, False
        ),
    ],
)
def test_every_launch_names_every_constexpr(launches):
    # jax-triton passes omitted constexpr parameters as None (the MODE-0 scan compiled
    # with PIPE = None on the H200): each launch's constants must name them all.
    import inspect

    from spiraljax.kernels.triton.kernels import _KERNELS

    for name, _, _, _, consts, _, _ in launches():
        full = fsel._full_constants(name, consts)
        params = inspect.signature(_KERNELS[name]).parameters
        defaulted = {a for a, q in params.items() if q.default is not inspect.Parameter.empty}
        assert defaulted <= set(full)
        assert all(full[a] is not None for a in defaulted)
        if name == "scan":
            assert isinstance(full["PIPE"], int) and isinstance(full["STAGES"], int)
    with pytest.raises(TypeError, match="no parameters"):
        fsel._full_constants("scan", {"NOPE": 1})


# ---------------------------------------------------------------------------------------
# Rows longer than the segment selected whole (``_plan_wide``): one bound, buffer and pick
# per row; an overflowing row is repaired over its segments (``segk``) and merged in pick.


@pytest.mark.parametrize(
    ("n", "k", "segment", "chunk", "stride"),
    [
        (5000, 12, 1024, 512, None),  # n not a multiple of the chunk or the segment
        (20000, 40, 2048, 512, None),
        (16384, 3, 4096, 256, 1),  # several chunks per row-bound program (bound_pipe)
        (9000, 150, 2048, 512, None),
    ],
)
def test_wide_rows_are_exact(n, k, segment, chunk, stride):
    p = fsel.plan_filter(n, k, segment=segment, chunk=chunk, row_stride=stride)
    assert p.seg_len == n and p.repair_segment == segment and p.row_groups
    if stride == 1:
        assert p.bound_pipe > 1
    rng = np.random.default_rng(n + k)
    for kind in ("top", "bottom"):
        _check(_data(rng, 2, n, jnp.float32), k, kind, p)
        _check(_data(rng, 2, n, jnp.float32, nasty=True), k, kind, p, expect_ok=None)
    _check(_data(rng, 1, n, jnp.bfloat16), k, "top", p, expect_ok=None)


@pytest.mark.parametrize("kind", ["top", "bottom"])
def test_wide_rows_that_overflow_are_repaired_over_segments(kind):
    # Row 0 random (its buffer holds it); row 1 a long tie at the k-th value with four
    # keys above it (ties to the lowest indices, across segments); row 2 sorted (the
    # group maxima bound nothing). The last segment (5 keys) is shorter than k.
    n, k, segment = 3 * 1024 + 5, 16, 1024
    p = fsel.plan_filter(n, k, segment=segment, chunk=256)
    assert p.seg_len == n and p.repair_segment == segment
    rng = np.random.default_rng(12)
    sign = 1.0 if kind == "top" else -1.0
    x = rng.standard_normal((3, n)).astype(np.float32) * 0.1
    x[1, rng.choice(n, 2500, replace=False)] = 2.0 * sign
    x[1, [5, 1500, 2100, n - 1]] = 3.0 * sign
    x[2] = sign * np.arange(n, dtype=np.float32)
    _check(jnp.asarray(x), k, kind, p, expect_ok=False)
    _check(jnp.zeros((2, n), jnp.float32), k, kind, p, expect_ok=False)


def test_wide_mend_falls_back_to_the_bitwise_search():
    # Random rows with a buffer of exactly k slots: every row overflows, and more than k
    # candidates pass the segments' bound, so pick takes the row's k by the 64-bit search.
    n, k = 4 * 1024, 16
    p = dataclasses.replace(fsel.plan_filter(n, k, segment=1024, chunk=256), capacity=16)
    _check(_data(np.random.default_rng(13), 2, n, jnp.float32), k, "top", p, expect_ok=False)


def test_wide_plan_is_the_default_beyond_the_segment():
    p = fsel.plan_filter(1 << 26, 1024)
    assert p.seg_len == 1 << 26 and p.repair_segment == fsel.SEGMENT and p.bound_pipe == 8
    assert fsel.plan_filter(1 << 26, 1024, wide=False).seg_len == fsel.SEGMENT
    assert fsel.plan_filter(65536, 1024).repair_segment == 0  # rows of a segment: as before


@pytest.mark.parametrize(
    ("field", "value"), [("bound_pipe", 3), ("bound_pipe", 0), ("repair_segment", 100)]
)
def test_bad_wide_parameters_are_refused(field, value):
    base = fsel.plan_filter(20000, 40, segment=2048, chunk=512)
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(base, **{field: value})
    with pytest.raises(ValueError, match="bound_pipe"):
        dataclasses.replace(fsel.plan_filter(4096, 8), bound_pipe=2)  # no row bound


@pytest.mark.parametrize(
    ("n", "k", "kind", "segment"),
    [(4096, 16, "top", 65536), (3000, 40, "bottom", 65536), (5000, 12, "top", 1024)],
)
def test_search_pick_is_exact(n, k, kind, segment):
    # pick sorting only its k, found by a bitwise search over the buffer; on random rows,
    # rows with ties, overflowing rows (repaired first) and a wide row's mended ones.
    p = dataclasses.replace(fsel.plan_filter(n, k, segment=segment), search_pick=True)
    rng = np.random.default_rng(n + k + 1)
    _check(_data(rng, 2, n, jnp.float32), k, kind, p)
    _check(_data(rng, 2, n, jnp.float32, nasty=True), k, kind, p, expect_ok=None)
    x = _data(rng, 2, n, jnp.float32).at[1, :].set(1.0)
    _check(x, k, kind, p, expect_ok=False)


def test_search_pick_midk_is_exact():
    n, k = 4000, 20
    base = dataclasses.replace(fsel.plan_mid(n, k, sample=1024), search_pick=True)
    rng = np.random.default_rng(3)
    _check_mid(_data(rng, 2, n, jnp.float32, nasty=True), k, base, expect_ok=None)
    narrow = dataclasses.replace(base, sigmas=0.01)  # most bands fail: repaired, then searched
    _check_mid(_data(rng, 1, n, jnp.float32), k, narrow, expect_ok=False)


def test_public_api_takes_the_wide_plan_on_long_rows():
    # topk / bottomk as a user calls them, routed to the filtered kernels (family 1, as
    # the GPU policy plans): a row longer than the segment is selected whole; a row of
    # one value (every key survives) is mended from its two segments.
    from spiraljax.kernels import Choice, bottomk, topk

    n, k = 70000, 8
    assert fsel.plan_filter(n, k).repair_segment == fsel.SEGMENT
    rng = np.random.default_rng(7)
    x = jnp.asarray(rng.standard_normal((1, n)).astype(np.float32))
    tied = jnp.full((1, n), 1.5, jnp.float32).at[0, n - 3].set(2.0)
    for op, data in ((topk, x), (bottomk, x), (topk, tied)):
        v, i = op(data, k, implementation="pallas", choice=Choice(family=1))
        vr, ir = op(data, k, implementation="xla")
        np.testing.assert_array_equal(np.asarray(i), np.asarray(ir))
        np.testing.assert_array_equal(np.asarray(v), np.asarray(vr))


# ---------------------------------------------------------------------------------------
# Rows of one chunk: scan and pick fused in one program per row (``whole``).


@pytest.mark.parametrize(("n", "k"), [(4096, 8), (2048, 32), (3000, 50), (100, 5)])
def test_rows_of_one_chunk_can_be_fused(n, k):
    p = fsel.plan_filter(n, k)
    assert not p.fused  # off by default: slower on the H200 (FilterParams.fused)
    q = dataclasses.replace(p, fused=True)
    assert [s[0] for s in fsel._launches(2, n, k, q, 0, False)] == ["whole"]


@pytest.mark.parametrize(
    ("rows", "n", "k", "kind", "dtype", "refine"),
    [
        (3, 4096, 8, "top", jnp.float32, 0),
        (2, 3001, 33, "bottom", jnp.float32, 4),  # n not a power of two: a padded tile
        (2, 2048, 16, "top", jnp.bfloat16, 0),
        (2, 1000, 7, "bottom", jnp.int32, 4),
    ],
)
def test_fused_rows_equal_the_two_launches(rows, n, k, kind, dtype, refine):
    unfused = dataclasses.replace(fsel.plan_filter(n, k, refine=refine), refine=refine)
    p = dataclasses.replace(unfused, fused=True)
    rng = np.random.default_rng(n + k)
    for nasty in (False, True) if jnp.issubdtype(dtype, jnp.floating) else (False,):
        x = _data(rng, rows, n, dtype, nasty=nasty)
        _check(x, k, kind, p, expect_ok=None if nasty else True)
        _check(x, k, kind, unfused, expect_ok=None if nasty else True)


def test_fused_rows_that_overflow_are_repaired_with_ties_to_lower_indices():
    n, k = 2048, 12
    p = dataclasses.replace(fsel.plan_filter(n, k), fused=True)
    x = _data(np.random.default_rng(4), 3, n, jnp.float32)
    x = x.at[0, :].set(1.0).at[2, ::2].set(3.0)  # a row of one value; a half-tied row
    _check(x, k, "top", p, expect_ok=False)
    _check(x, k, "bottom", p, expect_ok=False)
    _check(x, k, "top", dataclasses.replace(p, capacity=16), expect_ok=False)


@pytest.mark.parametrize(
    "change",
    [dict(chunk=1024), dict(groups=0), dict(row_groups=64), dict(search_pick=True)],
)
def test_bad_fused_parameters_are_refused(change):
    p = dataclasses.replace(fsel.plan_filter(2048, 16), fused=True)
    with pytest.raises(ValueError, match="fused"):
        dataclasses.replace(p, **change)


# ---------------------------------------------------------------------------------------
# The filtering scan on raw bits (``FilterParams.raw``, ``kernels.at_least``).


def _special_rows(rows, n, dtype, seed):
    """Rows mixing ±0, ±Inf, NaNs of both signs and payloads, subnormals and ties."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, n)).astype(np.float32)
    m = rng.random((rows, n))
    x[m < 0.03] = np.round(x[m < 0.03], 1)
    x[(m > 0.3) & (m < 0.31)] = 0.0
    x[(m > 0.4) & (m < 0.41)] = -0.0
    x[(m > 0.5) & (m < 0.51)] = np.inf
    x[(m > 0.6) & (m < 0.61)] = -np.inf
    x[(m > 0.7) & (m < 0.705)] = 1e-40  # subnormal
    bits = x.view(np.uint32)
    nan = (m > 0.8) & (m < 0.81)
    bits[nan] = 0x7F800001 + (rng.integers(0, 1 << 22, nan.sum()).astype(np.uint32))
    neg = (m > 0.9) & (m < 0.91)
    bits[neg] = 0xFF800001 + (rng.integers(0, 1 << 22, neg.sum()).astype(np.uint32))
    return jnp.asarray(x).astype(dtype)


@pytest.mark.parametrize("raw", [True, False])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16, jnp.int32, jnp.uint32])
@pytest.mark.parametrize("kind", ["top", "bottom"])
def test_raw_bound_scan_is_exact(dtype, kind, raw):
    # the plans' default (raw bits) and the order keys, on the same rows
    n, k = 4096, 24
    base = fsel.plan_filter(n, k, chunk=512, refine=0)
    assert base.groups == 0 and base.row_groups and base.raw
    p = dataclasses.replace(base, raw=raw)
    rng = np.random.default_rng(11)
    if jnp.issubdtype(dtype, jnp.floating):
        _check(_special_rows(3, n, dtype, 5), k, kind, p, expect_ok=None)
        # bounds on either side of the fast path: all-negative rows (Top-K's bound < 0),
        # all-positive rows (Bottom-K's), rows of NaNs and Infs only
        neg = -jnp.abs(_data(rng, 2, n, jnp.float32)).astype(dtype) - 1
        _check(neg, k, kind, p, expect_ok=None)
        _check(-neg, k, kind, p, expect_ok=None)
        odd = jnp.where(jnp.arange(n) % 3 == 0, jnp.nan, jnp.inf).astype(dtype)
        _check(jnp.stack([odd, -odd]), k, kind, p, expect_ok=None)
    _check(_data(rng, 2, n, dtype), k, kind, p)
    _check(_data(rng, 2, n, dtype).at[1, :].set(1), k, kind, p, expect_ok=False)


def test_raw_bound_scan_on_wide_rows():
    n, k = 9000, 40
    p = dataclasses.replace(fsel.plan_filter(n, k, segment=2048, chunk=512), raw=True)
    assert p.repair_segment  # the mended pick reads segk's key-packed candidates
    rng = np.random.default_rng(2)
    for kind in ("top", "bottom"):
        _check(_special_rows(2, n, jnp.float32, 3), k, kind, p, expect_ok=None)
        x = _data(rng, 2, n, jnp.float32).at[0, :].set(2.0)
        _check(x, k, kind, p, expect_ok=False)


def test_raw_defaults_and_refusals():
    p = fsel.plan_filter(4096, 8)
    assert p.groups and not p.raw  # chunk bounds: raw not measured yet, off
    assert fsel.plan_filter(65536, 16).raw and fsel.plan_filter(1 << 26, 1024).raw
    with pytest.raises(ValueError, match="raw"):
        dataclasses.replace(p, raw=True, fused=True)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16, jnp.int32])
@pytest.mark.parametrize("kind", ["top", "bottom"])
@pytest.mark.parametrize(("n", "k", "refine"), [(4096, 8, 0), (2048, 32, 4), (3000, 16, 4)])
def test_raw_chunk_bounds_are_exact(n, k, refine, kind, dtype):
    # raw_chunk_bound: group maxima from the bits where every group holds a key of the
    # selected sign, the keys elsewhere (all-negative rows for Top-K, all-positive for
    # Bottom-K, NaN/Inf rows); bisection steps counted with at_least
    p = dataclasses.replace(fsel.plan_filter(n, k, refine=refine), raw=True, refine=refine)
    assert p.groups and not p.row_groups
    rng = np.random.default_rng(n + k + refine)
    _check(_data(rng, 2, n, dtype), k, kind, p)
    if jnp.issubdtype(dtype, jnp.floating):
        _check(_special_rows(2, n, dtype, 7), k, kind, p, expect_ok=None)
        neg = -jnp.abs(_data(rng, 2, n, jnp.float32)).astype(dtype) - 1
        _check(neg, k, kind, p, expect_ok=None)
        _check(-neg, k, kind, p, expect_ok=None)
        # one group of the chunk all negative (Top-K) / all positive (Bottom-K) only
        x = np.array(_data(rng, 1, n, jnp.float32))
        w = p.chunk // p.groups  # the first group of the chunk: its first w keys
        x[0, :w] = -np.abs(x[0, :w]) if kind == "top" else 1 + np.abs(x[0, :w])
        _check(jnp.asarray(x).astype(dtype), k, kind, p, expect_ok=None)
    _check(_data(rng, 2, n, dtype).at[0, :].set(1), k, kind, p, expect_ok=False)
