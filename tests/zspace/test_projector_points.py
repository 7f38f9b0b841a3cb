"""ZSpaceProjector and hyperbolic_barycenter (points of the ball) against closed forms."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spiraljax.geometry import poincare
from spiraljax.geometry.guards import ball_eps
from spiraljax.zspace import (
    LanguageWaveEncoder,
    ZSpaceProjector,
    hyperbolic_barycenter,
    zspace_project,
)


def rng(seed: int = 7) -> np.random.Generator:
    """A fresh generator per test: inputs must not depend on which tests ran before
    (pytest-xdist hands tests to workers in a different order each run)."""
    return np.random.default_rng(seed)


def expmap0_ref(x: np.ndarray, c: float, eps: float = 0.0) -> np.ndarray:
    """tanh(√c‖x‖)·x/(√c‖x‖), projected to norm ≤ (1 − eps)/√c as the library documents
    (eps = ball_eps(dtype): 1e-5 for float32 and float64)."""
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    if c == 0:
        return x
    e = np.tanh(np.sqrt(c) * n) * x / (np.sqrt(c) * np.maximum(n, 1e-300))
    en = np.linalg.norm(e, axis=-1, keepdims=True)
    top = (1 - eps) / np.sqrt(c)
    return np.where(en > top, e * top / np.maximum(en, 1e-300), e)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("curvature", [0.0, -0.3, -1.0, -5.0])
@pytest.mark.parametrize("strength", [0.0, 0.25, 1.0, 1.7])
def test_projector_formula(dtype, curvature, strength):
    x = rng().normal(size=(4, 3, 5)) * 0.4
    out = ZSpaceProjector(curvature, strength)(jnp.asarray(x, dtype))
    assert out.shape == x.shape and out.dtype == dtype
    image = expmap0_ref(x, -curvature, ball_eps(dtype))
    expected = x + strength * (image - x)
    tol = 2e-6 if dtype == jnp.float32 else 1e-13
    np.testing.assert_allclose(np.asarray(out), expected, atol=tol, rtol=tol)
    if strength == 0.0:
        np.testing.assert_array_equal(np.asarray(out), np.asarray(jnp.asarray(x, dtype)))


def test_projector_full_strength_is_inside_ball_for_huge_inputs():
    x = jnp.asarray([[1e6, -1e6, 3.0], [1e-15, 0.0, 0.0], [0.0, 0.0, 0.0]], jnp.float32)
    for curvature in (-1.0, -100.0, -1e-4):
        out = np.asarray(ZSpaceProjector(curvature, 1.0)(x), np.float64)
        assert np.all(np.isfinite(out))
        assert np.all(np.sqrt(-curvature) * np.linalg.norm(out, axis=-1) < 1)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_projector_jit_vmap_grad(dtype):
    x = jnp.asarray(rng().normal(size=(6, 4)), dtype)
    proj = ZSpaceProjector(-1.0, 0.5)
    eager = proj(x)
    np.testing.assert_allclose(
        np.asarray(jax.jit(lambda p, v: p(v))(proj, x)), np.asarray(eager), rtol=1e-6
    )
    per_row = jax.vmap(proj)(x)
    np.testing.assert_allclose(np.asarray(per_row), np.asarray(eager), rtol=1e-6)
    strengths = jnp.asarray([0.0, 0.5, 1.0], dtype)
    over_s = jax.vmap(lambda s: zspace_project(x, curvature=-1.0, strength=s))(strengths)
    np.testing.assert_allclose(np.asarray(over_s[0]), np.asarray(x), rtol=0)

    def loss(v, k, s):
        return jnp.sum(zspace_project(v, curvature=k, strength=s) ** 2)

    grads = jax.grad(loss, argnums=(0, 1, 2))(
        x.at[0].set(0.0), jnp.asarray(-1.0, dtype), jnp.asarray(0.5, dtype)
    )
    for g in grads:
        assert bool(jnp.all(jnp.isfinite(g)))
    # d/dσ of x + σ(e − x) is e − x: check against the closed form.
    gs = jax.grad(lambda s: jnp.sum(zspace_project(x, curvature=-1.0, strength=s)))(
        jnp.asarray(0.3, dtype)
    )
    xe = np.asarray(x, np.float64)
    want = np.sum(expmap0_ref(xe, 1.0, ball_eps(dtype)) - xe)
    np.testing.assert_allclose(float(gs), want, rtol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"curvature": 1.0}, "curvature"),
        ({"curvature": -1.0, "strength": -0.1}, "strength"),
        ({"curvature": -1.0, "strength": float("nan")}, "strength"),
        ({"curvature": -1.0, "strength": [1.0, 2.0]}, "strength"),
    ],
)
def test_projector_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ZSpaceProjector(**kwargs)


def _frechet_objective(mu, xs, w, c):
    d = np.asarray(poincare.dist(jnp.asarray(mu)[None], jnp.asarray(xs), curvature=-c))
    return float(np.sum(w * d**2))


@pytest.mark.parametrize("curvature", [-0.5, -1.0, -4.0])
def test_frechet_barycenter_of_encoded_texts_minimises_sum_of_squared_distances(curvature):
    enc = LanguageWaveEncoder(curvature=curvature, temperature=1.5, dim=8, dtype=jnp.float64)
    texts = [
        "alpha",
        "beta gamma",
        "a much longer sentence about hyperbolic geometry",
        "🙂🙂",
        "zzz",
    ]
    pts = enc.encode_batch(texts)
    w = np.array([1.0, 2.0, 0.5, 1.0, 3.0])
    mu = np.asarray(hyperbolic_barycenter(pts, jnp.asarray(w), curvature=curvature, maxiter=300))
    c = -curvature
    assert np.sqrt(c) * np.linalg.norm(mu) < 1
    f0 = _frechet_objective(mu, pts, w, c)
    # Riemannian gradient Σ wᵢ log_μ(xᵢ) vanishes at the Fréchet mean.
    grad = np.sum(
        w[:, None] * np.asarray(poincare.logmap(jnp.asarray(mu)[None], pts, curvature=curvature)), 0
    )
    assert np.linalg.norm(grad) < 1e-8
    gen = rng()
    for _ in range(20):
        step = gen.normal(size=8) * 1e-3 / np.sqrt(c)
        other = np.asarray(poincare.expmap(jnp.asarray(mu), jnp.asarray(step), curvature=curvature))
        assert _frechet_objective(other, pts, w, c) >= f0 - 1e-12
    mid = hyperbolic_barycenter(pts, jnp.asarray(w), curvature=curvature, method="midpoint")
    assert np.sqrt(c) * np.linalg.norm(np.asarray(mid)) < 1


def test_point_barycenter_special_cases():
    xs = jnp.asarray(rng().normal(size=(5, 3)) * 0.2, jnp.float64)
    w = jnp.asarray([1.0, 2.0, 3.0, 0.5, 0.5], jnp.float64)
    # K = 0: the weighted arithmetic mean, for both methods.
    mean = np.sum(np.asarray(w)[:, None] * np.asarray(xs), 0) / float(jnp.sum(w))
    for method in ("frechet", "midpoint"):
        np.testing.assert_allclose(
            np.asarray(hyperbolic_barycenter(xs, w, curvature=0.0, method=method)), mean, rtol=1e-12
        )
    # One point is its own barycenter; two equally weighted points give the geodesic midpoint.
    one = hyperbolic_barycenter(xs[:1], curvature=-1.0)
    np.testing.assert_allclose(np.asarray(one), np.asarray(xs[0]), atol=1e-12)
    pair = hyperbolic_barycenter(xs[:2], curvature=-1.0)
    mid = poincare.geodesic(0.5, xs[0], xs[1], curvature=-1.0)
    np.testing.assert_allclose(np.asarray(pair), np.asarray(mid), atol=1e-10)
    # Batched leading axes, jit and grad.
    batch = jnp.stack([xs, xs[::-1]])
    out = jax.jit(lambda p: hyperbolic_barycenter(p, curvature=-1.0))(batch)
    assert out.shape == (2, 3)
    np.testing.assert_allclose(np.asarray(out[0]), np.asarray(out[1]), atol=1e-10)
    g = jax.grad(lambda p: jnp.sum(hyperbolic_barycenter(p, curvature=-1.0, maxiter=20)))(xs)
    assert bool(jnp.all(jnp.isfinite(g)))


def test_point_barycenter_bad_inputs():
    xs = jnp.zeros((3, 2), jnp.float64)
    with pytest.raises(ValueError, match="method"):
        hyperbolic_barycenter(xs, method="mean")
    with pytest.raises(ValueError, match="weights has shape"):
        hyperbolic_barycenter(xs, jnp.ones(2, jnp.float64))
    with pytest.raises(ValueError, match="weights must be non-negative"):
        hyperbolic_barycenter(xs, jnp.asarray([1.0, -1.0, 1.0], jnp.float64))
    with pytest.raises(ValueError, match="positive sum"):
        hyperbolic_barycenter(xs, jnp.zeros(3, jnp.float64))
    with pytest.raises(ValueError, match="points must have shape"):
        hyperbolic_barycenter(jnp.zeros(3, jnp.float64))
    with pytest.raises(ValueError, match="curvature"):
        hyperbolic_barycenter(xs, curvature=2.0)
