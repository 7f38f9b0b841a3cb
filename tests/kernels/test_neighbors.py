"""Nearest neighbours by Poincaré distance vs a brute-force float64 reference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spiraljax.kernels.neighbors import nearest_neighbors


def _ball(rng, n, d, scale=0.9):
    v = rng.standard_normal((n, d))
    r = scale * rng.random((n, 1)) ** (1 / d)
    return v / np.linalg.norm(v, axis=1, keepdims=True) * r


def _dist64(x, y, c=1.0):
    x2 = np.sum(x * x, -1)[:, None]
    y2 = np.sum(y * y, -1)[None, :]
    d2 = np.sum((x[:, None] - y[None]) ** 2, -1)
    arg = 1 + 2 * c * d2 / ((1 - c * x2) * (1 - c * y2))
    return np.arccosh(arg) / np.sqrt(c)


@pytest.mark.parametrize("curvature", [-1.0, -0.5])
def test_matches_bruteforce(curvature):
    rng = np.random.default_rng(0)
    q, p = _ball(rng, 6, 3, 0.9 / np.sqrt(-curvature)), _ball(rng, 40, 3, 0.9 / np.sqrt(-curvature))
    d, i = nearest_neighbors(jnp.asarray(q), jnp.asarray(p), 5, curvature=curvature)
    ref = _dist64(q, p, -curvature)
    want = np.argsort(ref, axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(np.asarray(i), want)
    np.testing.assert_allclose(np.asarray(d), np.take_along_axis(ref, want, 1), rtol=1e-9)


def test_exclude_self_and_errors():
    rng = np.random.default_rng(1)
    x = jnp.asarray(_ball(rng, 12, 2), jnp.float32)
    d, i = jax.jit(lambda x: nearest_neighbors(x, x, 3, exclude_self=True))(x)
    assert not np.any(np.asarray(i) == np.arange(12)[:, None])
    assert np.all(np.isfinite(np.asarray(d))) and np.all(np.diff(np.asarray(d), axis=1) >= 0)
    with pytest.raises(ValueError, match="k=12 exceeds the 11 other points"):
        nearest_neighbors(x, x, 12, exclude_self=True)
    with pytest.raises(ValueError, match="k=13 exceeds axis size 12"):
        nearest_neighbors(x, x, 13)


def test_gradient_flows_through_selected_distances():
    rng = np.random.default_rng(2)
    q = jnp.asarray(_ball(rng, 2, 2, 0.5))
    p = jnp.asarray(_ball(rng, 10, 2, 0.5))
    g = jax.grad(lambda p: jnp.sum(nearest_neighbors(q, p, 3)[0]))(p)
    _, i = nearest_neighbors(q, p, 3)
    touched = np.zeros(10, bool)
    touched[np.asarray(i).ravel()] = True
    g = np.asarray(g)
    assert np.all(np.isfinite(g))
    assert np.all(g[~touched] == 0) and np.all(np.abs(g[touched]).sum(1) > 0)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_query_ids_exclude_each_query_and_direct_distance_matches_reference(dtype):
    rng = np.random.default_rng(3)
    x64 = _ball(rng, 30, 3, 0.95)
    x64[7] = x64[3] + 1e-4  # a near pair: where the pairwise expansion loses digits
    qids = np.array([3, 0, 29])
    with jax.enable_x64(dtype == jnp.float64):
        x = jnp.asarray(x64, dtype)
        d, i = jax.jit(
            lambda x: nearest_neighbors(
                x[qids], x, 4, exclude_self=True, query_ids=qids, distance="direct"
            )
        )(x)
        d, i = np.asarray(d), np.asarray(i)
    assert d.dtype == np.dtype(dtype)
    ref = _dist64(x64[qids], x64)
    ref[np.arange(3), qids] = np.inf
    want = np.argsort(ref, axis=1, kind="stable")[:, :4]
    np.testing.assert_array_equal(i, want)
    assert i[0, 0] == 7
    rtol = 1e-9 if dtype == jnp.float64 else 2e-3
    np.testing.assert_allclose(d, np.take_along_axis(ref, want, 1), rtol=rtol)


def test_neighbour_argument_errors():
    x = jnp.asarray(_ball(np.random.default_rng(4), 8, 2), jnp.float32)
    with pytest.raises(ValueError, match="distance='exact' is not one of"):
        nearest_neighbors(x, x, 2, distance="exact")
    with pytest.raises(ValueError, match="query_ids is only meaningful"):
        nearest_neighbors(x[:2], x, 2, query_ids=[0, 1])
    with pytest.raises(ValueError, match="query_ids has 3 entries for 2 queries"):
        nearest_neighbors(x[:2], x, 2, exclude_self=True, query_ids=[0, 1, 2])
