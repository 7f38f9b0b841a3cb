"""SPEC §1 identities of the gyrovector / Riemannian structure, float32 and float64."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from geo_utils import CURVATURES, DTYPES, assert_close, ball_points, tangents

import spiraljax.geometry as G

PARAMS = [(k, dt) for k in CURVATURES for dt in DTYPES]
IDS = [f"K{k}-{jnp.dtype(dt).name}" for k, dt in PARAMS]


def _data(k, dtype, seed=0, n=6, d=4, max_frac=0.8):
    rng = np.random.default_rng(seed)
    return (
        ball_points(rng, (n, d), k, dtype, max_frac=max_frac),
        ball_points(rng, (n, d), k, dtype, max_frac=max_frac),
        ball_points(rng, (n, d), k, dtype, max_frac=max_frac),
        tangents(rng, (n, d), dtype),
        tangents(rng, (n, d), dtype),
    )


@pytest.mark.parametrize(("k", "dtype"), PARAMS, ids=IDS)
def test_left_cancellation_and_sub(k, dtype):
    a, b, _, _, _ = _data(k, dtype)
    ab = G.mobius_add(a, b, curvature=k)
    assert_close(G.mobius_add(-a, ab, curvature=k), b, dtype, 5)
    assert_close(G.mobius_sub(a, b, curvature=k), G.mobius_add(a, -b, curvature=k), dtype)
    zero = jnp.zeros_like(a)
    assert_close(G.mobius_add(zero, b, curvature=k), b, dtype)
    assert_close(G.mobius_add(a, zero, curvature=k), a, dtype)
    assert_close(G.mobius_sub(a, a, curvature=k), zero, dtype)


@pytest.mark.parametrize(("k", "dtype"), PARAMS, ids=IDS)
def test_exp_log_inverse_at_origin_and_at_x(k, dtype):
    x, y, _, u, _ = _data(k, dtype, seed=1)
    u = u * 0.5
    assert_close(G.expmap0(G.logmap0(y, curvature=k), curvature=k), y, dtype, 5)
    assert_close(G.logmap0(G.expmap0(u, curvature=k), curvature=k), u, dtype, 20)
    assert_close(G.expmap(x, G.logmap(x, y, curvature=k), curvature=k), y, dtype, 10)
    # log∘exp: keep exp_x(u) away from the projection margin.
    v = u / G.conformal_factor(x, curvature=k, keepdims=True)
    assert_close(G.logmap(x, G.expmap(x, v, curvature=k), curvature=k), v, dtype, 20)
    # The maps at x reduce to those at 0 for x = 0.
    zero = jnp.zeros_like(x)
    assert_close(G.expmap(zero, u, curvature=k), G.expmap0(u, curvature=k), dtype)
    assert_close(G.logmap(zero, y, curvature=k), G.logmap0(y, curvature=k), dtype)


@pytest.mark.parametrize(("k", "dtype"), PARAMS, ids=IDS)
def test_distance_axioms(k, dtype):
    x, y, z, _, _ = _data(k, dtype, seed=2)
    dxy = G.dist(x, y, curvature=k)
    assert_close(dxy, G.dist(y, x, curvature=k), dtype)
    slack = 1e-9 if dtype == jnp.float64 else 1e-4
    assert np.all(dxy <= G.dist(x, z, curvature=k) + G.dist(z, y, curvature=k) + slack)
    assert_close(G.dist(x, x, curvature=k), np.zeros(len(x)), dtype)
    assert_close(dxy, G.norm(x, G.logmap(x, y, curvature=k), curvature=k), dtype, 5)
    assert_close(G.dist0(x, curvature=k), G.dist(jnp.zeros_like(x), x, curvature=k), dtype)
    assert G.dist(x, y, curvature=k, keepdims=True).shape == (len(x), 1)
    assert_close(
        G.pairwise_dist(x, y, curvature=k),
        G.dist(x[:, None], y[None], curvature=k),
        dtype,
        1 if dtype == jnp.float64 else 20,
    )
    # Isometry: Möbius left translation preserves distances.
    dab = G.dist(G.mobius_add(z, x, curvature=k), G.mobius_add(z, y, curvature=k), curvature=k)
    assert_close(dab, dxy, dtype, 20)


@pytest.mark.parametrize(("k", "dtype"), PARAMS, ids=IDS)
def test_scalar_multiplication(k, dtype):
    x, _, _, _, _ = _data(k, dtype, seed=3, max_frac=0.5)
    acc = x
    for n in range(2, 6):
        acc = G.mobius_add(acc, x, curvature=k)
        assert_close(acc, G.mobius_scalar_mul(float(n), x, curvature=k), dtype, 20)
    r1, r2 = 0.7, -1.9
    lhs = G.mobius_scalar_mul(r1 + r2, x, curvature=k)
    rhs = G.mobius_add(
        G.mobius_scalar_mul(r1, x, curvature=k),
        G.mobius_scalar_mul(r2, x, curvature=k),
        curvature=k,
    )
    assert_close(lhs, rhs, dtype, 10)
    assert_close(
        G.mobius_scalar_mul(r1, G.mobius_scalar_mul(r2, x, curvature=k), curvature=k),
        G.mobius_scalar_mul(r1 * r2, x, curvature=k),
        dtype,
        10,
    )
    assert_close(G.mobius_scalar_mul(1.0, x, curvature=k), x, dtype)
    assert_close(G.mobius_scalar_mul(-1.0, x, curvature=k), -x, dtype)
    # Per-point factors broadcast against x[..., :1].
    r = jnp.arange(1, len(x) + 1, dtype=dtype)[:, None] / 3
    rows = [G.mobius_scalar_mul(float(r[i, 0]), x[i], curvature=k) for i in range(len(x))]
    assert_close(G.mobius_scalar_mul(r, x, curvature=k), jnp.stack(rows), dtype)


@pytest.mark.parametrize(("k", "dtype"), PARAMS, ids=IDS)
def test_gyration_definition_and_isometry(k, dtype):
    a, b, w, u, v = _data(k, dtype, seed=4)
    defn = G.mobius_add(
        -G.mobius_add(a, b, curvature=k),
        G.mobius_add(a, G.mobius_add(b, w, curvature=k), curvature=k),
        curvature=k,
    )
    assert_close(G.gyration(a, b, w, curvature=k), defn, dtype, 20)
    gu, gv = G.gyration(a, b, u, curvature=k), G.gyration(a, b, v, curvature=k)
    assert_close(jnp.sum(gu * gv, -1), jnp.sum(u * v, -1), dtype, 5)
    # Gyrocommutative law: a ⊕ b = gyr[a, b](b ⊕ a).
    ba = G.mobius_add(b, a, curvature=k)
    assert_close(G.mobius_add(a, b, curvature=k), G.gyration(a, b, ba, curvature=k), dtype, 10)


@pytest.mark.parametrize(("k", "dtype"), PARAMS, ids=IDS)
def test_transport_preserves_metric(k, dtype):
    x, y, _, u, v = _data(k, dtype, seed=5)
    pu, pv = G.transp(x, y, u, curvature=k), G.transp(x, y, v, curvature=k)
    assert_close(G.inner(y, pu, pv, curvature=k), G.inner(x, u, v, curvature=k), dtype, 10)
    assert_close(G.norm(y, pu, curvature=k), G.norm(x, u, curvature=k), dtype, 10)
    zero = jnp.zeros_like(x)
    assert_close(G.transp0(y, v, curvature=k), G.transp(zero, y, v, curvature=k), dtype)
    assert_close(G.transp0back(y, v, curvature=k), G.transp(y, zero, v, curvature=k), dtype)
    assert_close(G.transp0back(y, G.transp0(y, v, curvature=k), curvature=k), v, dtype)
    # Transporting the log back along the geodesic gives −log_y(x).
    assert_close(
        G.transp(x, y, G.logmap(x, y, curvature=k), curvature=k),
        -G.logmap(y, x, curvature=k),
        dtype,
        20,
    )


@pytest.mark.parametrize(("k", "dtype"), PARAMS, ids=IDS)
def test_metric_and_riemannian_gradient(k, dtype):
    x, y, _, u, v = _data(k, dtype, seed=6)
    lam = 2 / (1 + k * jnp.sum(x * x, -1))
    assert_close(G.conformal_factor(x, curvature=k), lam, dtype)
    assert_close(G.inner(x, u, v, curvature=k), lam**2 * jnp.sum(u * v, -1), dtype)
    assert_close(G.inner(x, u, curvature=k), G.norm(x, u, curvature=k) ** 2, dtype, 5)
    # ⟨rgrad, v⟩_x = ⟨egrad, v⟩ (definition of the Riemannian gradient).
    assert_close(
        G.inner(x, G.egrad2rgrad(x, u, curvature=k), v, curvature=k), jnp.sum(u * v, -1), dtype, 5
    )
    # ∇_x d(x, y) as a Riemannian gradient is −log_x(y)/d(x, y).
    if dtype == jnp.float64:
        egrad = jax.vmap(jax.grad(lambda a, b: G.dist(a, b, curvature=k)))(x, y)
        expected = -G.logmap(x, y, curvature=k) / G.dist(x, y, curvature=k, keepdims=True)
        assert_close(G.egrad2rgrad(x, egrad, curvature=k), expected, dtype, 10)


@pytest.mark.parametrize(("k", "dtype"), PARAMS, ids=IDS)
def test_expmap_velocity_and_geodesic(k, dtype):
    x, y, _, u, _ = _data(k, dtype, seed=7)
    _, vel = jax.jvp(
        lambda t: G.expmap(x, t * u, curvature=k),
        (jnp.asarray(0.0, dtype),),
        (jnp.asarray(1.0, dtype),),
    )
    assert_close(vel, u, dtype, 10)
    assert_close(G.geodesic(0.0, x, y, curvature=k), x, dtype)
    assert_close(G.geodesic(1.0, x, y, curvature=k), y, dtype, 10)
    d = G.dist(x, y, curvature=k)
    for t in (0.25, 0.6):
        g = G.geodesic(t, x, y, curvature=k)
        assert_close(G.dist(x, g, curvature=k), t * d, dtype, 20)
        assert_close(G.dist(g, y, curvature=k), (1 - t) * d, dtype, 20)
        assert_close(g, G.expmap(x, t * G.logmap(x, y, curvature=k), curvature=k), dtype, 20)


@pytest.mark.parametrize(("k", "dtype"), PARAMS, ids=IDS)
def test_matvec_properties(k, dtype):
    x, _, _, _, _ = _data(k, dtype, seed=8, d=3)
    rng = np.random.default_rng(8)
    m1 = jnp.asarray(rng.normal(size=(3, 3)), dtype)
    m2 = jnp.asarray(rng.normal(size=(5, 3)) * 0.5, dtype)
    assert_close(G.mobius_matvec(jnp.eye(3, dtype=dtype), x, curvature=k), x, dtype, 5)
    assert_close(
        G.mobius_matvec(m2, G.mobius_matvec(m1, x, curvature=k), curvature=k),
        G.mobius_matvec(m2 @ m1, x, curvature=k),
        dtype,
        50,
    )
    assert_close(
        G.mobius_matvec(m2, x, curvature=k),
        G.expmap0(G.logmap0(x, curvature=k) @ m2.T, curvature=k),
        dtype,
        10,
    )
    assert_close(
        G.mobius_matvec(jnp.zeros((2, 3), dtype), x, curvature=k),
        jnp.zeros((len(x), 2), dtype),
        dtype,
    )
    # r·I acts as Möbius scalar multiplication.
    assert_close(
        G.mobius_matvec(2.5 * jnp.eye(3, dtype=dtype), x, curvature=k),
        G.mobius_scalar_mul(2.5, x, curvature=k),
        dtype,
        10,
    )
    # Batched matrices.
    ms = jnp.stack([m1] * len(x))
    assert_close(G.mobius_matvec(ms, x, curvature=k), G.mobius_matvec(m1, x, curvature=k), dtype)


@pytest.mark.parametrize(("k", "dtype"), PARAMS, ids=IDS)
def test_project(k, dtype):
    rng = np.random.default_rng(9)
    eps = G.ball_eps(dtype)
    inside = ball_points(rng, (5, 3), k, dtype, max_frac=0.9)
    assert_close(G.project(inside, curvature=k), inside, dtype)
    outside = tangents(rng, (5, 3), dtype, scale=10.0 / np.sqrt(-k))
    p = G.project(outside, curvature=k)
    assert_close(jnp.linalg.norm(p, axis=-1), np.full(5, (1 - eps) / np.sqrt(-k)), dtype)
    cos = jnp.sum(p * outside, -1) / (
        jnp.linalg.norm(p, axis=-1) * jnp.linalg.norm(outside, axis=-1)
    )
    assert_close(cos, np.ones(5), dtype)
    huge = jnp.asarray([[1e30, -2e30, 0.0]], dtype)
    ph = G.project(huge, curvature=k)
    assert_close(jnp.linalg.norm(ph, axis=-1), [(1 - eps) / np.sqrt(-k)], dtype)


@pytest.mark.parametrize(("k", "dtype"), PARAMS, ids=IDS)
def test_weighted_midpoint(k, dtype):
    x, y, a, _, _ = _data(k, dtype, seed=10)
    pair = jnp.stack([x, y], axis=1)  # (n, 2, d)
    assert_close(
        G.weighted_midpoint(pair, curvature=k), G.geodesic(0.5, x, y, curvature=k), dtype, 20
    )
    assert_close(G.weighted_midpoint(x[:, None], curvature=k), x, dtype, 5)
    sym = jnp.stack([x, -x], axis=1)
    assert_close(G.weighted_midpoint(sym, curvature=k), jnp.zeros_like(x), dtype)
    # Left gyro-translation covariance: m(a ⊕ xs) = a ⊕ m(xs).
    w = jnp.asarray(np.random.default_rng(10).uniform(0.1, 2.0, size=len(x)), dtype)
    lhs = G.weighted_midpoint(G.mobius_add(a[0], x, curvature=k), w, curvature=k, axis=0)
    rhs = G.mobius_add(a[0], G.weighted_midpoint(x, w, curvature=k, axis=0), curvature=k)
    assert_close(lhs, rhs, dtype, 50)
    # axis selects the reduced axis; weights broadcast over the leading axes.
    stacked = jnp.stack([x, y])  # (2, n, d)
    assert_close(
        G.weighted_midpoint(stacked, curvature=k, axis=0),
        G.weighted_midpoint(pair, curvature=k),
        dtype,
        5,
    )


EUCLID = {
    "mobius_add": (lambda x, y, u, k: G.mobius_add(x, y, curvature=k), lambda x, y, u: x + y),
    "mobius_sub": (lambda x, y, u, k: G.mobius_sub(x, y, curvature=k), lambda x, y, u: x - y),
    "scalar_mul": (
        lambda x, y, u, k: G.mobius_scalar_mul(-1.7, x, curvature=k),
        lambda x, y, u: -1.7 * x,
    ),
    "matvec": (
        lambda x, y, u, k: G.mobius_matvec(jnp.outer(y[0], u[0]), x, curvature=k),
        lambda x, y, u: x @ jnp.outer(y[0], u[0]).T,
    ),
    "gyration": (lambda x, y, u, k: G.gyration(x, y, u, curvature=k), lambda x, y, u: u),
    "expmap": (lambda x, y, u, k: G.expmap(x, u, curvature=k), lambda x, y, u: x + u),
    "logmap": (lambda x, y, u, k: G.logmap(x, y, curvature=k), lambda x, y, u: y - x),
    "expmap0": (lambda x, y, u, k: G.expmap0(u, curvature=k), lambda x, y, u: u),
    "logmap0": (lambda x, y, u, k: G.logmap0(y, curvature=k), lambda x, y, u: y),
    "dist": (
        lambda x, y, u, k: G.dist(x, y, curvature=k),
        lambda x, y, u: 2 * jnp.linalg.norm(x - y, axis=-1),
    ),
    "dist0": (
        lambda x, y, u, k: G.dist0(x, curvature=k),
        lambda x, y, u: 2 * jnp.linalg.norm(x, axis=-1),
    ),
    "pairwise_dist": (
        lambda x, y, u, k: G.pairwise_dist(x, y, curvature=k),
        lambda x, y, u: 2 * jnp.linalg.norm(x[:, None] - y[None], axis=-1),
    ),
    "conformal_factor": (
        lambda x, y, u, k: G.conformal_factor(x, curvature=k),
        lambda x, y, u: jnp.full(x.shape[:-1], 2.0),
    ),
    "egrad2rgrad": (lambda x, y, u, k: G.egrad2rgrad(x, u, curvature=k), lambda x, y, u: u / 4),
    "inner": (
        lambda x, y, u, k: G.inner(x, u, y, curvature=k),
        lambda x, y, u: 4 * jnp.sum(u * y, -1),
    ),
    "norm": (
        lambda x, y, u, k: G.norm(x, u, curvature=k),
        lambda x, y, u: 2 * jnp.linalg.norm(u, axis=-1),
    ),
    "transp": (lambda x, y, u, k: G.transp(x, y, u, curvature=k), lambda x, y, u: u),
    "transp0": (lambda x, y, u, k: G.transp0(y, u, curvature=k), lambda x, y, u: u),
    "transp0back": (lambda x, y, u, k: G.transp0back(y, u, curvature=k), lambda x, y, u: u),
    "geodesic": (
        lambda x, y, u, k: G.geodesic(0.3, x, y, curvature=k),
        lambda x, y, u: 0.7 * x + 0.3 * y,
    ),
    "weighted_midpoint": (
        lambda x, y, u, k: G.weighted_midpoint(x, y[:, 0] ** 2, curvature=k, axis=0),
        lambda x, y, u: jnp.sum(y[:, :1] ** 2 * x, 0) / jnp.sum(y[:, 0] ** 2),
    ),
    "frechet_mean": (
        lambda x, y, u, k: G.frechet_mean(x, y[:, 0] ** 2, curvature=k, axis=0),
        lambda x, y, u: jnp.sum(y[:, :1] ** 2 * x, 0) / jnp.sum(y[:, 0] ** 2),
    ),
    "project": (lambda x, y, u, k: G.project(10 * u, curvature=k), lambda x, y, u: 10 * u),
}


@functools.cache
def _euclid_data():
    rng = np.random.default_rng(11)
    x = jnp.asarray(rng.normal(size=(5, 3)) * 0.3)
    y = jnp.asarray(rng.normal(size=(5, 3)) * 0.3)
    u = jnp.asarray(rng.normal(size=(5, 3)))
    return x, y, u


@pytest.mark.parametrize("name", sorted(EUCLID))
def test_zero_curvature_is_euclidean_and_continuous(name):
    fn, euclid = EUCLID[name]
    x, y, u = _euclid_data()
    expected = euclid(x, y, u)
    # Exactly Euclidean at K = 0 (up to rounding), continuous as K → 0⁻.
    np.testing.assert_allclose(fn(x, y, u, 0.0), expected, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(fn(x, y, u, -1e-12), expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(fn(x, y, u, -1e-6), expected, rtol=1e-4, atol=1e-4)
    # The derivative in K exists at 0 and matches the one-sided finite difference.
    g = jax.jacfwd(lambda k: fn(x, y, u, k))(jnp.asarray(0.0))
    fd = (fn(x, y, u, -1e-6) - fn(x, y, u, -2e-6)) / 1e-6
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g, fd, rtol=1e-4, atol=1e-4)
