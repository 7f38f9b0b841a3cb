import numpy as np
import pytest

from spiraljax.data import EdgeList, load_edges
from spiraljax.embedding import EmbedConfig, train


@pytest.fixture(scope="module")
def tree_tsv(tmp_path_factory):
    # a small 3-level tree, closed transitively by the loader
    edges = [(f"c{i}", f"b{i % 3}") for i in range(12)] + [(f"b{j}", "root") for j in range(3)]
    path = tmp_path_factory.mktemp("tree") / "tree.tsv"
    path.write_text("".join(f"{c}\t{p}\n" for c, p in edges), encoding="utf-8")
    return path


def _tree_graph(path):
    return load_edges(path, closure=True)


@pytest.mark.parametrize("devices", [2, 4])
def test_sharded_training_matches_one_device(devices, tree_tsv):
    graph = _tree_graph(tree_tsv)
    base = EmbedConfig(dim=3, epochs=6, burn_in=2, batch_size=8, negatives=5, lr=0.5, seed=1)
    one = train(graph, base, progress=False)
    many = train(
        graph,
        EmbedConfig(**{**base.__dict__, "devices": devices}),
        progress=False,
    )
    assert many.embedding.shape == one.embedding.shape
    np.testing.assert_allclose(many.embedding, one.embedding, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(many.losses, one.losses, rtol=1e-9)


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
    assert isinstance(_tree_graph(tree_tsv), EdgeList)
