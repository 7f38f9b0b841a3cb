"""The shipped WordNet noun hierarchy: counts, identity with the build script, the cache."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from spiraljax.data import (
    EdgeList,
    closure_under,
    load_edges,
    load_mammal_closure,
    load_noun_closure,
    transitive_closure,
)
from spiraljax.data import nouns as nouns_module
from spiraljax.data.nouns import closure_edges, load_noun_reduction, noun_cache_dir

# sha256 of the "child\tparent\n" lines, sorted, of `scripts/build_wordnet.py --root entity.n.01`
# (WordNet 3.0, wordnet-base 1:3.0-37), computed from that script's TSV.
BUILD_SCRIPT_SHA256 = "dc881ae7e7b373311a6b131fd5593acf4f6c1a0d8a5dff62c11b9325145a9b7c"


@pytest.fixture(scope="module")
def nouns(tmp_path_factory) -> EdgeList:
    return load_noun_closure(cache_dir=tmp_path_factory.mktemp("cache"))


def _edge_hash(graph: EdgeList) -> str:
    lines = sorted(f"{graph.names[c]}\t{graph.names[p]}\n" for c, p in graph.edges.tolist())
    return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()


def test_counts_and_hash(nouns):
    assert nouns.num_nodes == 82_115
    assert nouns.num_edges == 743_241
    assert _edge_hash(nouns) == BUILD_SCRIPT_SHA256
    assert nouns.edges.dtype == np.int32
    # Sorted by (child, parent) like the build script's file; every noun reaches the root.
    order = np.lexsort((nouns.edges[:, 1], nouns.edges[:, 0]))
    np.testing.assert_array_equal(order, np.arange(nouns.num_edges))
    root = nouns.index("entity.n.01")
    has_root = np.zeros(nouns.num_nodes, bool)
    has_root[nouns.edges[nouns.edges[:, 1] == root, 0]] = True
    assert has_root.sum() == nouns.num_nodes - 1 and not has_root[root]


def test_round_trip_with_tsv_reader(nouns, tmp_path):
    path = tmp_path / "nouns.tsv"
    lines = (f"{nouns.names[c]}\t{nouns.names[p]}\n" for c, p in nouns.edges.tolist())
    path.write_text("# header\n" + "".join(lines), encoding="utf-8")
    back = load_edges(path)
    assert back.names == nouns.names
    np.testing.assert_array_equal(back.edges, nouns.edges)


def test_reduction_is_minimal_and_generates_the_closure(nouns):
    red = load_noun_reduction()
    assert red.names == nouns.names
    assert red.num_edges == 84_366
    closure = {tuple(e) for e in nouns.edges.tolist()}
    assert {tuple(e) for e in red.edges.tolist()} <= closure
    # No reduction edge (x, p) is implied by another parent q of x with p an ancestor of q.
    parents: dict[int, list[int]] = {}
    for c, p in red.edges.tolist():
        parents.setdefault(c, []).append(p)
    for ps in list(parents.values())[::97]:
        for p in ps:
            assert not any((q, p) in closure for q in ps if q != p)


def test_cache_is_reused(tmp_path):
    first = load_noun_closure(cache_dir=tmp_path)
    (cached,) = tmp_path.glob("wordnet_noun_closure-*.npz")
    stamp = cached.stat().st_mtime_ns
    second = load_noun_closure(cache_dir=tmp_path)
    assert cached.stat().st_mtime_ns == stamp
    assert second.names == first.names
    np.testing.assert_array_equal(second.edges, first.edges)
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind


@pytest.mark.parametrize("damage", ["garbage", "truncated", "tampered"])
def test_corrupt_cache_is_rebuilt(tmp_path, nouns, damage):
    load_noun_closure(cache_dir=tmp_path)
    (cached,) = tmp_path.glob("wordnet_noun_closure-*.npz")
    if damage == "garbage":
        cached.write_bytes(b"not an npz file")
    elif damage == "truncated":
        cached.write_bytes(cached.read_bytes()[:100_000])
    else:  # a valid npz whose edges were changed: only the checksum can tell
        with np.load(cached) as f:
            arrays = dict(f)
        arrays["edges"] = arrays["edges"].copy()
        arrays["edges"][0, 1] = arrays["edges"][1, 1]
        np.savez(cached, **arrays)
    with pytest.warns(RuntimeWarning, match="rebuilding"):
        graph = load_noun_closure(cache_dir=tmp_path)
    assert graph.names == nouns.names
    np.testing.assert_array_equal(graph.edges, nouns.edges)
    # The rebuilt cache is intact again: the next load reads it without a warning.
    np.testing.assert_array_equal(nouns_module._read_cache(cached, "x").edges, nouns.edges)


def test_cache_dir_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("SPIRALJAX_CACHE_DIR", str(tmp_path / "env"))
    assert noun_cache_dir() == tmp_path / "env"
    assert noun_cache_dir(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("SPIRALJAX_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert noun_cache_dir() == tmp_path / "xdg" / "spiraljax"


def test_unwritable_cache_warns_and_still_loads(tmp_path, nouns):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache directory should be")
    with pytest.warns(RuntimeWarning, match="could not write"):
        graph = load_noun_closure(cache_dir=blocker / "sub")
    assert graph.num_edges == nouns.num_edges


@pytest.mark.parametrize("seed", range(5))
def test_closure_edges_matches_transitive_closure(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 40))
    rank = rng.permutation(n)  # a random topological order: edges go to lower rank
    pairs = {(int(a), int(b)) for a, b in rng.integers(0, n, (3 * n, 2)) if rank[a] > rank[b]}
    if not pairs:
        pairs = {(int(np.argmax(rank)), int(np.argmin(rank)))}
    names = tuple(f"n{i:03d}" for i in range(n))
    graph = EdgeList(names=names, edges=np.array(sorted(pairs), np.int32), source="random")
    reference = transitive_closure(graph)
    ours = closure_edges(graph.edges, n)
    got = sorted((names[c], names[p]) for c, p in ours.tolist())
    want = [(reference.names[c], reference.names[p]) for c, p in reference.edges.tolist()]
    assert got == want


def test_closure_edges_rejects_a_cycle():
    with pytest.raises(ValueError, match="cycle"):
        closure_edges(np.array([[0, 1], [1, 2], [2, 0]]), 3)


def test_closure_under_mammal_is_the_unfiltered_mammal_closure(nouns):
    mammals = closure_under(nouns, "mammal.n.01")
    shipped = load_mammal_closure()  # the reference filter drops 2 children's edges
    got = {(mammals.names[c], mammals.names[p]) for c, p in mammals.edges.tolist()}
    want = {(shipped.names[c], shipped.names[p]) for c, p in shipped.edges.tolist()}
    assert want <= got
    assert {c for c, _ in got - want} <= {"tusker.n.01", "female_mammal.n.01"}
    with pytest.raises(ValueError, match="no descendants"):
        closure_under(nouns, "whale.n.02".replace("whale.n.02", nouns.names[nouns.edges[0, 0]]))
