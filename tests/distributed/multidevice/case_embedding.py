"""Data-parallel Poincaré-embedding training (``EmbedConfig.devices``) on 8 CPU devices."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spiraljax.data import EdgeList, load_edges, transitive_closure
from spiraljax.distributed import MeshLayout
from spiraljax.embedding import EmbedConfig, train
from spiraljax.embedding import trainer as trainer_module


@pytest.fixture(scope="module")
def tree_tsv(tmp_path_factory):
    # a small 3-level tree, closed transitively by the loader
    edges = [(f"c{i}", f"b{i % 3}") for i in range(12)] + [(f"b{j}", "root") for j in range(3)]
    path = tmp_path_factory.mktemp("tree") / "tree.tsv"
    path.write_text("".join(f"{c}\t{p}\n" for c, p in edges), encoding="utf-8")
    return path


def _tree_graph(path):
    return load_edges(path, closure=True)


def _random_tree(nodes: int, seed: int = 0) -> EdgeList:
    """Closure of a random recursive tree: node i's parent is uniform among 0..i−1."""
    rng = np.random.default_rng(seed)
    parents = [int(rng.integers(0, i)) for i in range(1, nodes)]
    names = tuple(f"n{i:04d}" for i in range(nodes))
    edges = np.array([(i, p) for i, p in enumerate(parents, start=1)], np.int32)
    return transitive_closure(EdgeList(names, edges, "random-tree"))


# 201 nodes: no mesh size divides it, so the padding rows of the row blocks are exercised.
WIDE = _random_tree(201)


@pytest.mark.parametrize(
    ("devices", "batch_size", "negatives"),
    # batch rows b·(2 + k) < n: one device updates the gathered rows; ≥ n: the whole table
    [(2, 8, 4), (8, 8, 4), (4, 64, 6)],
)
def test_data_parallel_training_equals_one_device(devices, batch_size, negatives):
    graph = WIDE
    base = EmbedConfig(
        dim=3, epochs=3, burn_in=1, batch_size=batch_size, negatives=negatives, lr=0.5, seed=1
    )
    dense = trainer_module._dense_update(base, graph.num_nodes)
    assert dense == (batch_size * (2 + negatives) >= graph.num_nodes)
    one = train(graph, base, progress=False)
    many = train(graph, EmbedConfig(**{**base.__dict__, "devices": devices}), progress=False)
    assert many.embedding.shape == one.embedding.shape == (201, 3)
    assert many.embedding.dtype == np.float64
    # Same pairs, negatives and RSGD step; only the gradient's summation order differs.
    np.testing.assert_allclose(many.embedding, one.embedding, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(many.losses, one.losses, rtol=1e-12)
    assert np.abs(one.embedding).max() > 0.05  # trained away from the ±1e-3 start


def _epoch_program(graph, devices, batch_size=16, negatives=5, dim=4):
    tables = trainer_module._tables(graph)
    nb = -(-graph.num_edges // batch_size)
    replicated = MeshLayout.replicated(devices)
    optimizer, epoch = trainer_module._epoch_function(
        batch_size, negatives, -1.0, "expmap", 0.3, 0, nb, replicated.mesh
    )
    rows = -(-graph.num_nodes // devices) * devices
    table = jax.device_put(jnp.full((rows, dim), 0.01, jnp.float32), replicated)
    state = jax.device_put(optimizer.init(table), replicated)
    args = (table, state, jax.random.key(0), tables, jnp.asarray(False))
    return epoch, args


def test_one_reduce_scatter_and_one_all_gather_per_step():
    epoch, args = _epoch_program(WIDE, 8)
    hlo = epoch.lower(*args).compile().as_text()

    def count(op):
        return len(re.findall(rf"= \S+ {op}(-start)?\(", hlo))

    # Per step (inside the while loop): the gradient's reduce-scatter into (n/8, d) blocks
    # and the all-gather of the updated blocks. The only all-reduce is the epoch loss.
    assert count("reduce-scatter") == 1 and count("all-gather") == 1
    assert re.search(r"f32\[26,4\]\S* reduce-scatter\(", hlo)  # 208 padded rows / 8
    assert count("all-reduce") == 1 and re.search(r"f32\[\] all-reduce\(", hlo)
    assert count("all-to-all") == count("collective-permute") == 0


def test_table_is_replicated_and_the_epoch_keeps_it_so():
    epoch, args = _epoch_program(WIDE, 4)
    table, _, loss = epoch(*args)
    assert table.shape == (204, 4) and table.sharding.is_fully_replicated
    assert len(table.sharding.device_set) == 4
    shards = [np.asarray(s.data) for s in table.addressable_shards]
    assert all(s.shape == (204, 4) for s in shards)
    for s in shards[1:]:
        np.testing.assert_array_equal(s, shards[0])
    # Padding rows (ids ≥ n are never sampled) keep their initial value exactly.
    np.testing.assert_array_equal(shards[0][201:], np.full((3, 4), 0.01, np.float32))
    assert np.isfinite(float(loss))


def test_devices_must_divide_the_batch_and_exist(tree_tsv):
    with pytest.raises(ValueError, match="divisible"):
        EmbedConfig(batch_size=10, devices=4)
    with pytest.raises(ValueError, match="exceeds"):
        train(
            _tree_graph(tree_tsv), EmbedConfig(batch_size=16, devices=16, epochs=1), progress=False
        )


def test_cli_embed_with_devices(tree_tsv, tmp_path):
    from spiraljax.cli import main

    out = tmp_path / "run"
    argv = ["embed", "--data", str(tree_tsv), "--closure", "--devices", "2", "--epochs", "2"]
    argv += ["--burn-in", "1", "--batch-size", "4", "--dim", "2", "--no-plot", "--quiet"]
    assert main([*argv, "--output", str(out)]) == 0
    assert (out / "embedding.npz").is_file() and (out / "metrics.json").is_file()
    with np.load(out / "embedding.npz") as saved:
        embedding = saved["embedding"]
    assert embedding.shape == (_tree_graph(tree_tsv).num_nodes, 2)  # no padding rows
    assert np.all(np.linalg.norm(embedding, axis=1) < 1)
