"""The sampled-threshold Top/Bottom-K path (``Choice.sample``), Pallas interpret mode.

Exact on every input: on continuous data through the single-read path (asserted taken),
on heavy ties / sorted rows / all-equal rows through the radix fallback."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from rankk_reference import random_input, ref_indices

from spiraljax.kernels import Choice, bottomk, topk
from spiraljax.kernels.pallas import sample

OPS = {"top": topk, "bottom": bottomk}


@functools.cache
def _op(kind, k, choice):
    return jax.jit(lambda x: OPS[kind](x, k, implementation="pallas", choice=choice))


def _fast_path_taken(x, k, kind, choice):
    """Recompute the sampled path's own check: did the sample bound every row?"""
    n = x.shape[1]
    s = sample._sample_size(n, choice.sample)
    _, nch = sample._chunks(n, choice)
    cap = sample.capacity(n, k, s, nch)
    _, _, cnt, _thr = sample.filter_candidates(x, k, kind, choice, interpret=True)
    cnt = np.asarray(cnt)
    return bool((cnt <= cap).all() and (cnt.sum(1) >= k).all())


CASES = [
    ("top", jnp.float32, (3, 4096), 7, Choice(sample=1024, chunks=2, compact_tile=256)),
    ("bottom", jnp.float32, (2, 8192), 40, Choice(sample=1024, chunks=4, compact_tile=512)),
    (
        "top",
        jnp.bfloat16,
        (2, 8192),
        5,
        Choice(sample=1024, chunks=1, compact_tile=1024, ordering=1),
    ),
    ("bottom", jnp.float16, (2, 4096), 3, Choice(sample=1024, chunks=1, compact_tile=512)),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{jnp.dtype(c[1]).name}")
def test_single_read_path_exact_on_continuous_data(case):
    kind, dtype, shape, k, choice = case
    for seed in range(2):
        x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
        xj = jnp.asarray(x)
        assert _fast_path_taken(xj, k, kind, choice), "sample failed to bound the selection"
        _, idx = _op(kind, k, choice)(xj)
        np.testing.assert_array_equal(np.asarray(idx), ref_indices(x, k, kind))


@pytest.mark.parametrize("kind", ["top", "bottom"])
def test_exact_through_fallback(kind):
    """Ties, ±0, ±Inf, NaN, integers in a small range, sorted and constant rows."""
    choice = Choice(sample=1024, chunks=2, compact_tile=512)
    k = 9
    f = _op(kind, k, choice)
    rng = np.random.default_rng(3)
    inputs = [random_input(rng, (2, 4096), jnp.float32, ties=True) for _ in range(2)]
    inputs.append(np.tile(np.arange(4096, dtype=np.float32), (2, 1)))  # sorted rows
    inputs.append(np.full((2, 4096), 1.5, np.float32))  # one value: all ties
    inputs.append(np.where(rng.random((2, 4096)) < 0.01, np.nan, 0.0).astype(np.float32))
    for x in inputs:
        _, idx = f(jnp.asarray(x))
        np.testing.assert_array_equal(np.asarray(idx), ref_indices(x, k, kind))
    ints = rng.integers(-3, 3, (2, 4096)).astype(np.int32)
    _, idx = _op(kind, k, choice)(jnp.asarray(ints))
    np.testing.assert_array_equal(np.asarray(idx), ref_indices(ints, k, kind))
    assert not _fast_path_taken(jnp.asarray(ints), k, kind, choice)


def test_vmap_and_grad():
    choice = Choice(sample=1024, chunks=2, compact_tile=512)
    x = jnp.asarray(np.random.default_rng(7).standard_normal((2, 3, 4096)), jnp.float32)
    f = lambda a: topk(a, 5, implementation="pallas", choice=choice)  # noqa: E731
    v, i = jax.vmap(f)(x)
    for b in range(2):
        np.testing.assert_array_equal(np.asarray(i[b]), ref_indices(np.asarray(x[b]), 5, "top"))
    g = jax.grad(lambda a: jnp.sum(f(a)[0] ** 2))(x[0])
    want = np.zeros(x[0].shape, np.float32)
    np.put_along_axis(want, np.asarray(i[0]), 2 * np.asarray(v[0]), axis=-1)
    np.testing.assert_allclose(np.asarray(g), want, rtol=1e-6)


def test_sample_rank_and_capacity():
    # j grows with the expected sample count above the k-th key, never above the sample
    assert sample.sample_rank(65536, 16, 2048) == 12  # mu = 0.5
    assert sample.sample_rank(1000, 999, 250) == 250
    cap = sample.capacity(65536, 16, 2048, 1)
    assert cap >= 12 * 32  # about j·n/s candidates expected in the row
    assert sample.capacity(65536, 16, 2048, 4) < cap
    assert not sample.applicable(4096, 5, "mid", 1024)
    assert not sample.applicable(2048, 5, "top", 1024)  # sample would be half the row
    assert sample.applicable(4096, 5, "top", 1024)
