"""Atomic output directories, the disk picture and its projection."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spiraljax.data import EdgeList
from spiraljax.embedding import output

GRAPH = EdgeList(
    names=("a", "b", "c", "d"),
    edges=np.array([[1, 0], [2, 0], [2, 1], [3, 0]], np.int32),  # b->a, c->b->a, d->a
    source="test",
)
X = np.array([[0.0, 0.01], [0.3, 0.2], [0.6, 0.5], [-0.7, 0.1]], np.float32)


def _siblings(path):
    return sorted(p.name for p in path.parent.iterdir() if p != path)


def _write(path, **kw):
    return output.write_run(
        path, embedding=X, graph=GRAPH, metrics={"map": 0.5}, losses=np.ones(3), **kw
    )


def test_write_run_creates_complete_directory(tmp_path):
    out = tmp_path / "run"
    assert _write(out) == out
    assert sorted(p.name for p in out.iterdir()) == [
        "embedding.npz",
        "metrics.json",
        "poincare_disk.png",
    ]
    assert json.loads((out / "metrics.json").read_text()) == {"map": 0.5}
    with np.load(out / "embedding.npz") as z:
        np.testing.assert_array_equal(z["embedding"], X)
        assert z["names"].tolist() == list(GRAPH.names)
        np.testing.assert_array_equal(z["edges"], GRAPH.edges)
        assert float(z["curvature"]) == -1.0
    assert (out / "poincare_disk.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert _siblings(out) == []  # no temporary directory left beside it


@pytest.mark.parametrize("error", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_failure_mid_write_leaves_nothing(tmp_path, monkeypatch, error):
    def failing_plot(embedding, graph, path, **kw):
        path.write_bytes(b"half a png")  # something is already on disk in the temp dir
        raise error

    monkeypatch.setattr(output, "plot_poincare_disk", failing_plot)
    out = tmp_path / "run"
    with pytest.raises(type(error)):
        _write(out)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_failure_keeps_the_previous_run_intact(tmp_path, monkeypatch):
    out = tmp_path / "run"
    _write(out, plot=False)
    before = (out / "embedding.npz").read_bytes()

    def failing_plot(*a, **kw):
        raise RuntimeError("boom")

    monkeypatch.setattr(output, "plot_poincare_disk", failing_plot)
    with pytest.raises(RuntimeError, match="boom"):
        _write(out)
    assert (out / "embedding.npz").read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == ["embedding.npz", "metrics.json"]
    assert _siblings(out) == []


def test_previous_run_is_replaced(tmp_path):
    out = tmp_path / "run"
    _write(out)
    output.write_run(out, embedding=X, graph=GRAPH, metrics={"map": 0.9}, plot=False)
    assert json.loads((out / "metrics.json").read_text()) == {"map": 0.9}
    assert not (out / "poincare_disk.png").exists()  # replaced, not merged
    assert _siblings(out) == []


def test_refuses_to_replace_foreign_directory_or_file(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(FileExistsError, match="without metrics.json"):
        _write(foreign)
    assert (foreign / "thesis.tex").read_text() == "precious"
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(FileExistsError, match="not a directory"):
        _write(a_file)
    empty = tmp_path / "empty"
    empty.mkdir()
    _write(empty, plot=False)
    assert (empty / "metrics.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "file", "mine"]


def test_hierarchy_levels():
    descendants, direct = output.hierarchy_levels(GRAPH)
    np.testing.assert_array_equal(descendants, [3, 1, 0, 0])
    # c->a is implied by c->b->a, the rest are direct.
    np.testing.assert_array_equal(direct, [True, False, True, True])


def test_disk_coordinates():
    # 2-d: the points themselves, scaled to the unit disk.
    np.testing.assert_allclose(output.disk_coordinates(X), X)
    np.testing.assert_allclose(output.disk_coordinates(X / 2, curvature=-4.0), X, rtol=1e-6)
    # Higher dimensions: radii (depth) exact, and a planar embedding is recovered up to rotation.
    rng = np.random.default_rng(0)
    y = rng.normal(size=(30, 5))
    y *= rng.uniform(0.05, 0.95, (30, 1)) / np.linalg.norm(y, axis=1, keepdims=True)
    xy = output.disk_coordinates(y)
    np.testing.assert_allclose(np.linalg.norm(xy, axis=1), np.linalg.norm(y, axis=1))
    flat = np.concatenate([X.astype(np.float64), np.zeros((4, 3))], axis=1)
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    xy_flat = output.disk_coordinates(flat @ q)
    np.testing.assert_allclose(
        np.linalg.norm(xy_flat[:, None] - xy_flat[None], axis=-1),
        np.linalg.norm(X[:, None] - X[None], axis=-1),
        atol=1e-6,
    )
