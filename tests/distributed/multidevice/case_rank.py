import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from spiraljax import distributed, kernels

KINDS = ("topk", "bottomk", "midk")


def _data(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    if np.issubdtype(dtype, np.integer):
        return rng.integers(-5, 5, size=shape).astype(dtype)  # heavy ties
    x = rng.integers(-4, 4, size=shape).astype(dtype)  # ties
    flat = x.reshape(-1)
    picks = rng.choice(flat.size, size=min(12, flat.size), replace=False)
    flat[picks[:3]] = np.nan
    flat[picks[3:5]] = np.inf
    flat[picks[5:7]] = -np.inf
    flat[picks[7:9]] = -0.0
    return flat.reshape(shape)


def _mesh_1d():
    return Mesh(np.asarray(jax.devices(), dtype=object), ("x",))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.int32])
@pytest.mark.parametrize("k", [0, 5, 40, 64])
def test_sharded_last_axis_equals_unsharded(kind, dtype, k):
    host = _data((3, 64), dtype, seed=k)
    x = jax.device_put(host, NamedSharding(_mesh_1d(), PartitionSpec(None, "x")))
    values, indices = getattr(distributed, kind)(x, k)
    ref_values, ref_indices = getattr(kernels, kind)(jnp.asarray(host), k)
    np.testing.assert_array_equal(np.asarray(indices), np.asarray(ref_indices))
    np.testing.assert_array_equal(np.asarray(values), np.asarray(ref_values))


@pytest.mark.parametrize("kind", KINDS)
def test_sharded_leading_axis_on_a_2d_mesh(kind):
    mesh = Mesh(np.asarray(jax.devices(), dtype=object).reshape(4, 2), ("a", "b"))
    host = _data((32, 6), np.float32, seed=3)
    x = jax.device_put(host, NamedSharding(mesh, PartitionSpec(("a", "b"), None)))
    values, indices = getattr(distributed, kind)(x, 7, axis=0)
    ref_values, ref_indices = getattr(kernels, kind)(jnp.asarray(host), 7, axis=0)
    np.testing.assert_array_equal(np.asarray(indices), np.asarray(ref_indices))
    np.testing.assert_array_equal(np.asarray(values), np.asarray(ref_values))


def test_unsharded_axis_falls_through_and_errors_are_clear():
    host = _data((8, 10), np.float32, seed=1)
    x = jax.device_put(host, NamedSharding(_mesh_1d(), PartitionSpec("x", None)))
    v, i = distributed.topk(x, 3)  # axis -1 is not sharded
    rv, ri = kernels.topk(jnp.asarray(host), 3)
    np.testing.assert_array_equal(np.asarray(i), np.asarray(ri))
    np.testing.assert_array_equal(np.asarray(v), np.asarray(rv))
    with pytest.raises(ValueError, match="k=11"):
        distributed.topk(x, 11)
    with pytest.raises(ValueError, match="axis=2"):
        distributed.topk(x, 1, axis=2)
