"""No NaN/Inf in float32 — values and gradients — over extreme inputs (SPEC §0 "No NaN, ever").

Property tests (hypothesis) over point norms from 1e-15 up to the boundary, tangent vectors
up to 1e6, coincident / antipodal / near points, and curvatures K from −1e-15 to −10.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import spiraljax.geometry as G

F32 = jnp.float32
N, D = 6, 3
KEY = jax.random.key(0)
MAT = jnp.asarray(np.random.default_rng(0).normal(size=(4, D)) * 3, F32)

# name -> (f(x, y, u, k), returns points?)
FUNCS = {
    "project": (lambda x, y, u, k: G.project(u * 1e3, curvature=k), True),
    "conformal_factor": (lambda x, y, u, k: G.conformal_factor(x, curvature=k), False),
    "mobius_add": (lambda x, y, u, k: G.mobius_add(x, y, curvature=k), True),
    "mobius_sub": (lambda x, y, u, k: G.mobius_sub(x, y, curvature=k), True),
    "mobius_scalar_mul_big": (lambda x, y, u, k: G.mobius_scalar_mul(1000.0, x, curvature=k), True),
    "mobius_scalar_mul_tiny": (lambda x, y, u, k: G.mobius_scalar_mul(1e-6, x, curvature=k), True),
    "mobius_matvec": (lambda x, y, u, k: G.mobius_matvec(MAT, x, curvature=k), True),
    "gyration": (lambda x, y, u, k: G.gyration(x, y, u, curvature=k), False),
    "expmap": (lambda x, y, u, k: G.expmap(x, u, curvature=k), True),
    "logmap": (lambda x, y, u, k: G.logmap(x, y, curvature=k), False),
    "expmap0": (lambda x, y, u, k: G.expmap0(u, curvature=k), True),
    "logmap0": (lambda x, y, u, k: G.logmap0(x, curvature=k), False),
    "dist": (lambda x, y, u, k: G.dist(x, y, curvature=k), False),
    "dist_coincident": (lambda x, y, u, k: G.dist(x, x, curvature=k), False),
    "dist0": (lambda x, y, u, k: G.dist0(x, curvature=k), False),
    "pairwise_dist": (lambda x, y, u, k: G.pairwise_dist(x, y, curvature=k), False),
    "pairwise_dist_self": (lambda x, y, u, k: G.pairwise_dist(x, x, curvature=k), False),
    "egrad2rgrad": (lambda x, y, u, k: G.egrad2rgrad(x, u, curvature=k), False),
    "inner": (lambda x, y, u, k: G.inner(x, u, y, curvature=k), False),
    "norm": (lambda x, y, u, k: G.norm(x, u, curvature=k), False),
    "transp": (lambda x, y, u, k: G.transp(x, y, u, curvature=k), False),
    "transp0": (lambda x, y, u, k: G.transp0(y, u, curvature=k), False),
    "transp0back": (lambda x, y, u, k: G.transp0back(x, u, curvature=k), False),
    "geodesic": (lambda x, y, u, k: G.geodesic(0.37, x, y, curvature=k), True),
    "weighted_midpoint": (
        lambda x, y, u, k: G.weighted_midpoint(jnp.stack([x, y], 1), curvature=k),
        True,
    ),
    "frechet_mean": (
        lambda x, y, u, k: G.frechet_mean(jnp.stack([x, y], 1), curvature=k, maxiter=5),
        True,
    ),
    "wrapped_normal": (lambda x, y, u, k: G.wrapped_normal(KEY, x, 3.0, curvature=k), True),
}


def _value_and_grads(fn):
    def total(x, y, u, k):
        return jnp.sum(fn(x, y, u, k))

    return jax.jit(lambda x, y, u, k: (fn(x, y, u, k), jax.grad(total, (0, 1, 2, 3))(x, y, u, k)))


CHECKS = {name: _value_and_grads(fn) for name, (fn, _) in FUNCS.items()}


@st.composite
def extreme_inputs(draw):
    k = -(10.0 ** draw(st.floats(-15, 1)))
    radius = 1 / np.sqrt(-k)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["tiny", "mid", "boundary"]))
    if kind == "tiny":
        frac = 10.0 ** rng.uniform(-15, -1, size=(N, 1))
    elif kind == "mid":
        frac = rng.uniform(0.1, 0.9, size=(N, 1))
    else:
        frac = 1 - 10.0 ** rng.uniform(-8, -1, size=(N, 1))  # projected back inside below
    direction = rng.normal(size=(N, D))
    direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
    x = direction * frac * radius
    relation = draw(st.sampled_from(["coincident", "antipodal", "near", "random"]))
    if relation == "coincident":
        y = x.copy()
    elif relation == "antipodal":
        y = -x
    elif relation == "near":
        y = x * (1 + 1e-7 * rng.normal(size=(N, 1)))
    else:
        y = rng.normal(size=(N, D)) * radius * draw(st.sampled_from([1e-15, 0.3, 1.0]))
    u = rng.normal(size=(N, D)) * 10.0 ** draw(st.floats(-15, 6))
    to = lambda a: G.project(jnp.asarray(a, F32), curvature=k)  # noqa: E731
    return to(x), to(y), jnp.asarray(u, F32), jnp.asarray(k, F32)


def _inside(points, k):
    c = -float(k)
    norms = np.linalg.norm(np.asarray(points, np.float64), axis=-1)
    # ε = ball_eps(float32) margin, with float32 rounding slack.
    return np.all(norms * np.sqrt(c) <= (1 - G.ball_eps(jnp.float32)) * (1 + 1e-6))


@pytest.mark.parametrize("name", sorted(FUNCS))
@given(inputs=extreme_inputs())
def test_values_and_gradients_are_finite(name, inputs):
    x, y, u, k = inputs
    value, grads = CHECKS[name](x, y, u, k)
    assert value.dtype == F32
    assert np.all(np.isfinite(value)), (name, value)
    bad = [not np.all(np.isfinite(g)) for g in grads]
    if any(bad):
        # A gradient may only leave the float32 range where the true (float64) gradient of
        # the same float32 inputs does too (e.g. ∂λ_x²/∂K ~ 8/(c(1 − c‖x‖²)³) at K = −1e-15,
        # times a tangent of 1e6, near the 1e-5 margin): never NaN, never a spurious Inf.
        with jax.enable_x64(True):
            fn = FUNCS[name][0]
            args64 = [jnp.asarray(a, jnp.float64) for a in inputs]
            grads64 = jax.grad(lambda *a: jnp.sum(fn(*a)), (0, 1, 2, 3))(*args64)
        big = float(jnp.finfo(F32).max)
        for arg, g, g64, b in zip("xyuk", grads, grads64, bad, strict=True):
            if b:
                g, g64 = np.asarray(g), np.asarray(g64)
                assert not np.any(np.isnan(g)), (name, arg, g)
                overflow = ~np.isfinite(g)
                assert np.all(np.abs(g64[overflow]) > big / 2), (name, arg, g, g64)
    if FUNCS[name][1]:
        assert _inside(value, k), (name, np.linalg.norm(value, axis=-1))


def _repeat(step, x0, count):
    def body(x, i):
        x = step(x, i)
        return x, x

    return jax.lax.scan(body, x0, jnp.arange(count))[1]


@pytest.mark.parametrize("k", [-1e-15, -1e-3, -1.0, -10.0])
def test_hundred_huge_expmaps_and_scalar_muls_stay_inside(k):
    """geoopt's test_add_infinity_and_beyond: 100 huge expmaps, then ×1000 scalar mults."""
    rng = np.random.default_rng(1)
    x0 = G.project(jnp.asarray(rng.normal(size=(8, D)) * 0.3 / np.sqrt(-k), F32), curvature=k)
    tangents = jnp.asarray(rng.normal(size=(100, 8, D)) * 1e6, F32)

    @jax.jit
    def run(x0, kk):
        xs = _repeat(lambda x, i: G.expmap(x, tangents[i], curvature=kk), x0, 100)
        ys = _repeat(lambda x, i: G.mobius_scalar_mul(1000.0, x, curvature=kk), xs[-1], 100)
        zs = _repeat(lambda x, i: G.mobius_add(x, x, curvature=kk), ys[-1], 100)
        return xs, ys, zs

    for seq in run(x0, jnp.asarray(k, F32)):
        assert seq.dtype == F32
        assert np.all(np.isfinite(seq))
        assert _inside(seq, k)
    # The gradient through the whole chain of huge maps is finite too.
    g = jax.jit(
        jax.grad(
            lambda x: jnp.sum(
                _repeat(lambda z, i: G.expmap(z, tangents[i], curvature=k), x, 10)[-1]
            )
        )
    )(x0)
    assert np.all(np.isfinite(g))


@pytest.mark.parametrize("k", [-1e-15, -1.0, -10.0])
def test_project_handles_huge_finite_inputs(k):
    x = jnp.asarray([[1e30, -3e30, 2e29], [3e38, 0.0, -3e38], [1e-40, 0.0, 0.0]], F32)
    p = G.project(x, curvature=k)
    assert np.all(np.isfinite(p))
    assert _inside(p, k)
    # Direction is preserved.
    x64, p64 = np.asarray(x, np.float64), np.asarray(p, np.float64)
    for i in range(2):
        np.testing.assert_allclose(
            p64[i] / np.linalg.norm(p64[i]), x64[i] / np.linalg.norm(x64[i]), rtol=1e-5, atol=1e-7
        )
    g = jax.grad(lambda a: jnp.sum(G.project(a, curvature=k)))(x)
    assert np.all(np.isfinite(g))


def test_gradient_at_origin_is_finite_and_correct():
    """At 0 (and at x = y) the gradients exist: d/du exp₀(u) = I, ∇ dist(·, y)|_{x=y} = 0."""
    zero = jnp.zeros(D, F32)
    jac = jax.jacfwd(lambda u: G.expmap0(u, curvature=-1.0))(zero)
    np.testing.assert_allclose(jac, np.eye(D), atol=1e-6)
    jac = jax.jacrev(lambda y: G.logmap0(y, curvature=-1.0))(zero)
    np.testing.assert_allclose(jac, np.eye(D), atol=1e-6)
    y = jnp.asarray([0.1, -0.2, 0.3], F32)
    for f, at in (
        (lambda x: G.dist(x, y), y),
        (lambda x: G.dist0(x), zero),
        (lambda x: G.norm(y, x), zero),
    ):
        g = jax.grad(f)(at)
        assert np.all(g == 0), g
    # pairwise_dist's ‖x‖² + ‖y‖² − 2⟨x, y⟩ leaves a rounding residue at x = y, so its
    # gradient there is finite and small rather than exactly 0 (documented).
    g = jax.grad(lambda x: G.pairwise_dist(x[None], y[None])[0, 0])(y)
    assert np.all(np.isfinite(g)) and np.all(np.abs(g) < 1e-2), g
