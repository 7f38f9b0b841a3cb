"""Bad input → ValueError naming the argument and the value (SPEC §0)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spiraljax.geometry as G

X = jnp.zeros((2, 3), jnp.float32)
Y = jnp.full((2, 3), 0.1, jnp.float32)

# Every public point function called with a valid (2, 3) input and a given curvature.
CALLS = {
    "project": lambda k: G.project(X, curvature=k),
    "conformal_factor": lambda k: G.conformal_factor(X, curvature=k),
    "mobius_add": lambda k: G.mobius_add(X, Y, curvature=k),
    "mobius_sub": lambda k: G.mobius_sub(X, Y, curvature=k),
    "mobius_scalar_mul": lambda k: G.mobius_scalar_mul(2.0, X, curvature=k),
    "mobius_matvec": lambda k: G.mobius_matvec(jnp.eye(3, dtype=jnp.float32), X, curvature=k),
    "gyration": lambda k: G.gyration(X, Y, Y, curvature=k),
    "expmap": lambda k: G.expmap(X, Y, curvature=k),
    "logmap": lambda k: G.logmap(X, Y, curvature=k),
    "expmap0": lambda k: G.expmap0(Y, curvature=k),
    "logmap0": lambda k: G.logmap0(Y, curvature=k),
    "dist": lambda k: G.dist(X, Y, curvature=k),
    "dist0": lambda k: G.dist0(Y, curvature=k),
    "pairwise_dist": lambda k: G.pairwise_dist(X, Y, curvature=k),
    "egrad2rgrad": lambda k: G.egrad2rgrad(X, Y, curvature=k),
    "inner": lambda k: G.inner(X, Y, Y, curvature=k),
    "norm": lambda k: G.norm(X, Y, curvature=k),
    "transp": lambda k: G.transp(X, Y, Y, curvature=k),
    "transp0": lambda k: G.transp0(Y, Y, curvature=k),
    "transp0back": lambda k: G.transp0back(Y, Y, curvature=k),
    "geodesic": lambda k: G.geodesic(0.5, X, Y, curvature=k),
    "weighted_midpoint": lambda k: G.weighted_midpoint(X, curvature=k),
    "frechet_mean": lambda k: G.frechet_mean(X, curvature=k, maxiter=2),
    "wrapped_normal": lambda k: G.wrapped_normal(jax.random.key(0), Y, 1.0, curvature=k),
    "wrapped_normal_log_prob": lambda k: G.wrapped_normal_log_prob(X, Y, 1.0, curvature=k),
}


def test_every_public_function_is_checked():
    assert set(CALLS) == set(G.poincare.__all__)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_positive_curvature_raises(name):
    with pytest.raises(ValueError, match=r"curvature=0\.5 > 0"):
        CALLS[name](0.5)
    with pytest.raises(ValueError, match=r"curvature=2\.0 > 0"):
        CALLS[name](jnp.asarray(2.0))  # concrete arrays are checked too
    with pytest.raises(ValueError, match="curvature=nan must be finite"):
        CALLS[name](float("nan"))
    with pytest.raises(ValueError, match=r"curvature must be a scalar, got shape \(2,\)"):
        CALLS[name](jnp.asarray([-1.0, -2.0]))
    assert np.all(np.isfinite(np.asarray(CALLS[name](-1.0), np.float64)))
    assert np.all(np.isfinite(np.asarray(CALLS[name](0), np.float64)))  # int K = 0 is fine


def test_traced_positive_curvature_is_clamped_to_euclidean():
    f = jax.jit(lambda k: G.dist(X, Y, curvature=k))
    np.testing.assert_allclose(f(1.0), G.dist(X, Y, curvature=0.0), rtol=1e-6)


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (
            lambda: G.mobius_add(jnp.zeros(3), jnp.zeros(4)),
            "y has coordinate axis of size 4, but x has size 3",
        ),
        (lambda: G.dist(jnp.zeros((2, 3)), jnp.zeros((2, 2))), "y has coordinate axis of size 2"),
        (lambda: G.pairwise_dist(jnp.zeros((5, 3)), jnp.zeros((4, 2))), "size 2, but x has size 3"),
        (
            lambda: G.pairwise_dist(jnp.zeros(3), jnp.zeros((4, 3))),
            r"got shapes \(3,\) and \(4, 3\)",
        ),
        (lambda: G.expmap(jnp.zeros(3), jnp.zeros(2)), "u has coordinate axis of size 2"),
        (
            lambda: G.transp(jnp.zeros(3), jnp.zeros(3), jnp.zeros(5)),
            "v has coordinate axis of size 5",
        ),
        (lambda: G.gyration(jnp.zeros(3), jnp.zeros(2), jnp.zeros(3)), "b has coordinate axis"),
        (
            lambda: G.inner(jnp.zeros(3), jnp.zeros(3), jnp.zeros(4)),
            "v has coordinate axis of size 4",
        ),
        (
            lambda: G.mobius_matvec(jnp.zeros((2, 4)), jnp.zeros(3)),
            r"m expects 4 \(m has shape \(2, 4\)\)",
        ),
        (
            lambda: G.mobius_matvec(jnp.zeros(3), jnp.zeros(3)),
            r"m must be a matrix .* got shape \(3,\)",
        ),
        (lambda: G.dist(jnp.asarray(1.0), jnp.asarray(2.0)), "x must have a coordinate axis"),
        (lambda: G.project(jnp.asarray(1.0)), "x must have a coordinate axis"),
        (
            lambda: G.weighted_midpoint(jnp.zeros((4, 3)), axis=-1),
            "axis=-1 must index a point axis",
        ),
        (lambda: G.weighted_midpoint(jnp.zeros((4, 3)), axis=2), "axis=2 must index a point axis"),
        (lambda: G.weighted_midpoint(jnp.zeros((4, 3)), jnp.ones(5)), r"weights of shape \(5,\)"),
        (lambda: G.weighted_midpoint(jnp.zeros(3)), r"xs must have shape \(..., n, d\)"),
        (lambda: G.frechet_mean(jnp.zeros((4, 3)), maxiter=-1), "maxiter=-1 must be"),
        (lambda: G.frechet_mean(jnp.zeros((4, 3)), maxiter=2.5), "maxiter=2.5 must be"),
        (
            lambda: G.wrapped_normal(jax.random.key(0), jnp.zeros(3), -1.0),
            r"scale=-1\.0 must be >= 0",
        ),
        (
            lambda: G.wrapped_normal(jax.random.key(0), jnp.zeros((2, 3)), 1.0, (3,)),
            r"shape=\(3,\)",
        ),
    ],
)
def test_shape_errors_name_argument_and_value(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


@pytest.mark.parametrize("dtype", [jnp.int32, jnp.int64, jnp.bool_, jnp.complex64])
def test_non_floating_dtype_raises(dtype):
    bad = jnp.zeros((2, 3), dtype)
    with pytest.raises(ValueError, match=f"x has non-floating dtype {jnp.dtype(dtype).name}"):
        G.expmap(bad, Y)
    with pytest.raises(ValueError, match=f"y has non-floating dtype {jnp.dtype(dtype).name}"):
        G.dist(Y, bad)
    with pytest.raises(ValueError, match="xs has non-floating dtype"):
        G.weighted_midpoint(bad)
    with pytest.raises(ValueError, match="x has non-floating dtype"):
        G.project(bad)


def test_python_scalars_do_not_set_the_dtype():
    assert G.mobius_scalar_mul(2, Y).dtype == jnp.float32
    assert G.geodesic(1, Y, Y).dtype == jnp.float32
    assert G.expmap0([0.1, 0.2]).dtype == jnp.result_type(float)


def test_guards_are_reusable():
    assert G.check_curvature(-2.0) == -2.0
    with pytest.raises(ValueError, match=r"lr_curvature=3\.0 > 0"):
        G.check_curvature(3.0, name="lr_curvature")
    assert float(G.curvature_to_c(-2.5, jnp.float32)) == 2.5
    assert G.compute_dtype(jnp.bfloat16) == jnp.float32
    assert G.compute_dtype(jnp.float64) == jnp.float64
    assert G.ball_eps(jnp.float32) == 1e-5 and G.ball_eps(jnp.float64) == 1e-5
    assert G.ball_eps(jnp.bfloat16) == 4e-3
    (a, _), out, work = G.as_float(("a", jnp.ones(2, jnp.bfloat16)), ("b", 1.0))
    assert out == jnp.bfloat16 and work == jnp.float32 and a.dtype == jnp.float32
    assert G.check_same_dim(("a", np.zeros((2, 3))), ("b", np.zeros(3))) == 3
    g = jax.grad(lambda s: G.safe_sqrt(s))(0.0)
    assert g == 0
