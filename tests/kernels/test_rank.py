"""Rank-K semantics on the XLA path (and "auto", which is XLA on CPU) vs a numpy reference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from rankk_reference import random_input, ref_indices

from spiraljax.kernels import bottomk, midk, topk, topk2d

OPS = {"top": topk, "bottom": bottomk, "mid": midk}
DTYPES = [jnp.float32, jnp.bfloat16, jnp.float16, jnp.float64, jnp.int32, jnp.uint32]


def _bytes(a):
    return np.ascontiguousarray(a).view(np.uint8)


def _check(x, k, kind, axis=-1, impl="xla"):
    v, i = OPS[kind](jnp.asarray(x), k, axis=axis, implementation=impl)
    xm = np.moveaxis(np.asarray(x), axis, -1)
    want = ref_indices(xm, k, kind)
    got = np.moveaxis(np.asarray(i), axis, -1)
    assert i.dtype == jnp.int32 and v.dtype == x.dtype
    np.testing.assert_array_equal(got, want)
    gathered = np.take_along_axis(xm, want, axis=-1)
    np.testing.assert_array_equal(_bytes(np.moveaxis(np.asarray(v), axis, -1)), _bytes(gathered))


@given(
    seed=st.integers(0, 2**32 - 1),
    dtype=st.sampled_from(DTYPES),
    kind=st.sampled_from(["top", "bottom", "mid"]),
    shape=st.sampled_from([(7,), (3, 17), (2, 3, 33), (1, 64), (4, 5)]),
    ties=st.booleans(),
    data=st.data(),
)
def test_matches_reference(seed, dtype, kind, shape, ties, data):
    rng = np.random.default_rng(seed)
    x = random_input(rng, shape, dtype, ties)
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    k = data.draw(st.integers(0, shape[axis]))
    _check(x, k, kind, axis)


@pytest.mark.parametrize("kind", ["top", "bottom", "mid"])
def test_auto_is_exact_on_cpu(kind):
    x = random_input(np.random.default_rng(0), (5, 300), np.float32, ties=True)
    _check(x, 37, kind, impl="auto")


def test_total_order_examples():
    x = jnp.array([1.0, jnp.nan, -0.0, 0.0, 2.0, 2.0, -jnp.nan, jnp.inf, -jnp.inf], jnp.float32)
    v, i = topk(x, 9)
    np.testing.assert_array_equal(np.asarray(i), [1, 7, 4, 5, 0, 3, 2, 8, 6])
    v, i = bottomk(x, 4)
    np.testing.assert_array_equal(np.asarray(i), [6, 8, 2, 3])
    assert np.signbit(np.asarray(v)[2]) and not np.signbit(np.asarray(v)[3])
    # MidK: n = 6, k = 3 → ranks 1..3 (odd surplus leans low)
    y = jnp.array([50, 10, 40, 20, 60, 30], jnp.int32)
    np.testing.assert_array_equal(np.asarray(midk(y, 3)[0]), [20, 30, 40])
    np.testing.assert_array_equal(np.asarray(midk(y, 4)[0]), [20, 30, 40, 50])


def test_integer_extremes_not_negated():
    x = jnp.array([0, -(2**31), 2**31 - 1, -1, -(2**31)], jnp.int32)
    np.testing.assert_array_equal(np.asarray(bottomk(x, 3)[1]), [1, 4, 3])
    np.testing.assert_array_equal(np.asarray(topk(x, 2)[1]), [2, 0])
    u = jnp.array([0, 2**32 - 1, 2**31, 1], jnp.uint32)
    np.testing.assert_array_equal(np.asarray(topk(u, 4)[1]), [1, 2, 3, 0])


_topk_jit = jax.jit(lambda x: topk(x, 5), backend=None)


def test_jit_vmap_and_axis():
    x = random_input(np.random.default_rng(1), (4, 3, 40), np.float32)
    v, i = _topk_jit(jnp.asarray(x))
    vv, iv = jax.vmap(jax.vmap(lambda r: topk(r, 5)))(jnp.asarray(x))
    np.testing.assert_array_equal(np.asarray(i), np.asarray(iv))
    np.testing.assert_array_equal(np.asarray(v).view(np.uint8), np.asarray(vv).view(np.uint8))
    _, ia = topk(jnp.asarray(np.moveaxis(x, -1, 0)), 5, axis=0)
    np.testing.assert_array_equal(np.moveaxis(np.asarray(ia), 0, -1), np.asarray(i))


@pytest.mark.parametrize("kind", ["top", "bottom", "mid"])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_gradient_is_gather(kind, dtype):
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.standard_normal((3, 20)), dtype)
    w = jnp.asarray(rng.standard_normal((3, 6)), dtype)
    g = jax.jit(jax.grad(lambda x: jnp.sum(OPS[kind](x, 6)[0] * w)))(x)
    idx = ref_indices(np.asarray(x), 6, kind)
    want = np.zeros((3, 20))
    np.put_along_axis(want, idx, np.asarray(w), axis=-1)
    np.testing.assert_allclose(np.asarray(g), want, rtol=0, atol=0)
    # forward-mode too, batched
    t = jnp.ones_like(x)
    _, (tv, _) = jax.vmap(lambda a, b: jax.jvp(lambda z: OPS[kind](z, 6), (a,), (b,)))(x, t)
    np.testing.assert_array_equal(np.asarray(tv), np.ones((3, 6)))


def test_integer_input_has_no_tangent():
    x = jnp.arange(10, dtype=jnp.int32)
    out = jax.jvp(lambda z: topk(z, 3), (x,), (np.zeros(10, jax.dtypes.float0),))
    np.testing.assert_array_equal(np.asarray(out[0][0]), [9, 8, 7])


def test_errors_name_the_argument():
    x = jnp.zeros((3, 4), jnp.float32)
    with pytest.raises(ValueError, match="k=5 exceeds axis size 4"):
        topk(x, 5)
    with pytest.raises(ValueError, match="k=2.5"):
        topk(x, 2.5)
    with pytest.raises(ValueError, match="k=-1"):
        bottomk(x, -1)
    with pytest.raises(ValueError, match="k=True"):
        midk(x, True)
    with pytest.raises(ValueError, match="dtype=int8"):
        topk(jnp.zeros(4, jnp.int8), 1)
    with pytest.raises(ValueError, match="dtype=complex64"):
        topk(jnp.zeros(4, jnp.complex64), 1)
    with pytest.raises(ValueError, match="axis=2"):
        topk(x, 1, axis=2)
    with pytest.raises(ValueError, match="implementation='cuda'"):
        topk(x, 1, implementation="cuda")
    with pytest.raises(ValueError, match="dtype=float64"):
        topk(jnp.zeros(4, jnp.float64), 1, implementation="pallas")
    with pytest.raises(ValueError, match="device='tpu9'"):
        topk2d(np.zeros((2, 3), np.float32), 1, device="tpu9")
    with pytest.raises(ValueError, match="2-D"):
        topk2d(np.zeros(3, np.float32), 1)


def test_k_zero_and_k_n():
    x = random_input(np.random.default_rng(3), (2, 9), np.float32, ties=True)
    v, i = topk(jnp.asarray(x), 0)
    assert v.shape == (2, 0) and i.shape == (2, 0)
    for kind in OPS:
        _check(x, 9, kind)


def test_topk2d_numpy_input():
    x = np.random.default_rng(4).standard_normal((3, 50)).astype(np.float32)
    _, i = topk2d(x, 4, device="cpu")
    np.testing.assert_array_equal(np.asarray(i), ref_indices(x, 4, "top"))


def test_auto_under_scan():
    # lax.platform_dependent inside scan must not lower the GPU branch on CPU (jax#28594).
    xs = jnp.asarray(random_input(np.random.default_rng(5), (3, 2, 30), np.float32))
    _, out = jax.lax.scan(lambda c, x: (c, topk(x, 4)[1]), 0, xs)
    np.testing.assert_array_equal(np.asarray(out), ref_indices(np.asarray(xs), 4, "top"))
