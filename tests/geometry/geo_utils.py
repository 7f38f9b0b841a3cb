"""Shared helpers for the geometry tests: random points/tangents and tolerances."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

#: Curvatures used by most tests (K ≤ 0).
CURVATURES = (-1.0, -0.3, -4.5)
DTYPES = (jnp.float32, jnp.float64)


def rtol(dtype) -> float:
    return 1e-10 if jnp.dtype(dtype) == jnp.float64 else 2e-4


def atol(dtype) -> float:
    return 1e-10 if jnp.dtype(dtype) == jnp.float64 else 2e-5


def ball_points(rng, shape, k, dtype=jnp.float64, max_frac=0.85, min_frac=0.0):
    """Points uniform in direction with radius fraction in [min_frac, max_frac) of 1/√c."""
    c = -k
    d = rng.normal(size=shape)
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    r = rng.uniform(min_frac, max_frac, size=(*shape[:-1], 1))
    return jnp.asarray(d * r / np.sqrt(c), dtype=dtype)


def tangents(rng, shape, dtype=jnp.float64, scale=1.0):
    return jnp.asarray(rng.normal(size=shape) * scale, dtype=dtype)


def assert_close(a, b, dtype, factor=1.0, err_msg=""):
    np.testing.assert_allclose(
        np.asarray(a, dtype=np.float64),
        np.asarray(b, dtype=np.float64),
        rtol=rtol(dtype) * factor,
        atol=atol(dtype) * factor,
        err_msg=err_msg,
    )


def assert_finite(tree, what=""):
    import jax

    for leaf in jax.tree.leaves(tree):
        arr = np.asarray(leaf, dtype=np.float64)
        assert np.all(np.isfinite(arr)), f"non-finite values in {what}: {arr}"
