"""The CPU (XLA) selection paths: two-level Top-K / Bottom-K, Mid-K by band search.

Everything is checked bit-exactly (indices and value bytes) against the numpy lexsort
reference on the SPEC §6 total order; the internals (packed counts, the band search)
are checked against their stated invariants on adversarial key distributions.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from rankk_reference import random_input, ref_indices

from spiraljax.kernels import bottomk, midk, topk
from spiraljax.kernels import xla as X
from spiraljax.kernels.keys import key_range, signed_key

I32 = np.iinfo(np.int32)
OPS = {"top": topk, "mid": midk, "bottom": bottomk}


def _check(x, k, kind, axis=-1):
    v, i = OPS[kind](jnp.asarray(x), k, axis=axis, implementation="xla")
    xm = np.moveaxis(np.asarray(x), axis, -1)
    want = ref_indices(xm, k, kind)
    got = np.moveaxis(np.asarray(i), axis, -1)
    np.testing.assert_array_equal(got, want)
    gathered = np.take_along_axis(xm, want, axis=-1)
    vb = np.ascontiguousarray(np.moveaxis(np.asarray(v), axis, -1)).view(np.uint8)
    np.testing.assert_array_equal(vb, np.ascontiguousarray(gathered).view(np.uint8))


DTYPE_TIES = [
    (np.float32, False),
    (np.float32, True),
    (jnp.bfloat16, False),
    (np.float16, True),
    (np.int32, False),
    (np.uint32, True),
]


@pytest.mark.parametrize("dtype,ties", DTYPE_TIES)
@pytest.mark.parametrize("kind", ["top", "bottom"])
def test_two_level_top_matches_reference(dtype, ties, kind):
    # n ≥ 64 k takes the two-level path (block maxima, then the k best blocks); heavy ties
    # and ±0/±Inf/NaN spread over many blocks check that ties still go to the lower index
    n, k = 2048, 8
    assert X._block_size(n, k)
    x = random_input(np.random.default_rng(10), (3, n), dtype, ties)
    _check(x, k, kind)
    _check(x, 1, kind)


def test_two_level_top_all_equal_and_nan_blocks():
    # every block maximum ties (all equal), and NaN payloads that differ must still tie
    x = np.full((2, 1024), 3.0, np.float32)
    _check(x, 5, "top")
    bits = np.array([0x7FC00000, 0x7F800001, 0x7FFFFFFF, 0x3F800000], np.uint32)
    y = np.tile(bits.view(np.float32), 256)[None]
    for kind in ("top", "bottom"):
        _check(y, 9, kind)


@pytest.mark.parametrize(
    "dtype,ties", [(np.float32, True), (jnp.bfloat16, False), (np.uint32, True)]
)
@pytest.mark.parametrize("kind", ["top", "bottom"])
def test_searched_top_matches_reference(dtype, ties, kind):
    # n < 64 k: the band search brackets rank n − k from below (equal keys counted by
    # decreasing index), then top_k runs on the masked row
    n = 1500
    assert n >= X.TOP_SEARCH_MIN_N and not X._block_size(n, 100)
    x = random_input(np.random.default_rng(19), (3, n), dtype, ties)
    _check(x, 100, kind)
    _check(x, 700, kind)


def test_searched_top_min_key_clash():
    # rank n − k inside a tie group of the MIN key: the mask's sentinel would tie with
    # kept entries, so the plain top_k runs instead
    x = np.full((2, 2000), I32.min, np.int32)
    x[:, ::200] = 5
    _check(x, 500, "top")
    _check(np.where(x == I32.min, I32.max, x), 500, "bottom")


@pytest.mark.parametrize("dtype,ties", DTYPE_TIES)
def test_midk_long_rows_match_reference(dtype, ties):
    x = random_input(np.random.default_rng(11), (3, 4133), dtype, ties)
    _check(x, 100 if ties else 7, "mid")


def test_midk_two_level_band():
    # n ≥ 128 (k + W + W′): the final top_k runs on the blocks holding kept entries
    n, k = 1 << 16, 16
    w, wu = X._mid_slack(n, k)
    assert X._band_block(n, k + w + wu)
    x = random_input(np.random.default_rng(16), (2, n), np.float32)
    _check(x, k, "mid")
    # integer ties much longer than the slack: the band holds more than k + W + W′
    # entries, so the one-level branch runs
    y = random_input(np.random.default_rng(17), (2, n), np.int32, ties=True)
    _check(y, k, "mid")


def test_midk_chunked_rows_with_remainder():
    # rows > MID_CHUNK // n: lax.map over full chunks plus a tail of 2 rows
    n = 4096
    rows = 2 * (X.MID_CHUNK // n) + 2
    x = random_input(np.random.default_rng(12), (rows, n), np.float32)
    _check(x, 16, "mid")


EXTREMES = [
    # ±NaN only (keys MIN and MAX): rank s inside the −NaN tie group
    np.array([[-np.nan] * 150 + [np.nan] * 140 + [1.0] * 3], np.float32),
    # int32 extremes: B = MIN with J > 0 and the band reaching MAX (the clash fallback)
    np.array([[I32.min] * 100 + [I32.max] * 100 + [0] * 5], np.int32),
    np.array([[0] * 150 + [2**32 - 1] * 90], np.uint32),
    np.full((2, 300), 7, np.int32),
    np.array([[-0.0, 0.0] * 150], np.float32),
    np.array([[np.inf, -np.inf, 0.0] * 100], np.float16),
]


@pytest.mark.parametrize("i", range(len(EXTREMES)))
@pytest.mark.parametrize("kind", ["mid", "bottom", "top"])
def test_extreme_tie_groups(i, kind):
    x = EXTREMES[i]
    n = x.shape[-1]
    # k = 17: rank s inside a tie group longer than the slack (index search, and for the
    # first two arrays the MIN-sentinel fallback); the last k takes the reference path.
    for k in (17, n // 2, n - 1 - X.MID_MIN_S * 2):
        _check(x, k, kind)


def test_bottomk_float32_nan_payloads_tie_by_index():
    bits = np.array(
        [0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF800001, 0x7FFFFFFF, 0x3F800000, 0x80000000],
        np.uint32,
    )
    x = np.tile(bits.view(np.float32), 40)[None]
    for kind in ("bottom", "top"):
        for k in (3, 100, x.shape[-1]):
            _check(x, k, kind)


def test_midk_any_axis_and_vmap():
    x = random_input(np.random.default_rng(13), (300, 2, 3), np.int32, ties=True)
    _check(x, 20, "mid", axis=0)
    xs = jnp.asarray(random_input(np.random.default_rng(14), (3, 2, 400), np.float32))
    iv = jax.vmap(lambda r: midk(r, 40, implementation="xla")[1])(xs)
    np.testing.assert_array_equal(np.asarray(iv), ref_indices(np.asarray(xs), 40, "mid"))


@pytest.mark.parametrize("kind", ["mid", "top"])
def test_vmap_keeps_fallbacks_as_branches(kind):
    # the selection folds a vmapped axis into its rows (custom_vmap): its lax.cond
    # fallbacks must stay conditionals (vmap of a cond with a batched predicate is a
    # select that runs both branches), as many as without vmap
    xs = jnp.zeros((3, 2, 400), jnp.float32)

    def f(r):
        return OPS[kind](r, 40, implementation="xla")

    batched = str(jax.make_jaxpr(jax.vmap(f))(xs)).count("cond[")
    assert batched > 0
    assert batched == str(jax.make_jaxpr(f)(xs.reshape(6, 400))).count("cond[")
    iv = jax.vmap(jax.vmap(lambda r: f(r)[1]))(xs)
    np.testing.assert_array_equal(np.asarray(iv), ref_indices(np.asarray(xs), 40, kind))


@pytest.mark.parametrize("n", [31, 32, 100, 1000])
def test_counts_match_numpy(n):
    rng = np.random.default_rng(18)
    key = rng.integers(-3, 3, (3, n)).astype(np.int32)
    pk = rng.integers(-4, 4, (3, 4)).astype(np.int32)
    pj = rng.integers(0, n + 1, (3, 4)).astype(np.int32)
    le = np.sum(key[:, None, :] <= pk[:, :, None], axis=-1)
    np.testing.assert_array_equal(np.asarray(X._counts(jnp.asarray(key), jnp.asarray(pk))), le)
    idx = np.arange(n)
    below = (key[:, None, :] < pk[:, :, None]) | (
        (key[:, None, :] == pk[:, :, None]) & (idx < pj[:, :, None])
    )
    got = X._counts(jnp.asarray(key), jnp.asarray(pk), jnp.asarray(pj))
    np.testing.assert_array_equal(np.asarray(got), below.sum(-1))
    # equal keys by decreasing index: the index compared is n − 1 − i
    below = (key[:, None, :] < pk[:, :, None]) | (
        (key[:, None, :] == pk[:, :, None]) & (n - 1 - idx < pj[:, :, None])
    )
    got = X._counts(jnp.asarray(key), jnp.asarray(pk), jnp.asarray(pj), ties_desc=True)
    np.testing.assert_array_equal(np.asarray(got), below.sum(-1))
    # one block of COUNT_BLOCK equal keys: each 8-bit field holds its maximum, no carry
    full = jnp.zeros((1, X.COUNT_BLOCK), jnp.int32)
    np.testing.assert_array_equal(np.asarray(X._counts(full, jnp.zeros((1, 4), jnp.int32))), 32)


def _composite_below(key, b, j):
    idx = np.arange(key.shape[-1])
    return np.sum((key < b[:, None]) | ((key == b[:, None]) & (idx < j[:, None])), axis=-1)


def _search(key, t, u, slack, dtype):
    first, vlo, vhi = X._initial_probes(key, t, u, slack, dtype)
    return X._band_search(key, t, u, first, vlo, vhi, slack=slack, dtype=dtype)


_search_jit = jax.jit(_search, static_argnums=(1, 2, 3, 4))


@pytest.mark.parametrize(
    "name", ["lognormal_wide", "clustered", "ties_int", "sorted", "float16_ties", "nan_inf"]
)
def test_band_search_invariants(name):
    rng = np.random.default_rng(15)
    n = 3000
    if name == "lognormal_wide":  # values from 1e-30 to 1e30: interpolation is poor
        x = (np.exp(rng.uniform(-69, 69, (4, n))) * rng.choice([-1, 1], n)).astype(np.float32)
    elif name == "clustered":  # two far clusters, the target between them
        x = np.concatenate([rng.normal(-1e20, 1, (4, n // 2)), rng.normal(3, 1e-6, (4, n // 2))])
        x = x.reshape(4, n).astype(np.float32)
    elif name == "ties_int":
        x = rng.integers(-2, 3, (4, n)).astype(np.int32)
    elif name == "sorted":
        x = np.sort(rng.standard_normal((4, n)), axis=-1).astype(np.float32)
    elif name == "float16_ties":
        x = rng.integers(-3, 3, (4, n)).astype(np.float16)
    else:  # mostly non-finite: no finite sample, probes from key-space quarter points
        x = rng.choice(np.array([np.nan, -np.nan, np.inf, -np.inf, 1.0], np.float32), (4, n))
    key = signed_key(jnp.asarray(x))
    kn = np.asarray(key)
    kmin, kmax = key_range(x.dtype)
    for t, u, slack in [(n // 2, n // 2 + 50, (16, 8)), (0, 1, (0, 0)), (n - 1, n, (3, 0))]:
        b, j, c, big_u, c_u, passes = (
            np.asarray(a) for a in _search_jit(key, t, u, slack, np.dtype(x.dtype))
        )
        np.testing.assert_array_equal(c, _composite_below(kn, b, j))
        assert np.all((t - c >= 0) & (t - c <= slack[0]))
        np.testing.assert_array_equal(c_u, np.sum(kn <= big_u[:, None], axis=-1))
        assert np.all(c_u >= u)
        # the band is narrow unless the entries of rank u − 1 tie beyond the slack
        srt = np.sort(kn, axis=-1)
        tied = np.sum(kn == srt[:, u - 1, None], axis=-1) > 1
        assert np.all((c_u - u <= slack[1]) | tied)
        assert np.all((b >= kmin) & (big_u <= kmax))
        assert int(passes) <= 2 * (32 + 12)
