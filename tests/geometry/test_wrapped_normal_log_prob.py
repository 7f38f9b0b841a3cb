"""Wrapped-normal log densities on the ball and the hyperboloid (Nagano et al. 2019; Mathieu
et al. 2019): float64 reference formulas, normalisation by quadrature in 2-D, agreement with
the sampler (moments and importance weights), the isometry between the two models, jit /
vmap / grad at float32 extremes, and bad input."""

import jax
import jax.numpy as jnp
import layers_reference as ref
import numpy as np
import pytest
from geo_utils import assert_close, assert_finite, ball_points

import spiraljax.geometry as G
from spiraljax.geometry import lorentz as lz

F32, F64 = jnp.float32, jnp.float64


@pytest.mark.parametrize("k", [-1.0, -0.3])
def test_ball_and_lorentz_match_the_reference_formulas(k):
    c = -k
    rng = np.random.default_rng(0)
    z = ball_points(rng, (4, 3), k, F64, max_frac=0.95)
    mean = ball_points(rng, (4, 3), k, F64, max_frac=0.8)
    scale = jnp.asarray([0.3, 0.7, 1.1], F64)
    lp = G.wrapped_normal_log_prob(z, mean, scale, curvature=k)
    assert lp.shape == (4,)
    assert_close(lp, ref.wrapped_normal_log_prob_ball(z, mean, scale, c), F64, 100)
    # One mean for all points (broadcast), a scalar scale.
    assert_close(
        G.wrapped_normal_log_prob(z, mean[0], 0.5, curvature=k),
        ref.wrapped_normal_log_prob_ball(z, mean[:1], 0.5, c),
        F64,
        100,
    )
    zl, ml = lz.from_poincare(z, curvature=k), lz.from_poincare(mean, curvature=k)
    lpl = lz.wrapped_normal_log_prob(zl, ml, 2 * scale, curvature=k)
    assert_close(lpl, ref.wrapped_normal_log_prob_lorentz(zl, ml, 2 * scale, c), F64, 100)
    # The isometry carries the ball's distribution with scale σ to the hyperboloid's with 2σ.
    assert_close(lpl, lp, F64, 100)


def test_euclidean_limit():
    rng = np.random.default_rng(1)
    z, mean = ball_points(rng, (5, 2), -1.0, F64), ball_points(rng, (5, 2), -1.0, F64)
    scale = jnp.asarray([0.4, 0.9], F64)
    gauss = np.sum(-0.5 * ((z - mean) / scale) ** 2 - np.log(scale) - 0.5 * np.log(2 * np.pi), -1)
    # Density over dvol = 2^d dz (the metric is 4·I at c = 0).
    assert_close(
        G.wrapped_normal_log_prob(z, mean, scale, curvature=0.0), gauss - 2 * np.log(2), F64
    )


def _polar_nodes(dim, radius=9.0, nt=100, nangle=96):
    """Geodesic polar coordinates about the origin (c = 1) in 2-D or 3-D: ball points,
    hyperboloid points and weights of dvol = sinh(t)^{d−1} dt dΩ (Gauss–Legendre in t and
    cos θ, trapezoid in the periodic angle)."""
    t, wt = np.polynomial.legendre.leggauss(nt)
    t, wt = (t + 1) * radius / 2, wt * radius / 2
    phi = np.arange(nangle) * 2 * np.pi / nangle
    if dim == 2:
        tt, pp = np.meshgrid(t, phi, indexing="ij")
        direction = np.stack([np.cos(pp), np.sin(pp)], -1)
        weights = (wt * np.sinh(t))[:, None] * np.full(nangle, 2 * np.pi / nangle)
    else:
        u, wu = np.polynomial.legendre.leggauss(nangle // 3)  # u = cos θ
        tt, uu, pp = np.meshgrid(t, u, phi, indexing="ij")
        sin = np.sqrt(1 - uu**2)
        direction = np.stack([sin * np.cos(pp), sin * np.sin(pp), uu], -1)
        weights = (wt * np.sinh(t) ** 2)[:, None, None] * wu[:, None] * (2 * np.pi / nangle)
        weights = np.broadcast_to(weights, tt.shape)
    ball = np.tanh(tt / 2)[..., None] * direction  # d(0, x) = 2 artanh‖x‖ = t
    hyper = np.concatenate([np.cosh(tt)[..., None], np.sinh(tt)[..., None] * direction], -1)
    return ball.reshape(-1, dim), hyper.reshape(-1, dim + 1), weights.reshape(-1)


@pytest.mark.parametrize(
    ("mean", "scale"),
    [([0.35, -0.2], 0.35), ([0.35, -0.2], (0.25, 0.6)), ([0.2, -0.3, 0.1], (0.3, 0.5, 0.4))],
)
def test_densities_integrate_to_one(mean, scale):
    """∫ p dvol = 1 in 2-D and 3-D (the Jacobian exponent d − 1 = 1 and 2), both models."""
    mean, scale = jnp.asarray(mean, F64), jnp.asarray(scale, F64)
    ball, hyper, w = _polar_nodes(mean.shape[-1])
    pb = jnp.exp(G.wrapped_normal_log_prob(jnp.asarray(ball), mean, scale))
    np.testing.assert_allclose(np.sum(pb * w), 1.0, atol=1e-6)
    pl = jnp.exp(lz.wrapped_normal_log_prob(jnp.asarray(hyper), lz.from_poincare(mean), 2 * scale))
    np.testing.assert_allclose(np.sum(pl * w), 1.0, atol=1e-6)


def test_sampler_has_this_density():
    """Moments of wrapped_normal samples against quadrature of exp(log_prob) (2-D), and
    importance weights E_q[p/q] = 1 between two nearby wrapped normals (3-D, both models)."""
    k = -1.0
    n = 20000
    mean = jnp.asarray([0.35, -0.2], F64)
    scale = jnp.asarray([0.25, 0.6], F64)
    z = np.asarray(G.wrapped_normal(jax.random.key(0), mean, scale, (n,), curvature=k))
    ball, _, w = _polar_nodes(2)
    p = np.asarray(jnp.exp(G.wrapped_normal_log_prob(jnp.asarray(ball), mean, scale))) * w

    def stats(x):  # smooth functions (an indicator would defeat the Gauss–Legendre nodes)
        r = 2 * np.arctanh(np.linalg.norm(x, axis=-1))
        return np.stack([x[:, 0], x[:, 1], x[:, 0] ** 2, x[:, 0] * x[:, 1], np.exp(-r * r)], -1)

    mc, se = stats(z).mean(0), stats(z).std(0) / np.sqrt(n)
    quad = np.sum(stats(ball) * p[:, None], 0)
    assert np.all(np.abs(mc - quad) < 5 * se), (mc, quad, se)

    mu3 = jnp.asarray([0.2, -0.3, 0.1], F64)
    s3 = jnp.asarray([0.3, 0.5, 0.4], F64)
    zb = G.wrapped_normal(jax.random.key(1), mu3, s3, (n,), curvature=k)
    mu3b, s3b = mu3 + jnp.asarray([0.05, 0.0, -0.05], F64), s3 * 1.1
    logw = G.wrapped_normal_log_prob(zb, mu3b, s3b) - G.wrapped_normal_log_prob(zb, mu3, s3)
    zl, ml, mlb = (lz.from_poincare(a) for a in (zb, mu3, mu3b))
    logwl = lz.wrapped_normal_log_prob(zl, mlb, 2 * s3b) - lz.wrapped_normal_log_prob(
        zl, ml, 2 * s3
    )
    for lw in (logw, logwl):
        wts = np.exp(np.asarray(lw))
        assert abs(wts.mean() - 1) < 5 * wts.std() / np.sqrt(n)


def test_jit_vmap_grad_and_float32_extremes():
    k = -1.0
    rng = np.random.default_rng(2)
    unit = np.array(ball_points(rng, (4, 3), k, F64, min_frac=0.5))
    unit /= np.linalg.norm(unit, axis=-1, keepdims=True)
    # z: on the projection margin, exactly on the rounded boundary, 1e-15 from the origin, and
    # equal to its mean; means at 1e-15, the origin, a regular point, and the same point.
    z = jnp.asarray(
        np.stack([G.project(unit[0] * 2), unit[1], unit[2] * 1e-15, unit[3] * 0.3]), F32
    )
    mean = jnp.asarray(np.stack([unit[0] * 1e-15, 0 * unit[1], unit[2] * 0.5, unit[3] * 0.3]), F32)
    zl, ml = lz.from_poincare(z), lz.from_poincare(mean)
    zl = zl.at[0].set(lz.project(jnp.asarray([0, 1e7, 0, 0], F32)))  # far on the hyperboloid

    def loss(z, mean, scale, k, zl, ml):
        lb = jax.vmap(lambda a, b: G.wrapped_normal_log_prob(a, b, scale, curvature=k))(z, mean)
        ll = jax.vmap(lambda a, b: lz.wrapped_normal_log_prob(a, b, scale, curvature=k))(zl, ml)
        return jnp.sum(lb) + jnp.sum(ll), (lb, ll)

    args = (z, mean, jnp.float32(0.4), jnp.float32(k), zl, ml)
    (_, (lb, ll)), grads = jax.jit(jax.value_and_grad(loss, argnums=range(6), has_aux=True))(*args)
    assert lb.dtype == F32
    assert_finite((lb, ll))
    assert_finite(grads)
    # Against the float64 formulas where those are finite (z = μ and z on the boundary are not).
    z64, m64 = np.asarray(z, np.float64), np.asarray(mean, np.float64)
    assert_close(lb[2], ref.wrapped_normal_log_prob_ball(z64[2], m64[2], 0.4, 1.0), F32)
    zl64, ml64 = np.asarray(zl, np.float64), np.asarray(ml, np.float64)
    want = ref.wrapped_normal_log_prob_lorentz(zl64[1:3], ml64[1:3], 0.4, 1.0)
    assert_close(ll[1:3], want, F32, 10)
    # Learnable scale and curvature: gradients against central differences (float64), all
    # from one compiled value_and_grad.
    f = lambda s, k: jnp.sum(G.wrapped_normal_log_prob(z64[2:], m64[2:], s, curvature=k))  # noqa: E731
    vg = jax.jit(jax.value_and_grad(f, argnums=(0, 1)))
    _, (gs, gk) = vg(0.4, -0.8)
    h = 1e-6
    np.testing.assert_allclose(
        gs, (vg(0.4 + h, -0.8)[0] - vg(0.4 - h, -0.8)[0]) / (2 * h), rtol=1e-6
    )
    np.testing.assert_allclose(
        gk, (vg(0.4, -0.8 + h)[0] - vg(0.4, -0.8 - h)[0]) / (2 * h), rtol=1e-6
    )


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (
            lambda: G.wrapped_normal_log_prob(jnp.zeros(3), jnp.zeros(3), 0.0),
            "scale=0.0 must be > 0",
        ),
        (
            lambda: G.wrapped_normal_log_prob(jnp.zeros(3), jnp.zeros(3), jnp.ones(2)),
            r"scale of shape \(2,\) must be a scalar or broadcast against the 3",
        ),
        (lambda: G.wrapped_normal_log_prob(jnp.zeros(3), jnp.zeros(2), 1.0), "mean has coordinate"),
        (
            lambda: G.wrapped_normal_log_prob(jnp.zeros(3), jnp.zeros(3), 1.0, curvature=1.0),
            r"curvature=1\.0 > 0",
        ),
        (
            lambda: lz.wrapped_normal_log_prob(lz.origin(3), lz.origin(3), jnp.ones(4)),
            r"d = 3 spatial coordinates of T_o \(not the d\+1 = 4",
        ),
        (
            lambda: lz.wrapped_normal_log_prob(lz.origin(3), lz.origin(2), 1.0),
            "mean has coordinate axis of size 3",
        ),
        (
            lambda: lz.wrapped_normal_log_prob(lz.origin(3), lz.origin(3), 1.0, curvature=0.0),
            r"curvature=0\.0: the Lorentz model needs K < 0",
        ),
        (lambda: lz.wrapped_normal_log_prob(lz.origin(2), lz.origin(2), -1.0), "scale=-1.0"),
    ],
)
def test_bad_input(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()
