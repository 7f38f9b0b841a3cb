import jax.numpy as jnp
import numpy as np
import pytest

from spiraljax.distributed import MeshLayout, memory_report, place


def _blocks(x):
    return {s.device.id: (s.index, np.asarray(s.data)) for s in x.addressable_shards}


def test_grid_places_row_and_column_blocks():
    x = jnp.arange(8 * 12, dtype=jnp.float32).reshape(8, 12)
    y = place(x, MeshLayout.grid(2, 4))
    np.testing.assert_array_equal(np.asarray(y), np.asarray(x))
    mesh_devices = y.sharding.mesh.devices
    for (i, j), dev in np.ndenumerate(mesh_devices):
        _, block = _blocks(y)[dev.id]
        expected = np.asarray(x)[i * 4 : (i + 1) * 4, j * 3 : (j + 1) * 3]
        np.testing.assert_array_equal(block, expected)


def test_row_col_and_replicated_layouts():
    x = jnp.arange(16 * 8, dtype=jnp.int32).reshape(16, 8)
    rows = place(x, MeshLayout.row_partition(8))
    assert {b.shape for _, b in _blocks(rows).values()} == {(2, 8)}
    cols = place(x, MeshLayout.col_partition(4))
    assert {b.shape for _, b in _blocks(cols).values()} == {(16, 2)}
    x3 = jnp.zeros((2, 3, 8), jnp.float32)
    assert {b.shape for _, b in _blocks(place(x3, MeshLayout.col_partition(8))).values()} == {
        (2, 3, 1)
    }
    rep = place(x, MeshLayout.replicated())
    assert len(rep.addressable_shards) == 8
    for _, b in _blocks(rep).values():
        np.testing.assert_array_equal(b, np.asarray(x))


def test_layout_errors_name_the_problem():
    with pytest.raises(ValueError, match="does not divide"):
        place(jnp.zeros((9, 4)), MeshLayout.row_partition(8))
    with pytest.raises(ValueError, match="needs 12 devices"):
        MeshLayout.grid(3, 4)
    with pytest.raises(ValueError, match="n=0"):
        MeshLayout.row_partition(0)
    with pytest.raises(ValueError, match="rank 1"):
        place(jnp.zeros(8), MeshLayout.grid(2, 4))


def test_memory_report_shows_per_device_bytes():
    x = place(jnp.ones((1024, 64), jnp.float32), MeshLayout.row_partition(8))
    report = memory_report(lambda a: a * 2.0, x)
    # each device holds 1024/8 rows of 64 float32 as argument and output
    assert report.argument_bytes == 128 * 64 * 4
    assert report.output_bytes == 128 * 64 * 4
    assert report.peak_bytes >= report.argument_bytes
    whole = memory_report(lambda a: a * 2.0, jnp.ones((1024, 64), jnp.float32))
    assert whole.argument_bytes == 8 * report.argument_bytes
