"""Numerics at the edges (issue 19): points exactly on the float32 boundary, transport near
the boundary, the float32 reach, near-point pairwise distances, and one shape check.

Each test reproduces a failure of the earlier code (NaN gradients, lost digits, a capped
reach, a bare jnp TypeError) and checks the float64 reference where there is one.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import spiraljax.geometry as G
from spiraljax.geometry import layers as L
from spiraljax.geometry import poincare as pm

F32 = jnp.float32
KEY = jax.random.key(0)


def _on_boundary(d, k=-1.0):
    """float32 points whose rounded c‖x‖² is exactly 1 (a unit vector scaled by 1/√c)."""
    x = np.zeros(d, np.float32)
    x[0] = np.float32(1 / np.sqrt(-k))
    return jnp.asarray(x)


MLR = {"p": jnp.zeros((3, 2), F32), "a": jnp.asarray([[1.0, 0.0], [0.0, 1.0], [1e-20, 0.0]], F32)}

# Scalar functions of one float32 point x (2-d), each differentiated with respect to x.
BOUNDARY_FUNCS = {
    "dist_coincident": lambda x: pm.dist(x, x),
    "dist": lambda x: pm.dist(x, 0.5 * x),
    "logmap": lambda x: pm.logmap(x, 0.5 * x).sum(),
    "pairwise_dist": lambda x: pm.pairwise_dist(x[None], x[None]).sum(),
    "expmap": lambda x: pm.expmap(x, jnp.zeros_like(x)).sum(),
    "inner": lambda x: pm.inner(x, x),
    "norm": lambda x: pm.norm(x, x),
    "geodesic": lambda x: pm.geodesic(0.3, x, -0.5 * x).sum(),
    "wrapped_normal": lambda x: pm.wrapped_normal(KEY, x, 0.1).sum(),
    "transp": lambda x: pm.transp(x, 0.5 * x, jnp.ones_like(x)).sum(),
    "transp_self": lambda x: pm.transp(x, x, jnp.ones_like(x)).sum(),
    "gyration": lambda x: pm.gyration(x, -x, jnp.ones_like(x)).sum(),
    "conformal_factor": lambda x: pm.conformal_factor(x),
    "transp0back": lambda x: pm.transp0back(x, x).sum(),
    "poincare_mlr": lambda x: L.poincare_mlr.apply(MLR, x).sum(),
    "hyperbolic_cross_entropy": lambda x: L.hyperbolic_cross_entropy(MLR, x, jnp.int32(1)),
}


@pytest.mark.parametrize("name", sorted(BOUNDARY_FUNCS))
@pytest.mark.parametrize("k", [-1.0, -0.25])
def test_float32_point_exactly_on_boundary_has_finite_value_and_gradient(name, k):
    # item 1: a fixed 1e-15 floor on 1 − c‖x‖² made λ⁴ ≈ 1e60 overflow in float32 gradients.
    f = BOUNDARY_FUNCS[name]
    x = _on_boundary(2, k)

    def g(x):
        return f(x) if k == -1.0 else _with_curvature(name, x, k)

    value, grad = jax.value_and_grad(g)(x)
    assert np.isfinite(np.asarray(value)).all(), (name, value)
    assert np.isfinite(np.asarray(grad)).all(), (name, grad)


def _with_curvature(name, x, k):
    # The same functions at another curvature (the point is then on that ball's boundary).
    calls = {
        "dist_coincident": lambda: pm.dist(x, x, curvature=k),
        "dist": lambda: pm.dist(x, 0.5 * x, curvature=k),
        "logmap": lambda: pm.logmap(x, 0.5 * x, curvature=k).sum(),
        "pairwise_dist": lambda: pm.pairwise_dist(x[None], x[None], curvature=k).sum(),
        "expmap": lambda: pm.expmap(x, jnp.zeros_like(x), curvature=k).sum(),
        "inner": lambda: pm.inner(x, x, curvature=k),
        "norm": lambda: pm.norm(x, x, curvature=k),
        "geodesic": lambda: pm.geodesic(0.3, x, -0.5 * x, curvature=k).sum(),
        "wrapped_normal": lambda: pm.wrapped_normal(KEY, x, 0.1, curvature=k).sum(),
        "transp": lambda: pm.transp(x, 0.5 * x, jnp.ones_like(x), curvature=k).sum(),
        "transp_self": lambda: pm.transp(x, x, jnp.ones_like(x), curvature=k).sum(),
        "gyration": lambda: pm.gyration(x, -x, jnp.ones_like(x), curvature=k).sum(),
        "conformal_factor": lambda: pm.conformal_factor(x, curvature=k),
        "transp0back": lambda: pm.transp0back(x, x, curvature=k).sum(),
        "poincare_mlr": lambda: L.poincare_mlr.apply(MLR, x, curvature=k).sum(),
        "hyperbolic_cross_entropy": lambda: L.hyperbolic_cross_entropy(
            MLR, x, jnp.int32(1), curvature=k
        ),
    }
    return calls[name]()


@settings(max_examples=25, deadline=None)
@given(
    theta=st.floats(0, 2 * np.pi),
    k=st.sampled_from([-1.0, -0.3, -4.0]),
    name=st.sampled_from(sorted(BOUNDARY_FUNCS)),
)
def test_boundary_property_gradients_wrt_point_and_curvature(theta, k, name):
    # Any direction, several curvatures: points rounded onto c‖x‖² ≈ 1, gradients with
    # respect to x and to K finite.
    x = (np.array([np.cos(theta), np.sin(theta)]) / np.sqrt(-k)).astype(np.float32)
    x = jnp.asarray(x)
    gx, gk = jax.grad(lambda x, k: _with_curvature(name, x, k), argnums=(0, 1))(x, F32(k))
    assert np.isfinite(np.asarray(gx)).all() and np.isfinite(float(gk)), (name, gx, gk)


def test_transp_gradient_wrt_tiny_curvature_is_finite():
    # item 2: a float32 point 1e-6 inside the boundary of the ball of K = −1e-12.
    x = (jnp.array([0.6, 0.8, 0.0]) * (1 - 1e-6) * 1e6).astype(F32)
    v = jnp.array([1.0, 0.0, 0.0], F32)
    g = jax.grad(lambda k: pm.transp(x, x, v, curvature=k).sum())(F32(-1e-12))
    # transp(x, x, v) = v for every K: the derivative is 0.
    assert np.isfinite(float(g)) and abs(float(g)) < 1e-3


@pytest.mark.parametrize("r", [0.996, 0.999, 0.9999])
def test_transp_to_itself_is_identity_near_the_boundary(r):
    # item 3: geoopt's closed-form gyration denominator cancels; transp(x, x, v) gave
    # relative errors 3e-3 / 5e-2 / 5.3 at these norms in float32.
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2000, 3))
    x = (x / np.linalg.norm(x, axis=-1, keepdims=True) * r).astype(np.float32)
    v = rng.normal(size=(2000, 3)).astype(np.float32)
    out = np.asarray(pm.transp(x, x, v), np.float64)
    err = np.linalg.norm(out - v, axis=-1) / np.linalg.norm(v, axis=-1)
    assert err.max() < 1e-6, err.max()


@pytest.mark.parametrize("r", [0.9, 0.996, 0.999])
def test_transp_between_near_points_matches_float64(r):
    # Transport between near points (Adam's momentum moves a small step), float32 vs the
    # float64 transport of the same float32 inputs.
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2000, 3))
    x = (x / np.linalg.norm(x, axis=-1, keepdims=True) * r).astype(np.float32)
    y = np.asarray(pm.project((x + 1e-4 * rng.normal(size=x.shape)).astype(np.float32)))
    v = rng.normal(size=(2000, 3)).astype(np.float32)
    with jax.enable_x64(True):
        ref = np.asarray(pm.transp(*(np.asarray(a, np.float64) for a in (x, y, v))))
    out = np.asarray(pm.transp(x, y, v), np.float64)
    err = np.linalg.norm(out - ref, axis=-1) / np.linalg.norm(ref, axis=-1)
    assert err.max() < 1e-4, err.max()


def test_gyration_matches_the_closed_form_in_float64():
    # The rewritten (cancellation-free) gyration equals geoopt's closed form.
    rng = np.random.default_rng(5)
    with jax.enable_x64(True):
        a, b = (rng.uniform(-0.45, 0.45, size=(200, 4)) for _ in range(2))  # inside the ball
        u = rng.normal(size=(200, 4))
        a2, b2 = np.sum(a * a, -1, keepdims=True), np.sum(b * b, -1, keepdims=True)
        ab = np.sum(a * b, -1, keepdims=True)
        au, bu = np.sum(a * u, -1, keepdims=True), np.sum(b * u, -1, keepdims=True)
        alpha = -au * b2 + bu + 2 * ab * bu
        beta = -bu * a2 - au
        want = u + 2 * (alpha * a + beta * b) / (1 + 2 * ab + a2 * b2)
        got = np.asarray(pm.gyration(a, b, u))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_float32_reach_matches_float64():
    # item 13: the 4e-3 float32 margin capped distances to the origin at ≈ 6.2.
    u = jnp.array([5.0, 0.0], F32)  # exp₀(u) lies at distance 2‖u‖ = 10
    assert abs(float(pm.dist0(pm.expmap0(u))) - 10.0) < 1e-3
    far = pm.project(jnp.array([1e6, 0.0], F32))
    reach = float(pm.dist0(far))
    assert reach > 12.0, reach
    assert G.ball_eps(F32) == G.ball_eps(jnp.float64)
    # 16-bit outputs keep a margin wider than their spacing below 1.
    assert float(jnp.max(jnp.abs(pm.project(jnp.array([2.0, 0.0], jnp.bfloat16))))) < 1.0


@pytest.mark.parametrize("r", [0.5, 0.99, 0.9999])
def test_pairwise_self_diagonal_is_zero_and_exact_mode_matches_dist(r):
    # item 14: the expansion gave up to 0.036 on the diagonal of pairwise_dist(x, x).
    rng = np.random.default_rng(6)
    x = rng.normal(size=(64, 5))
    x = x / np.linalg.norm(x, axis=-1, keepdims=True) * rng.uniform(0, r, (64, 1)) ** 0.2
    x = jnp.asarray(x, F32)
    diag = np.diagonal(np.asarray(pm.pairwise_dist(x)))
    assert np.all(diag == 0)
    g = jax.grad(lambda x: jnp.sum(jnp.diagonal(pm.pairwise_dist(x))))(x)
    assert np.all(np.asarray(g) == 0)
    y = pm.project(x + 1e-4 * jnp.asarray(rng.normal(size=x.shape), F32))
    exact = np.asarray(pm.pairwise_dist(x, y, exact=True))
    want = np.asarray(pm.dist(x[:, None], y[None]))
    np.testing.assert_allclose(exact, want, rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(np.diagonal(np.asarray(pm.pairwise_dist(x, x, exact=True))), 0)


def test_pairwise_exact_gradient_matches_dist_gradient():
    rng = np.random.default_rng(7)
    x = jnp.asarray(rng.uniform(-0.4, 0.4, (6, 3)), jnp.float32)
    y = jnp.asarray(rng.uniform(-0.4, 0.4, (5, 3)), jnp.float32)
    ga = jax.grad(lambda x, y: pm.pairwise_dist(x, y, exact=True).sum(), argnums=(0, 1))(x, y)
    gb = jax.grad(lambda x, y: pm.dist(x[:, None], y[None]).sum(), argnums=(0, 1))(x, y)
    for a, b in zip(ga, gb, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    f = jax.jit(jax.vmap(lambda x: pm.pairwise_dist(x, exact=True)))
    assert f(jnp.stack([x, x])).shape == (2, 6, 6)


def _count_primitives(fn, *args):
    jaxpr = jax.make_jaxpr(fn)(*args)
    names = []

    def walk(j):
        for eqn in j.eqns:
            names.append(eqn.primitive.name)
            for p in eqn.params.values():
                if hasattr(p, "jaxpr"):
                    walk(p.jaxpr if hasattr(p.jaxpr, "eqns") else p.jaxpr.jaxpr)

    walk(jaxpr.jaxpr)
    return names


def test_dist_backward_uses_the_short_arsinh_form():
    # item 15: the artanh form (log1p, log of a ratio, two quotients) made the backward pass
    # 1.5× slower than d = (2/√c) arsinh(√(c‖x − y‖²/((1 − c‖x‖²)(1 − c‖y‖²)))).
    x = jnp.zeros((8, 4), F32) + 0.1
    names = _count_primitives(jax.grad(lambda x, y: pm.dist(x, y).sum()), x, -x)
    transcendental = [n for n in names if n in ("log", "log1p", "asinh", "atanh", "tanh")]
    assert transcendental.count("log") + transcendental.count("log1p") == 0, transcendental


@settings(max_examples=30, deadline=None)
@given(
    r=st.floats(0.0, 0.99999),
    s=st.floats(0.0, 0.99999),
    theta=st.floats(0, np.pi),
    k=st.sampled_from([-1.0, -0.01, -7.0]),
)
def test_dist_arsinh_form_matches_float64_artanh_form(r, s, theta, k):
    x = np.array([r, 0.0]) / np.sqrt(-k)
    y = np.array([s * np.cos(theta), s * np.sin(theta)]) / np.sqrt(-k)
    with jax.enable_x64(True):
        got = float(pm.dist(x, y, curvature=k))
        c = -k
        d2 = np.sum((x - y) ** 2)
        den = c * d2 + (1 - c * x @ x) * (1 - c * y @ y)
        t = np.sqrt(c * d2 / den)
        want = 2 / np.sqrt(c) * np.arctanh(t) if t > 0 else 0.0
    assert abs(got - want) <= 1e-9 * max(1.0, want)


# ---------------------------------------------------------------- one shape check (item 5)

MISMATCHED = {
    "dist": lambda: pm.dist(jnp.zeros((3, 2)), jnp.zeros((4, 2))),
    "egrad2rgrad": lambda: pm.egrad2rgrad(jnp.zeros((3, 2)), jnp.zeros((4, 2))),
    "mobius_add": lambda: pm.mobius_add(jnp.zeros((3, 2)), jnp.zeros((4, 2))),
    "transp": lambda: pm.transp(jnp.zeros((3, 2)), jnp.zeros((3, 2)), jnp.zeros((4, 2))),
    "mobius_scalar_mul": lambda: pm.mobius_scalar_mul(jnp.ones((7,)), jnp.zeros((3, 2))),
    "geodesic": lambda: pm.geodesic(jnp.ones((5,)), jnp.zeros((3, 2)), jnp.zeros((3, 2))),
    "pairwise_dist": lambda: pm.pairwise_dist(jnp.zeros((2, 3, 2)), jnp.zeros((3, 4, 2))),
}


@pytest.mark.parametrize("name", sorted(MISMATCHED))
def test_mismatched_leading_axes_raise_value_error_naming_arguments(name):
    with pytest.raises(ValueError, match=r"shape .* (broadcast|must be a scalar)"):
        MISMATCHED[name]()


@settings(max_examples=30, deadline=None)
@given(
    a=st.lists(st.integers(1, 4), min_size=0, max_size=3),
    b=st.lists(st.integers(1, 4), min_size=0, max_size=3),
)
def test_shape_check_agrees_with_numpy_broadcasting(a, b):
    x, y = jnp.zeros((*a, 2), F32), jnp.full((*b, 2), 0.1, F32)
    try:
        want = np.broadcast_shapes(tuple(a), tuple(b))
    except ValueError:
        with pytest.raises(ValueError, match="broadcast"):
            pm.dist(x, y)
        return
    assert pm.dist(x, y).shape == want


def test_per_point_factor_broadcasting_still_works():
    x = jnp.full((3, 2), 0.1, F32)
    assert pm.mobius_scalar_mul(jnp.ones((3, 1)), x).shape == (3, 2)
    assert pm.geodesic(jnp.full((4, 1, 1), 0.5), x, -x).shape == (4, 3, 2)
    assert pm.geodesic(0.5, x, -x).shape == (3, 2)


# ------------------------------------------- expmap regrouped from the inputs (issue 19)


def test_expmap_equals_mobius_add_of_the_scaled_tangent_in_float64():
    # _expmap writes x ⊕ v (v = tanh(√c λ_x‖u‖/2) u/(√c‖u‖)) as a combination of x and u;
    # it must be the same point as the generic Möbius addition.
    rng = np.random.default_rng(8)
    with jax.enable_x64(True):
        for k in (-1.0, -0.3, -5.0):
            c = -k
            x = rng.normal(size=(300, 4))
            x *= rng.uniform(0, 0.999, (300, 1)) / np.linalg.norm(x, axis=-1, keepdims=True)
            x /= np.sqrt(c)
            u = rng.normal(size=(300, 4)) * 10.0 ** rng.uniform(-3, 1, (300, 1))
            lam = 2 / (1 - c * np.sum(x * x, -1, keepdims=True))
            nu = np.linalg.norm(u, axis=-1, keepdims=True)
            v = np.tanh(np.sqrt(c) * lam * nu / 2) * u / (np.sqrt(c) * nu)
            want = np.asarray(pm.project(pm.mobius_add(x, v, curvature=k), curvature=k))
            got = np.asarray(pm.expmap(x, u, curvature=k))
            np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("k", [-1.0, -4.0])
def test_expmap_gradient_with_v_near_minus_x_matches_float64(k):
    # Near the boundary with u pointing back through the origin, x + v cancels: the float32
    # gradient must stay as close to the float64 one as through `mobius_add` (p99 row error
    # ≈ 3e-4 here, both forms); Ungar's form 1 + 2c⟨x,v⟩ + … gave 5e-2.
    rng = np.random.default_rng(9)
    n, d = 2000, 5
    x = rng.normal(size=(n, d))
    x *= rng.uniform(0.99, 0.999, (n, 1)) / np.linalg.norm(x, axis=-1, keepdims=True)
    x /= np.sqrt(-k)
    scale = 10.0 ** rng.uniform(-6, 2, (n, 1))
    u = -x * scale * rng.uniform(0.1, 10, (n, 1)) + 1e-3 * scale * rng.normal(size=(n, d))
    weights = np.cos(np.arange(d) + 0.3)

    def loss(x, u):
        return jnp.sum(pm.expmap(x, u, curvature=k) * weights)

    x32, u32 = jnp.asarray(x, F32), jnp.asarray(u, F32)
    got = jax.grad(loss, argnums=(0, 1))(x32, u32)
    with jax.enable_x64(True):
        want = jax.grad(loss, argnums=(0, 1))(
            jnp.asarray(x32, jnp.float64), jnp.asarray(u32, jnp.float64)
        )
    for g, w in zip(got, want, strict=True):
        g, w = np.asarray(g, np.float64), np.asarray(w)
        err = np.linalg.norm(g - w, axis=-1) / np.linalg.norm(w, axis=-1)
        assert np.percentile(err, 99) < 1e-3, np.percentile(err, 99)


def test_expmap_of_a_tangent_whose_square_norm_overflows_stays_finite():
    # ‖u‖² = inf in float32 beyond ‖u‖ ≈ 1.8e19 (k = 0 then): the value stays finite.
    x = jnp.asarray([[0.3, -0.2, 0.1], [0.0, 0.0, 0.0]], F32)
    u = jnp.asarray([[1.0, 2.0, -1.0]] * 2, F32) * 1e20
    assert np.all(np.isfinite(np.asarray(pm.expmap(x, u))))
