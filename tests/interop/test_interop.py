"""DLPack exchange with PyTorch: round trips, zero-copy by pointer identity, refusals."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spiraljax.interop import from_torch, to_torch

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.anchors

DTYPES = [
    torch.bool,
    torch.int8,
    torch.uint8,
    torch.int16,
    torch.int32,
    torch.int64,
    torch.float16,
    torch.bfloat16,
    torch.float32,
    torch.float64,
    torch.complex64,
    torch.complex128,
]
SHAPES = [(), (0,), (5,), (3, 4), (2, 3, 4, 5)]


def _random_tensor(shape, dtype):
    g = torch.Generator().manual_seed(0)
    if dtype == torch.bool:
        return torch.rand(shape, generator=g) > 0.5
    if dtype.is_complex:
        return torch.randn(shape, dtype=dtype, generator=g)
    if dtype.is_floating_point:
        return (torch.randn(shape, generator=g) * 100).to(dtype)
    info = torch.iinfo(dtype)
    return torch.randint(max(info.min, -1000), min(info.max, 1000), shape, generator=g).to(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_round_trip_preserves_values_dtype_shape_and_memory(dtype, shape):
    t = _random_tensor(shape, dtype)
    x = from_torch(t)
    assert x.shape == tuple(t.shape)
    assert str(x.dtype) == str(t.dtype).removeprefix("torch.")
    back = to_torch(x)
    assert back.dtype == t.dtype and back.shape == t.shape
    assert torch.equal(back, t)
    np.testing.assert_array_equal(
        np.asarray(jnp.asarray(x, jnp.float32) if dtype == torch.bfloat16 else x),
        t.float().numpy() if dtype == torch.bfloat16 else t.numpy(),
    )
    if t.numel() > 0:
        assert x.unsafe_buffer_pointer() == t.data_ptr(), "from_torch copied"
        assert back.data_ptr() == t.data_ptr(), "to_torch copied"


def test_zero_copy_is_visible_through_shared_memory():
    t = torch.zeros(8, dtype=torch.float32)
    x = from_torch(t)
    t[3] = 7.0
    assert float(x[3]) == 7.0


def test_transposed_tensor_is_shared_without_copy():
    t = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    x = from_torch(t.T, copy=False)
    np.testing.assert_array_equal(np.asarray(x), t.T.numpy())
    assert x.unsafe_buffer_pointer() == t.data_ptr()


def test_strided_view_is_copied_or_refused():
    t = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    view = t[:, 1:]
    x = from_torch(view)
    np.testing.assert_array_equal(np.asarray(x), view.numpy())
    with pytest.raises(ValueError, match="strides"):
        from_torch(view, copy=False)


def test_copy_true_gives_independent_memory():
    t = torch.ones(4, dtype=torch.float32)
    x = from_torch(t, copy=True)
    t[0] = 5.0
    assert float(x[0]) == 1.0
    y = jnp.arange(4.0, dtype=jnp.float32)
    u = to_torch(y, copy=True)
    assert u.data_ptr() != y.unsafe_buffer_pointer()
    np.testing.assert_array_equal(u.numpy(), np.arange(4.0, dtype=np.float32))


def test_jax_results_export_without_copy_and_jit_consumes_imports():
    x = jax.jit(lambda a: a * 2)(jnp.arange(6, dtype=jnp.float32).reshape(2, 3))
    t = to_torch(x)
    assert t.data_ptr() == x.unsafe_buffer_pointer()
    y = jax.jit(lambda a: a.sum())(from_torch(t))
    assert float(y) == 30.0


def test_refusals_name_the_problem():
    with pytest.raises(ValueError, match="requires grad"):
        from_torch(torch.ones(3, requires_grad=True))
    with pytest.raises(ValueError, match="torch.Tensor"):
        from_torch(np.ones(3))
    with pytest.raises(ValueError, match="jax.Array"):
        to_torch([1, 2, 3])
    with pytest.raises(ValueError, match="copy="):
        from_torch(torch.ones(3), copy="yes")


def test_wide_dtypes_refused_when_x64_is_off():
    t = torch.ones(3, dtype=torch.int64)
    with jax.enable_x64(False):
        with pytest.raises(ValueError, match="int64"):
            from_torch(t)


def _cuda_pair():
    if not torch.cuda.is_available():
        return None
    try:
        return jax.devices("gpu")[0]
    except RuntimeError:
        return None


@pytest.mark.skipif(_cuda_pair() is None, reason="needs a CUDA GPU visible to torch and JAX")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.int32, torch.uint8])
def test_cuda_round_trip_is_zero_copy(dtype):
    t = _random_tensor((64, 33), dtype).cuda()
    x = from_torch(t, copy=False)
    assert x.devices() == {_cuda_pair()}
    assert x.unsafe_buffer_pointer() == t.data_ptr()
    back = to_torch(x)
    assert back.is_cuda and back.data_ptr() == t.data_ptr()
    assert torch.equal(back, t)
    y = jax.jit(lambda a: a + 1)(jnp.zeros((8, 8), jnp.float32, device=_cuda_pair()))
    u = to_torch(y)
    assert u.is_cuda and u.data_ptr() == y.unsafe_buffer_pointer()
    assert torch.equal(u, torch.ones((8, 8), device="cuda"))
