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
