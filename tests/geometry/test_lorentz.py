"""Lorentz (hyperboloid) model: identities, geoopt agreement, isometry to the ball, extremes,
bad input, and jit / vmap / grad."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spiraljax.geometry import lorentz as L
from spiraljax.geometry import poincare

F32, F64 = jnp.float32, jnp.float64
CURVATURES = [-1.0, -0.25, -3.0]


def _points(rng, n, d, scale, curvature, dtype=np.float64):
    s = rng.normal(size=(n, d)) * scale
    return np.asarray(L.project(np.c_[np.zeros(n), s].astype(dtype), curvature=curvature))


def _tangent(rng, x, curvature, scale=1.0):
    return np.asarray(L.proju(x, rng.normal(size=x.shape) * scale, curvature=curvature))


def _rel(actual, expected):
    actual, expected = np.asarray(actual), np.asarray(expected)
    return np.max(np.abs(actual - expected)) / max(np.max(np.abs(expected)), 1e-300)


# ------------------------------------------------------------------------------ identities


@pytest.mark.parametrize("curvature", CURVATURES)
def test_on_manifold_and_tangent(curvature):
    rng = np.random.default_rng(0)
    x = _points(rng, 8, 4, 2.0, curvature)
    c = -curvature
    np.testing.assert_allclose(L.inner(x, x, curvature=curvature), -1 / c, rtol=1e-12)
    assert np.all(x[:, 0] > 0)
    u = _tangent(rng, x, curvature)
    np.testing.assert_allclose(L.inner(x, x, u, curvature=curvature), 0, atol=1e-12)
    o = L.origin(4, curvature=curvature, dtype=F64)
    np.testing.assert_allclose(o, [1 / np.sqrt(c), 0, 0, 0, 0], rtol=1e-15)
    assert L.origin(3, batch_shape=(2, 5)).shape == (2, 5, 4)


@pytest.mark.parametrize("curvature", CURVATURES)
def test_exp_log_dist_identities(curvature):
    rng = np.random.default_rng(1)
    x = _points(rng, 16, 3, 1.5, curvature)
    y = _points(rng, 16, 3, 1.5, curvature)
    u = L.logmap(x, y, curvature=curvature)
    np.testing.assert_allclose(L.expmap(x, u, curvature=curvature), y, rtol=1e-10, atol=1e-10)
    d = L.dist(x, y, curvature=curvature)
    np.testing.assert_allclose(L.norm(x, u, curvature=curvature), d, rtol=1e-10)
    np.testing.assert_allclose(L.dist(y, x, curvature=curvature), d, rtol=1e-12)
    z = _points(rng, 16, 3, 1.5, curvature)
    assert np.all(
        L.dist(x, z, curvature=curvature) <= d + L.dist(y, z, curvature=curvature) + 1e-12
    )
    np.testing.assert_allclose(
        L.expmap0(L.logmap0(y, curvature=curvature), curvature=curvature), y, rtol=1e-10
    )
    np.testing.assert_allclose(
        L.dist0(y, curvature=curvature),
        L.dist(L.origin(3, curvature=curvature, dtype=F64), y, curvature=curvature),
        rtol=1e-12,
    )
    # dist = arcosh(−c⟨x, y⟩)/√c for well-separated points (the textbook formula)
    c = -curvature
    textbook = np.arccosh(-c * np.asarray(L.inner(x, x, y, curvature=curvature))) / np.sqrt(c)
    np.testing.assert_allclose(d, textbook, rtol=1e-9)
    for t in (0.0, 0.3, 1.0):
        g = L.geodesic(t, x, y, curvature=curvature)
        np.testing.assert_allclose(L.dist(x, g, curvature=curvature), t * d, atol=1e-10)


@pytest.mark.parametrize("curvature", CURVATURES)
def test_transport_keeps_tangency_and_metric(curvature):
    rng = np.random.default_rng(2)
    x = _points(rng, 16, 4, 1.5, curvature)
    y = _points(rng, 16, 4, 1.5, curvature)
    u, v = _tangent(rng, x, curvature), _tangent(rng, x, curvature)
    pu, pv = L.transp(x, y, u, curvature=curvature), L.transp(x, y, v, curvature=curvature)
    np.testing.assert_allclose(L.inner(y, y, pu, curvature=curvature), 0, atol=1e-10)
    np.testing.assert_allclose(
        L.inner(y, pu, pv, curvature=curvature), L.inner(x, u, v, curvature=curvature), atol=1e-10
    )
    # transporting log_x(y) gives −log_y(x)
    np.testing.assert_allclose(
        L.transp(x, y, L.logmap(x, y, curvature=curvature), curvature=curvature),
        -np.asarray(L.logmap(y, x, curvature=curvature)),
        atol=1e-10,
    )


@pytest.mark.parametrize("curvature", CURVATURES)
def test_poincare_isometry(curvature):
    rng = np.random.default_rng(3)
    x = _points(rng, 10, 3, 1.0, curvature)
    y = _points(rng, 12, 3, 1.0, curvature)
    px, py = L.to_poincare(x, curvature=curvature), L.to_poincare(y, curvature=curvature)
    np.testing.assert_allclose(L.from_poincare(px, curvature=curvature), x, rtol=1e-12)
    np.testing.assert_allclose(
        poincare.pairwise_dist(px, py, curvature=curvature),
        L.pairwise_dist(x, y, curvature=curvature),
        rtol=1e-7,
    )
    np.testing.assert_allclose(
        poincare.dist(px[:, None], py[None], curvature=curvature),
        L.dist(x[:, None], y[None], curvature=curvature),
        rtol=1e-11,
    )
    b = poincare.expmap0(rng.normal(size=(5, 3)) * 0.5, curvature=curvature)
    np.testing.assert_allclose(
        L.to_poincare(L.from_poincare(b, curvature=curvature), curvature=curvature), b, rtol=1e-12
    )


def test_pairwise_matches_dist_and_shape():
    rng = np.random.default_rng(4)
    x = _points(rng, 7, 5, 3.0, -1.0)
    y = _points(rng, 9, 5, 3.0, -1.0)
    pw = L.pairwise_dist(x, y)
    assert pw.shape == (7, 9)
    np.testing.assert_allclose(pw, L.dist(x[:, None], y[None]), rtol=1e-8)
    assert L.pairwise_dist(np.stack([x, x]), np.stack([y, y])).shape == (2, 7, 9)


def test_near_and_far_points_accurate():
    # near points: relative accuracy of d where arcosh(−⟨x,y⟩) loses half the digits
    x = np.asarray(L.project(np.array([0.0, 1.0, 2.0, -0.5])))
    y = np.asarray(L.project(np.array([0.0, 1.0 + 1e-9, 2.0, -0.5])))
    np.testing.assert_allclose(L.dist(x, y), L.norm(x, L.logmap(x, y)), rtol=1e-6)
    x32 = x.astype(np.float32)
    for step in (1e-2, 1e-4, 1e-5):
        y32 = np.array([0, 1 + step, 2, -0.5], np.float32)
        d32 = L.dist(x32, y32)
        d64 = L.dist(x32.astype(np.float64), y32.astype(np.float64))
        np.testing.assert_allclose(d32, d64, rtol=1e-5)
    # far points on one ray: d = arsinh(2R) − arsinh(R), where −⟨x, y⟩ cancels
    r = 1e6
    far = L.dist(np.array([0, r, 0], np.float32), np.array([0, 2 * r, 0], np.float32))
    np.testing.assert_allclose(far, np.arcsinh(2 * r) - np.arcsinh(r), rtol=1e-5)


def test_float32_transport_between_far_points():
    # At distance 10 a tangent vector's ambient coordinates are ~1e4 times its norm. The
    # transport must not amplify their rounding: the textbook v + ⟨y, v⟩_L/(1/c − ⟨x, y⟩_L)·(x + y)
    # takes ⟨y, v⟩_L as a difference of terms ~1e8 times larger (errors ~6x the norm here).
    rng = np.random.default_rng(9)
    n = 64
    o = np.asarray(L.origin(3, batch_shape=(n,), dtype=F64))

    def at(p, w):  # the tangent vector at p whose transport to the origin is (0, w)
        return np.asarray(L.transp(o, p, np.c_[np.zeros(n), w]))

    dirs = rng.normal(size=(n, 3))
    x = np.asarray(L.expmap0(np.c_[np.zeros(n), 10 * dirs / np.linalg.norm(dirs, axis=1)[:, None]]))
    x = np.asarray(L.project(x.astype(F32).astype(F64)))
    y = np.asarray(L.project(L.expmap(x, at(x, rng.normal(size=(n, 3)) / 2)).astype(F32)))
    v = at(x, rng.normal(size=(n, 3))).astype(F32)
    got = np.asarray(L.transp(x.astype(F32), y, v), F64)
    y, v = y.astype(F64), v.astype(F64)
    want = np.asarray(L.transp(x, y, v))
    # tangent vectors are read by their spatial part; measure the error in the origin frame
    err = np.linalg.norm(L.transp(y, o, got - want), axis=-1)
    size = np.linalg.norm(L.transp(x, o, v), axis=-1)
    assert np.max(err / size) < 1e-2, np.max(err / size)


def test_small_curvature_tends_to_euclidean():
    rng = np.random.default_rng(5)
    xs, ys = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    for dtype in (np.float32, np.float64):
        x = np.c_[np.zeros(4), xs].astype(dtype)
        y = np.c_[np.zeros(4), ys].astype(dtype)
        d = L.dist(x, y, curvature=-1e-15)
        np.testing.assert_allclose(d, np.linalg.norm(xs - ys, axis=-1), rtol=1e-5)
        e = L.expmap(x, np.c_[np.zeros(4), ys].astype(dtype), curvature=-1e-15)
        np.testing.assert_allclose(np.asarray(e)[:, 1:], xs + ys, rtol=1e-5, atol=1e-6)


def test_curvature_gradient_matches_finite_difference():
    rng = np.random.default_rng(6)
    xs, ys = rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
    x, y = np.c_[np.zeros(3), xs], np.c_[np.zeros(3), ys]

    def f(k):
        return jnp.sum(L.dist(x, y, curvature=k))

    g = jax.grad(f)(-0.7)
    fd = (f(-0.7 + 1e-6) - f(-0.7 - 1e-6)) / 2e-6
    np.testing.assert_allclose(g, fd, rtol=1e-6)


def _dist_grads(x, y, k):
    """(closed form, autodiff) gradients of Σ dist in (x, y): with K differentiated too,
    ``dist`` takes the autodiff of the chord, without it the closed-form tangent."""

    def f(x, y, k):
        return jnp.sum(L.dist(x, y, curvature=k))

    closed = jax.grad(f, argnums=(0, 1))(x, y, k)
    autodiff = jax.grad(f, argnums=(0, 1, 2))(x, y, jnp.asarray(k, x.dtype))[:2]
    return closed, autodiff


@pytest.mark.parametrize("curvature", [*CURVATURES, -1e-6])
@pytest.mark.parametrize("scale,offset", [(1.0, None), (1.0, 1e-7), (1e3, None), (1e3, 1e-4)])
def test_dist_point_gradient_matches_autodiff(curvature, scale, offset):
    rng = np.random.default_rng(11)
    x = _points(rng, 16, 4, scale, curvature)
    if offset is None:
        y = _points(rng, 16, 4, scale, curvature)
    else:  # near pairs, where arcosh(−c⟨x, y⟩) would lose half the digits
        y = np.asarray(L.project(x + rng.normal(size=x.shape) * offset, curvature=curvature))
    closed, autodiff = _dist_grads(x, y, curvature)
    for g, ref in zip(closed, autodiff, strict=True):
        assert _rel(g, ref) < 1e-9
        np.testing.assert_array_equal(np.asarray(g)[:, 0], 0)  # x₀ is never read


def test_dist_point_gradient_matches_finite_difference():
    rng = np.random.default_rng(12)
    x, y = _points(rng, 1, 3, 1.5, -0.7)[0], _points(rng, 1, 3, 1.5, -0.7)[0]
    (gx, gy), _ = _dist_grads(x, y, -0.7)
    h = 1e-6
    for i in range(1, 4):
        e = np.eye(4)[i] * h
        fd_x = (L.dist(x + e, y, curvature=-0.7) - L.dist(x - e, y, curvature=-0.7)) / (2 * h)
        fd_y = (L.dist(x, y + e, curvature=-0.7) - L.dist(x, y - e, curvature=-0.7)) / (2 * h)
        np.testing.assert_allclose([gx[i], gy[i]], [fd_x, fd_y], rtol=1e-6, atol=1e-9)


def test_dist_point_gradient_zero_at_coincident_and_finite_at_extremes():
    x = _points(np.random.default_rng(13), 3, 3, 2.0, -1.0)
    for g in jax.grad(lambda a, b: jnp.sum(L.dist(a, b)), argnums=(0, 1))(x, x):
        np.testing.assert_array_equal(g, 0)
    grad = jax.jit(jax.grad(lambda a, b, k: jnp.sum(L.dist(a, b, curvature=k)), argnums=(0, 1)),
                   static_argnums=2)  # fmt: skip
    rng = np.random.default_rng(14)
    norms = (0.0, 1e-15, 1e-6, 1.0, 1e3, 1e8, 1e15, 1e30)
    for k in (-1e-15, -1e-6, -1.0, -10.0):
        for xn in norms:
            for yn in norms:
                d = rng.normal(size=3)
                x32 = _ray(d, xn)
                for y32 in (_ray(d, yn), _ray(rng.normal(size=3), yn), x32.copy()):
                    for g in grad(x32, y32, k):
                        assert np.all(np.isfinite(np.asarray(g))), (xn, yn, k, g)


def test_float32_dist_gradient_accurate_far_out():
    # Points at distance 10 (spatial norms ~1e4) and targets ~2 away. The Riemannian gradient
    # multiplies the radial component of the Euclidean one by X = √c x₀ ~ 1e4, so that
    # component must be right to ~ε/X: its error, measured in the metric at x, stays at
    # the float32 level of the point's own coordinates.
    rng = np.random.default_rng(10)
    dirs = rng.normal(size=(8, 3))
    dirs = 10 * dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
    x = L.expmap0(jnp.asarray(np.c_[np.zeros(8), dirs], jnp.float32))
    step = np.c_[np.zeros(8), rng.normal(size=(8, 3))].astype(np.float32)
    y = L.expmap(x, L.transp(L.origin(3, batch_shape=(8,), dtype=jnp.float32), x, step))

    def f(x, y):
        return jnp.sum(L.dist(x, y))

    for argnum, at in ((0, x), (1, y)):
        g32 = jax.grad(f, argnums=argnum)(x, y)
        x64, y64 = np.asarray(x, np.float64), np.asarray(y, np.float64)
        g64 = jax.grad(f, argnums=argnum)(x64, y64)
        at64 = np.asarray(at, np.float64)
        err = L.norm(at64, L.egrad2rgrad(at64, np.asarray(g32, np.float64) - g64))
        size = L.norm(at64, L.egrad2rgrad(at64, g64))  # 1: the gradient of a distance
        assert np.max(np.asarray(err / size)) < 2e-3, err


def _equations(jaxpr) -> int:
    """Number of primitive applications in a jaxpr, sub-jaxprs (jit, custom_jvp) included."""
    total = 0
    for eqn in jaxpr.eqns:
        total += 1
        for param in eqn.params.values():
            for sub in param if isinstance(param, tuple | list) else (param,):
                if hasattr(sub, "eqns"):
                    total += _equations(sub)
                elif hasattr(sub, "jaxpr") and hasattr(sub.jaxpr, "eqns"):
                    total += _equations(sub.jaxpr)
    return total


def test_dist_point_gradient_is_closed_form():
    # Most of the training step of a Lorentz embedding is this gradient. Autodiff through
    # the chord's guarded series made it ~2.7x the forward's equations (7-10x its CPU time;
    # the embedding 12x slower per epoch than the ball's); the closed form is ~1.7x.
    rng = np.random.default_rng(15)
    x, y = _points(rng, 4, 3, 1.0, -1.0), _points(rng, 4, 3, 1.0, -1.0)

    def f(x, y):
        return jnp.sum(L.dist(x, y))

    forward = _equations(jax.make_jaxpr(f)(x, y).jaxpr)
    backward = _equations(jax.make_jaxpr(jax.grad(f, argnums=(0, 1)))(x, y).jaxpr)
    assert backward < 2 * forward, (forward, backward)


# --------------------------------------------------------------------------- transformations

FUNCS = {
    "project": lambda x, y, u, k: L.project(u, curvature=k),
    "inner": lambda x, y, u, k: L.inner(x, u, y, curvature=k),
    "norm": lambda x, y, u, k: L.norm(x, u, curvature=k),
    "proju": lambda x, y, u, k: L.proju(x, u, curvature=k),
    "egrad2rgrad": lambda x, y, u, k: L.egrad2rgrad(x, u, curvature=k),
    "expmap": lambda x, y, u, k: L.expmap(x, L.proju(x, u, curvature=k), curvature=k),
    "logmap": lambda x, y, u, k: L.logmap(x, y, curvature=k),
    "expmap0": lambda x, y, u, k: L.expmap0(u, curvature=k),
    "logmap0": lambda x, y, u, k: L.logmap0(y, curvature=k),
    "dist": lambda x, y, u, k: L.dist(x, y, curvature=k),
    "dist_coincident": lambda x, y, u, k: L.dist(x, x, curvature=k),
    "dist0": lambda x, y, u, k: L.dist0(x, curvature=k),
    "pairwise_dist": lambda x, y, u, k: L.pairwise_dist(
        jnp.atleast_2d(x), jnp.atleast_2d(y), curvature=k
    ),
    "pairwise_dist_self": lambda x, y, u, k: L.pairwise_dist(
        jnp.atleast_2d(x), jnp.atleast_2d(x), curvature=k
    ),
    "transp": lambda x, y, u, k: L.transp(x, y, L.proju(x, u, curvature=k), curvature=k),
    "geodesic": lambda x, y, u, k: L.geodesic(0.37, x, y, curvature=k),
    "to_poincare": lambda x, y, u, k: L.to_poincare(x, curvature=k),
    "from_poincare": lambda x, y, u, k: L.from_poincare(u[..., 1:] * 0.1, curvature=k),
}


@pytest.mark.parametrize("name", sorted(FUNCS))
@pytest.mark.parametrize("dtype", [F32, F64])
def test_jit_vmap_grad_agree(name, dtype):
    rng = np.random.default_rng(7)
    x = _points(rng, 4, 3, 1.0, -1.0, dtype)
    y = _points(rng, 4, 3, 1.0, -1.0, dtype)
    u = (rng.normal(size=(4, 4)) * 0.5).astype(dtype)
    f = FUNCS[name]
    eager = f(x, y, u, -1.0)
    assert eager.dtype == dtype
    ref = f(*(a.astype(np.float64) for a in (x, y, u)), -1.0)
    tol = 1e-4 if dtype == F32 else 1e-10
    # pairwise_dist's 1 − cos θ cancels at coincident points (documented error ≈ √(ε‖x‖‖y‖))
    ref_tol = 2e-3 if dtype == F32 and name.startswith("pairwise") else tol
    np.testing.assert_allclose(eager, ref, rtol=tol, atol=ref_tol)
    np.testing.assert_allclose(jax.jit(f)(x, y, u, -1.0), eager, rtol=tol, atol=tol)
    if not name.startswith("pairwise"):
        vm = jax.vmap(f, in_axes=(0, 0, 0, None))(x, y, u, -1.0)
        np.testing.assert_allclose(vm, eager, rtol=tol, atol=tol)
    grads = jax.grad(lambda *a: jnp.sum(f(*a)), argnums=(0, 1, 2, 3))(x, y, u, -1.0)
    for g in grads:
        assert np.all(np.isfinite(np.asarray(g)))


# ------------------------------------------------------------------------------ extremes


def _ray(direction, norm):
    s = np.asarray(direction, np.float64)
    s = s / max(np.linalg.norm(s), 1e-300) * norm
    return np.r_[0.0, s].astype(np.float32)


@functools.cache
def _values_and_grads_of_all():
    """One jitted function: every FUNCS entry's value and its gradient in (x, y, u, K)."""

    def both(f, *args):
        return f(*args), jax.grad(lambda *a: jnp.sum(f(*a)), argnums=(0, 1, 2, 3))(*args)

    return jax.jit(lambda x, y, u, k: {name: both(f, x, y, u, k) for name, f in FUNCS.items()})


@settings(max_examples=40, deadline=None)
@given(
    xn=st.sampled_from([0.0, 1e-15, 1e-6, 1.0, 1e3, 1e8, 1e15, 1e30]),
    yn=st.sampled_from([0.0, 1e-15, 1.0, 1e6, 1e15]),
    un=st.sampled_from([0.0, 1e-15, 1.0, 1e6]),
    k=st.sampled_from([-1e-15, -1e-6, -1.0, -10.0]),
    same=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_float32_extremes_finite(xn, yn, un, k, same, seed):
    # Every function on every drawn input (one compiled function; K traced, as for grad).
    rng = np.random.default_rng(seed)
    dx = rng.normal(size=3)
    x = _ray(dx, xn)
    y = x.copy() if same else _ray(rng.normal(size=3) if yn else dx, yn)
    u = _ray(rng.normal(size=3), un)
    u[0] = np.float32(rng.normal() * un)
    results = _values_and_grads_of_all()(x, y, u, np.float32(k))
    for name, (value, grads) in results.items():
        assert value.dtype == F32 and np.all(np.isfinite(np.asarray(value))), (name, value)
        for g in grads:
            assert np.all(np.isfinite(np.asarray(g))), (name, grads)


def test_float32_far_points_stay_on_hyperboloid():
    x = L.expmap0(np.array([0, 15.0, 0, 0], np.float32))
    assert np.isfinite(np.asarray(x)).all()
    np.testing.assert_allclose(L.dist0(x), 15.0, rtol=1e-5)
    huge = L.expmap(x, L.proju(x, np.array([0, 0, 1e6, 0], np.float32)))
    assert np.isfinite(np.asarray(huge)).all() and float(huge[0]) > 0


def test_low_precision_computed_in_float32():
    x = jnp.asarray(_points(np.random.default_rng(8), 3, 2, 1.0, -1.0), jnp.bfloat16)
    d = L.dist(x, x[::-1])
    assert d.dtype == jnp.bfloat16 and np.isfinite(np.asarray(d, np.float32)).all()


# ----------------------------------------------------------------------------- bad input


def test_bad_input_raises():
    x = np.asarray(L.origin(2, dtype=F64))
    with pytest.raises(ValueError, match=r"curvature=0.5"):
        L.dist(x, x, curvature=0.5)
    with pytest.raises(ValueError, match=r"curvature=0.0"):
        L.expmap0(x, curvature=0.0)
    with pytest.raises(ValueError, match=r"y has coordinate axis of size 4"):
        L.dist(x, np.zeros(4))
    with pytest.raises(ValueError, match=r"x has coordinate axis of size 1"):
        L.project(np.zeros((3, 1)))
    with pytest.raises(ValueError, match=r"x has coordinate axis of size None"):
        L.dist0(1.0)
    with pytest.raises(ValueError, match=r"x has non-floating dtype int"):
        L.dist0(np.array([1, 0, 0]))
    with pytest.raises(ValueError, match=r"p has non-floating dtype int"):
        L.from_poincare(np.array([0, 0]))
    with pytest.raises(ValueError, match=r"dim=0"):
        L.origin(0)
    with pytest.raises(ValueError, match=r"dtype=int32"):
        L.origin(2, dtype=jnp.int32)
    with pytest.raises(ValueError, match=r"pairwise_dist expects point sets"):
        L.pairwise_dist(x, x)


def test_traced_curvature_clamped():
    x = L.origin(2, dtype=F64)
    y = L.expmap0(jnp.array([0.0, 1.0, 0.0]))
    d = jax.jit(lambda k: L.dist(x, y, curvature=k))(0.0)
    assert np.isfinite(float(d))


# ------------------------------------------------------------------------------- geoopt


@pytest.mark.anchors
@pytest.mark.parametrize("c", [1.0, 0.25, 4.0])
def test_matches_geoopt_float64(c):
    torch = pytest.importorskip("torch")
    pytest.importorskip("geoopt")
    import geoopt.manifolds.lorentz.math as gm

    k = torch.tensor(1 / c, dtype=torch.float64)
    rng = np.random.default_rng(9)
    x = _points(rng, 20, 4, 1.5, -c)
    y = _points(rng, 20, 4, 1.5, -c)
    u = _tangent(rng, x, -c)
    g = rng.normal(size=x.shape)
    tx, ty, tu, tg = (torch.tensor(a) for a in (x, y, u, g))
    checks = {
        "dist": (L.dist(x, y, curvature=-c), gm.dist(tx, ty, k=k)),
        "dist0": (L.dist0(x, curvature=-c), gm.dist0(tx, k=k)),
        "logmap": (L.logmap(x, y, curvature=-c), gm.logmap(tx, ty, k=k)),
        "expmap": (L.expmap(x, u, curvature=-c), gm.expmap(tx, tu, k=k)),
        "transp": (L.transp(x, y, u, curvature=-c), gm.parallel_transport(tx, ty, tu, k=k)),
        "egrad2rgrad": (L.egrad2rgrad(x, g, curvature=-c), gm.egrad2rgrad(tx, tg.clone(), k=k)),
        "proju": (L.proju(x, g, curvature=-c), gm.project_u(tx, tg, k=k)),
        "project": (L.project(x * 1.3, curvature=-c), gm.project(tx * 1.3, k=k)),
        "inner": (L.inner(x, u, g, curvature=-c), gm.inner(tu, tg)),
        "expmap0": (L.expmap0(L.logmap0(y, curvature=-c), curvature=-c), ty),
        "logmap0": (L.logmap0(y, curvature=-c), gm.logmap0(ty, k=k)),
    }
    for name, (ours, theirs) in checks.items():
        assert _rel(ours, theirs.numpy()) <= 1e-8, name
