"""Fréchet mean, weighted midpoint and wrapped-normal sampling: semantics, not implementation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from geo_utils import assert_close, ball_points, tangents

import spiraljax.geometry as G

F64 = jnp.float64


def _objective(mu, xs, w, k):
    return jnp.sum(w * G.dist(mu, xs, curvature=k) ** 2)


@pytest.mark.parametrize("k", [-1.0, -0.2, -5.0])
@pytest.mark.parametrize("spread", [0.5, 0.95])
def test_frechet_mean_is_a_stationary_minimum(k, spread):
    rng = np.random.default_rng(0)
    xs = ball_points(rng, (7, 3), k, F64, max_frac=spread)
    w = jnp.asarray(rng.uniform(0.2, 2.0, size=7), F64)
    mu = G.frechet_mean(xs, w, curvature=k, axis=0, maxiter=200)
    # First-order condition: Σ wᵢ log_μ(xᵢ) = 0 (Riemannian gradient of the objective).
    grad = jnp.sum(w[:, None] * G.logmap(mu, xs, curvature=k), 0)
    assert G.norm(mu, grad, curvature=k) < 1e-9 * float(jnp.sum(w))
    # And a minimum: random geodesic perturbations increase the objective.
    f0 = _objective(mu, xs, w, k)
    for v in tangents(rng, (10, 3), F64, scale=1e-3):
        assert _objective(G.expmap(mu, v, curvature=k), xs, w, k) > f0


def test_frechet_mean_special_cases():
    k = -1.3
    rng = np.random.default_rng(1)
    x, y = ball_points(rng, (2, 3), k, F64, max_frac=0.9)
    # Two equal-weight points: the geodesic midpoint.
    assert_close(
        G.frechet_mean(jnp.stack([x, y]), curvature=k, axis=0),
        G.geodesic(0.5, x, y, curvature=k),
        F64,
        100,
    )
    # Repeated points: itself.
    assert_close(G.frechet_mean(jnp.stack([x] * 5), curvature=k, axis=0), x, F64)
    # maxiter=0 is the gyro-midpoint initialisation.
    xs = ball_points(rng, (5, 3), k, F64)
    assert_close(
        G.frechet_mean(xs, curvature=k, axis=0, maxiter=0),
        G.weighted_midpoint(xs, curvature=k, axis=0),
        F64,
    )
    # Isometry equivariance: mean(a ⊕ xs) = a ⊕ mean(xs).
    a = ball_points(rng, (3,), k, F64, max_frac=0.5)
    lhs = G.frechet_mean(G.mobius_add(a, xs, curvature=k), curvature=k, axis=0)
    rhs = G.mobius_add(a, G.frechet_mean(xs, curvature=k, axis=0), curvature=k)
    assert_close(lhs, rhs, F64, 1000)
    # A zero-weight point is ignored, wherever it is.
    w = jnp.asarray([1.0, 1.0, 1.0, 1.0, 0.0], F64)
    moved = xs.at[4].set(-xs[4] * 0.5)
    assert_close(
        G.frechet_mean(xs, w, curvature=k, axis=0),
        G.frechet_mean(moved, w, curvature=k, axis=0),
        F64,
        100,
    )


def test_frechet_mean_gradient_matches_midpoint_of_two_points():
    """For two points the mean is the geodesic midpoint, so their derivatives agree.

    (The derivative in the curvature is checked by finite differences in
    test_poincare_transforms and at K = 0 in test_poincare_identities.)
    """
    k = -0.7
    rng = np.random.default_rng(2)
    x, y = ball_points(rng, (2, 3), k, F64, max_frac=0.8)
    f = lambda a: jnp.sum(jnp.sin(G.frechet_mean(jnp.stack([a, y]), curvature=k, axis=0)))  # noqa: E731
    g = lambda a: jnp.sum(jnp.sin(G.geodesic(0.5, a, y, curvature=k)))  # noqa: E731
    np.testing.assert_allclose(jax.grad(f)(x), jax.grad(g)(x), rtol=1e-8, atol=1e-10)


def test_wrapped_normal_shapes_and_determinism():
    key = jax.random.key(3)
    mean = jnp.asarray([0.1, -0.2, 0.3], jnp.float32)
    assert G.wrapped_normal(key, mean, 0.5).shape == (3,)
    assert G.wrapped_normal(key, mean, 0.5, (5,)).shape == (5, 3)
    means = jnp.zeros((2, 3), jnp.float32)
    assert G.wrapped_normal(key, means, 0.5, (4, 2)).shape == (4, 2, 3)
    assert G.wrapped_normal(key, means, 0.5, (4, 1)).shape == (4, 2, 3)
    a = G.wrapped_normal(key, mean, 0.5, (5,))
    np.testing.assert_array_equal(a, G.wrapped_normal(key, mean, 0.5, (5,)))
    assert not np.allclose(a, G.wrapped_normal(jax.random.key(4), mean, 0.5, (5,)))
    assert a.dtype == jnp.float32


@pytest.mark.parametrize("k", [-1.0, -3.0, 0.0])
def test_wrapped_normal_distribution(k):
    """log at the mean, transported back to 0, is N(0, scale²·I); samples lie in the ball."""
    n, scale = 20000, jnp.asarray([0.3, 0.6, 1.2], F64)
    mean = jnp.asarray([0.2, -0.1, 0.25], F64) / np.sqrt(max(-k, 1.0))
    z = G.wrapped_normal(jax.random.key(5), mean, scale, (n,), curvature=k)
    if k < 0:
        assert np.all(np.linalg.norm(z, axis=-1) * np.sqrt(-k) < 1)
    v = G.transp0back(mean, G.logmap(mean, z, curvature=k), curvature=k)
    # Samples pushed to the projection margin are not invertible; they are rare here.
    np.testing.assert_allclose(np.mean(v, 0), 0.0, atol=4 * 1.2 / np.sqrt(n))
    np.testing.assert_allclose(np.std(v, 0), scale, rtol=0.03)
    # The samples concentrate around the mean: the Fréchet mean of the samples is near it.
    fm = G.frechet_mean(z[:2000], curvature=k, axis=0, maxiter=30)
    assert G.dist(fm, mean, curvature=k) < 0.1
