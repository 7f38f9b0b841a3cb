"""The CPU (XLA) selection paths: Mid-K by rank search, Bottom-K on float32 via −x.

Everything is checked bit-exactly (indices and value bytes) against the numpy lexsort
reference on the SPEC §6 total order; the internal rank search is checked against its
stated invariants on adversarial key distributions.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from rankk_reference import random_input, ref_indices

from spiraljax.kernels import bottomk, midk
from spiraljax.kernels import xla as X
from spiraljax.kernels.keys import signed_key

I32 = np.iinfo(np.int32)
OPS = {"mid": midk, "bottom": bottomk}


def _check(x, k, kind, axis=-1):
    v, i = OPS[kind](jnp.asarray(x), k, axis=axis, implementation="xla")
    xm = np.moveaxis(np.asarray(x), axis, -1)
    want = ref_indices(xm, k, kind)
    got = np.moveaxis(np.asarray(i), axis, -1)
    np.testing.assert_array_equal(got, want)
    gathered = np.take_along_axis(xm, want, axis=-1)
    vb = np.ascontiguousarray(np.moveaxis(np.asarray(v), axis, -1)).view(np.uint8)
    np.testing.assert_array_equal(vb, np.ascontiguousarray(gathered).view(np.uint8))


@pytest.mark.parametrize(
    "dtype,ties",
    [
        (np.float32, False),
        (np.float32, True),
        (jnp.bfloat16, False),
        (np.float16, True),
        (np.int32, False),
        (np.uint32, True),
    ],
)
def test_midk_long_rows_match_reference(dtype, ties):
    # n ≥ 4 × MID_SAMPLE takes the sampled first probes; 3 rows, heavy ties or specials
    x = random_input(np.random.default_rng(11), (3, 4 * X.MID_SAMPLE + 37), dtype, ties)
    _check(x, 100, "mid")


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
@pytest.mark.parametrize("kind", ["mid", "bottom"])
def test_extreme_tie_groups(i, kind):
    x = EXTREMES[i]
    n = x.shape[-1]
    # k = 17: rank s inside a tie group longer than the slack (index search, and for the
    # first two arrays the MIN-sentinel fallback); the last k takes the reference path.
    for k in (17, n // 2, n - 1 - X.MID_SLACK * 2):
        _check(x, k, kind)


def test_bottomk_float32_nan_payloads_tie_by_index():
    bits = np.array(
        [0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF800001, 0x7FFFFFFF, 0x3F800000, 0x80000000],
        np.uint32,
    )
    x = np.tile(bits.view(np.float32), 40)[None]
    for k in (3, 100, x.shape[-1]):
        _check(x, k, "bottom")


def test_midk_any_axis_and_vmap():
    x = random_input(np.random.default_rng(13), (300, 2, 3), np.int32, ties=True)
    _check(x, 20, "mid", axis=0)
    xs = jnp.asarray(random_input(np.random.default_rng(14), (3, 2, 400), np.float32))
    iv = jax.vmap(lambda r: midk(r, 40, implementation="xla")[1])(xs)
    np.testing.assert_array_equal(np.asarray(iv), ref_indices(np.asarray(xs), 40, "mid"))


def _composite_below(key, b, j):
    idx = np.arange(key.shape[-1])
    return np.sum((key < b[:, None]) | ((key == b[:, None]) & (idx < j[:, None])), axis=-1)


_search = jax.jit(X._search_rank, static_argnames=("slack", "dtype"))


@pytest.mark.parametrize(
    "name", ["lognormal_wide", "clustered", "ties_int", "sorted", "float16_ties"]
)
def test_search_rank_invariants(name):
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
    else:
        x = rng.integers(-3, 3, (4, n)).astype(np.float16)
    key = signed_key(jnp.asarray(x))
    for target, upper, slack in [(n // 2, n // 2 + 50, 16), (0, 1, 0), (n - 1, n, 3)]:
        t = jnp.full((4,), target, jnp.int32)
        u = jnp.full((4,), upper, jnp.int32)
        b, j, c, big_u, steps = _search(key, t, slack=slack, upper=u, dtype=x.dtype)
        kn = np.asarray(key)
        b, j, c, big_u = (np.asarray(a) for a in (b, j, c, big_u))
        np.testing.assert_array_equal(c, _composite_below(kn, b, j))
        assert np.all((target - c >= 0) & (target - c <= slack))
        assert np.all(np.sum(kn <= big_u[:, None], axis=-1) >= upper)
        assert int(steps) <= 4 * (32 + 12) * 2
