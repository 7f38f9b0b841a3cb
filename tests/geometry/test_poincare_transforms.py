"""Every public Poincaré function under jit, vmap and grad; dtype policy (f32/f64/bf16/f16)."""

import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from geo_utils import assert_close, assert_finite, ball_points, tangents

import spiraljax.geometry as G

K = -0.8
KEY = jax.random.key(7)


def _pts(rng, shape, dtype, frac=0.7):
    return ball_points(rng, shape, K, dtype, max_frac=frac)


def _tan(rng, shape, dtype, scale=0.3):
    return tangents(rng, shape, dtype, scale)


# name -> (callable(*args, curvature), builder(rng, dtype, batch) -> args)
# ``batch`` is a tuple of leading axes added to every argument.
CASES = {
    "project": (
        lambda x, k: G.project(x, curvature=k),
        lambda r, dt, b: (_tan(r, (*b, 4, 3), dt, scale=1.5),),
    ),
    "conformal_factor": (
        lambda x, k: G.conformal_factor(x, curvature=k),
        lambda r, dt, b: (_pts(r, (*b, 4, 3), dt),),
    ),
    "mobius_add": (
        lambda x, y, k: G.mobius_add(x, y, curvature=k),
        lambda r, dt, b: (_pts(r, (*b, 4, 3), dt), _pts(r, (*b, 4, 3), dt)),
    ),
    "mobius_sub": (
        lambda x, y, k: G.mobius_sub(x, y, curvature=k),
        lambda r, dt, b: (_pts(r, (*b, 4, 3), dt), _pts(r, (*b, 4, 3), dt)),
    ),
    "mobius_scalar_mul": (
        lambda s, x, k: G.mobius_scalar_mul(s, x, curvature=k),
        lambda r, dt, b: (_tan(r, (*b, 4, 1), dt, 1.0), _pts(r, (*b, 4, 3), dt, 0.5)),
    ),
    "mobius_matvec": (
        lambda m, x, k: G.mobius_matvec(m, x, curvature=k),
        lambda r, dt, b: (_tan(r, (*b, 2, 3), dt, 0.7), _pts(r, (*b, 4, 3), dt, 0.5)),
    ),
    "gyration": (
        lambda a, bb, u, k: G.gyration(a, bb, u, curvature=k),
        lambda r, dt, b: (
            _pts(r, (*b, 4, 3), dt),
            _pts(r, (*b, 4, 3), dt),
            _tan(r, (*b, 4, 3), dt),
        ),
    ),
    "expmap": (
        lambda x, u, k: G.expmap(x, u, curvature=k),
        lambda r, dt, b: (_pts(r, (*b, 4, 3), dt, 0.5), _tan(r, (*b, 4, 3), dt)),
    ),
    "logmap": (
        lambda x, y, k: G.logmap(x, y, curvature=k),
        lambda r, dt, b: (_pts(r, (*b, 4, 3), dt), _pts(r, (*b, 4, 3), dt)),
    ),
    "expmap0": (
        lambda u, k: G.expmap0(u, curvature=k),
        lambda r, dt, b: (_tan(r, (*b, 4, 3), dt),),
    ),
    "logmap0": (
        lambda y, k: G.logmap0(y, curvature=k),
        lambda r, dt, b: (_pts(r, (*b, 4, 3), dt),),
    ),
    "dist": (
        lambda x, y, k: G.dist(x, y, curvature=k),
        lambda r, dt, b: (_pts(r, (*b, 4, 3), dt), _pts(r, (*b, 4, 3), dt)),
    ),
    "dist0": (
        lambda x, k: G.dist0(x, curvature=k),
        lambda r, dt, b: (_pts(r, (*b, 4, 3), dt),),
    ),
    "pairwise_dist": (
        lambda x, y, k: G.pairwise_dist(x, y, curvature=k),
        lambda r, dt, b: (_pts(r, (*b, 4, 3), dt), _pts(r, (*b, 5, 3), dt)),
    ),
    "egrad2rgrad": (
        lambda x, g, k: G.egrad2rgrad(x, g, curvature=k),
        lambda r, dt, b: (_pts(r, (*b, 4, 3), dt), _tan(r, (*b, 4, 3), dt)),
    ),
    "inner": (
        lambda x, u, v, k: G.inner(x, u, v, curvature=k),
        lambda r, dt, b: (
            _pts(r, (*b, 4, 3), dt),
            _tan(r, (*b, 4, 3), dt),
            _tan(r, (*b, 4, 3), dt),
        ),
    ),
    "norm": (
        lambda x, u, k: G.norm(x, u, curvature=k),
        lambda r, dt, b: (_pts(r, (*b, 4, 3), dt), _tan(r, (*b, 4, 3), dt)),
    ),
    "transp": (
        lambda x, y, v, k: G.transp(x, y, v, curvature=k),
        lambda r, dt, b: (
            _pts(r, (*b, 4, 3), dt),
            _pts(r, (*b, 4, 3), dt),
            _tan(r, (*b, 4, 3), dt),
        ),
    ),
    "transp0": (
        lambda y, v, k: G.transp0(y, v, curvature=k),
        lambda r, dt, b: (_pts(r, (*b, 4, 3), dt), _tan(r, (*b, 4, 3), dt)),
    ),
    "transp0back": (
        lambda x, v, k: G.transp0back(x, v, curvature=k),
        lambda r, dt, b: (_pts(r, (*b, 4, 3), dt), _tan(r, (*b, 4, 3), dt)),
    ),
    "geodesic": (
        lambda t, x, y, k: G.geodesic(t, x, y, curvature=k),
        lambda r, dt, b: (
            jnp.asarray(r.uniform(0, 1, size=(*b, 4, 1)), dt),
            _pts(r, (*b, 4, 3), dt),
            _pts(r, (*b, 4, 3), dt),
        ),
    ),
    "weighted_midpoint": (
        lambda xs, w, k: G.weighted_midpoint(xs, w, curvature=k),
        lambda r, dt, b: (
            _pts(r, (*b, 2, 5, 3), dt),
            jnp.asarray(r.uniform(0.5, 2, (*b, 2, 5)), dt),
        ),
    ),
    "frechet_mean": (
        lambda xs, w, k: G.frechet_mean(xs, w, curvature=k, maxiter=15),
        lambda r, dt, b: (
            _pts(r, (*b, 2, 5, 3), dt, 0.5),
            jnp.asarray(r.uniform(0.5, 2, (*b, 2, 5)), dt),
        ),
    ),
    "wrapped_normal": (
        lambda mean, scale, k: G.wrapped_normal(KEY, mean, scale, (2, 4), curvature=k),
        lambda r, dt, b: (
            _pts(r, (*b, 4, 3), dt, 0.5),
            jnp.asarray(r.uniform(0.1, 0.5, (*b, 1, 3)), dt),
        ),
    ),
    "wrapped_normal_log_prob": (
        lambda z, mean, scale, k: G.wrapped_normal_log_prob(z, mean, scale, curvature=k),
        lambda r, dt, b: (
            _pts(r, (*b, 4, 3), dt, 0.5),
            _pts(r, (*b, 4, 3), dt, 0.5),
            jnp.asarray(r.uniform(0.3, 1.0, (*b, 1, 3)), dt),
        ),
    ),
}
NAMES = sorted(CASES)


def test_every_public_function_is_covered():
    public = set(G.poincare.__all__)
    assert public == set(CASES), public ^ set(CASES)


@pytest.mark.parametrize("name", NAMES)
def test_jit_vmap_and_dtypes(name):
    fn, build = CASES[name]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    for dtype in (jnp.float32, jnp.float64):
        args = build(rng, dtype, ())
        eager = fn(*args, K)
        assert eager.dtype == dtype, (name, eager.dtype)
        jitted = jax.jit(fn)(*args, jnp.asarray(K, dtype))
        assert jitted.dtype == dtype
        assert_close(jitted, eager, dtype, 10)
    # vmap over a leading batch axis of every argument equals a Python loop.
    args = build(rng, jnp.float64, (3,))
    batched = jax.vmap(fn, in_axes=(*([0] * len(args)), None))(*args, K)
    looped = jnp.stack([fn(*[a[i] for a in args], K) for i in range(3)])
    assert_close(batched, looped, jnp.float64, 10)
    # vmap over the curvature (a traced K) equals separate calls.
    ks = jnp.asarray([-0.2, -1.0, -3.0])
    args = build(rng, jnp.float64, ())
    per_k = jax.vmap(lambda k: fn(*args, k))(ks)
    assert_close(per_k, jnp.stack([fn(*args, float(k)) for k in ks]), jnp.float64, 10)


@pytest.mark.parametrize("name", NAMES)
def test_grad_matches_finite_differences(name):
    fn, build = CASES[name]
    rng = np.random.default_rng(zlib.crc32(name.encode()) + 1)
    args = (*build(rng, jnp.float64, ()), jnp.asarray(K, jnp.float64))
    n = len(args)

    def scalar(*a):
        return jnp.sum(jnp.sin(3 * fn(*a)))  # a generic cotangent

    value = jax.jit(scalar)
    grad = jax.jit(jax.grad(scalar, argnums=tuple(range(n))))
    g64 = grad(*args)
    # Central differences along a random direction, argument by argument (curvature last).
    h = 1e-6
    for i in range(n):
        v = jnp.asarray(rng.normal(size=np.shape(args[i])), jnp.float64)
        plus = [a + h * v if j == i else a for j, a in enumerate(args)]
        minus = [a - h * v if j == i else a for j, a in enumerate(args)]
        fd = (value(*plus) - value(*minus)) / (2 * h)
        np.testing.assert_allclose(
            jnp.sum(g64[i] * v), fd, rtol=1e-6, atol=1e-6, err_msg=f"{name}: argument {i}"
        )
    # float32 gradients are finite and close to the float64 ones.
    g32 = grad(*[a.astype(jnp.float32) for a in args])
    assert_finite(g32, name)
    if name == "wrapped_normal":
        return  # float32 and float64 draws are different samples
    for a, b in zip(g32, g64, strict=True):
        np.testing.assert_allclose(np.asarray(a, np.float64), b, rtol=2e-2, atol=2e-3)


LOW_PRECISION = [(name, jnp.bfloat16) for name in NAMES] + [
    (name, jnp.float16) for name in ("dist", "expmap", "mobius_add", "pairwise_dist", "logmap0")
]


@pytest.mark.parametrize(("name", "dtype"), LOW_PRECISION)
def test_low_precision_inputs_computed_in_float32(name, dtype):
    fn, build = CASES[name]
    rng = np.random.default_rng(3)
    args32 = [a.astype(dtype).astype(jnp.float32) for a in build(rng, jnp.float32, ())]
    low = fn(*[a.astype(dtype) for a in args32], K)
    assert low.dtype == dtype, (name, low.dtype)
    ref = fn(*args32, K)
    np.testing.assert_allclose(
        np.asarray(low, np.float64), np.asarray(ref, np.float64), rtol=2e-2, atol=2e-2
    )
