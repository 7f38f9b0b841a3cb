"""The child<TAB>parent loader, the shipped WordNet mammal closure and the build script."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from spiraljax.data import EdgeList, load_edges, load_mammal_closure, transitive_closure

REPO = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, text: str, name: str = "g.tsv") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def _pairs(g: EdgeList) -> set[tuple[str, str]]:
    return {(g.names[c], g.names[p]) for c, p in g.edges.tolist()}


# ----------------------------------------------------------------------------- good files


def test_reads_pairs_comments_and_blank_lines(tmp_path):
    p = _write(tmp_path, "# a comment\ncat\tfeline\n\nfeline\tanimal\r\ncat\tanimal\n")
    g = load_edges(p)
    assert g.names == ("animal", "cat", "feline")  # sorted ids
    assert g.edges.dtype == np.int32 and g.edges.shape == (3, 2)
    # Rows in file order.
    assert [(g.names[c], g.names[q]) for c, q in g.edges.tolist()] == [
        ("cat", "feline"),
        ("feline", "animal"),
        ("cat", "animal"),
    ]
    assert g.num_nodes == 3 and g.num_edges == 3
    assert g.index("feline") == 2
    assert str(p) == g.source


def test_unknown_node_name_is_an_error(tmp_path):
    g = load_edges(_write(tmp_path, "a\tb\n"))
    with pytest.raises(ValueError, match="'zebra'"):
        g.index("zebra")


def test_closure_option_adds_all_ancestors(tmp_path):
    # a -> b -> c -> d, and e -> c
    p = _write(tmp_path, "a\tb\nb\tc\nc\td\ne\tc\n")
    g = load_edges(p, closure=True)
    expected = {
        ("a", "b"), ("a", "c"), ("a", "d"),
        ("b", "c"), ("b", "d"),
        ("c", "d"),
        ("e", "c"), ("e", "d"),
    }  # fmt: skip
    assert _pairs(g) == expected
    assert g.num_edges == len(expected)


def test_closure_of_a_cycle_is_an_error(tmp_path):
    p = _write(tmp_path, "a\tb\nb\tc\nc\ta\n")
    with pytest.raises(ValueError, match="cycle"):
        load_edges(p, closure=True)


# ------------------------------------------------------------------------------ bad files


def test_missing_file_names_the_path(tmp_path):
    missing = tmp_path / "nope.tsv"
    with pytest.raises(FileNotFoundError, match="nope.tsv"):
        load_edges(missing)


def test_directory_is_not_a_data_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a file"):
        load_edges(tmp_path)


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ("a\tb\nc\td\te\n", 2, "expected 2 tab-separated columns.*got 3"),
        ("a\tb\nsingle_column\n", 2, "expected 2 .*got 1"),
        ("a b\n", 1, "expected 2 .*got 1"),  # spaces are not separators
        ("# header\na\tb\nx\tx\n", 3, "self-loop 'x'"),
        ("a\tb\n\tb\n", 2, "empty node name"),
        ("a\tb\nc\tb\na\tb\n", 3, "duplicate edge 'a' -> 'b' \\(first on line 1\\)"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, text, line, what):
    p = _write(tmp_path, text)
    with pytest.raises(ValueError, match=f"{p.name}:{line}: {what}"):
        load_edges(p)


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_file_is_an_error(tmp_path, text):
    p = _write(tmp_path, text)
    with pytest.raises(ValueError, match=f"{p.name}: no edges"):
        load_edges(p)


def test_non_utf8_names_line(tmp_path):
    p = tmp_path / "latin1.tsv"
    p.write_bytes(b"a\tb\nc\xe9\td\n")
    with pytest.raises(ValueError, match="latin1.tsv:2: not UTF-8"):
        load_edges(p)


# ------------------------------------------------------------------------ shipped dataset


@pytest.fixture(scope="module")
def mammals() -> EdgeList:
    return load_mammal_closure()


def test_mammal_closure_sizes(mammals):
    # The Nickel & Kiela mammal closure: 1,180 nouns, 6,540 edges.
    assert mammals.num_nodes == 1180
    assert mammals.num_edges == 6540
    assert len(_pairs(mammals)) == 6540  # no duplicates


def test_mammal_closure_structure(mammals):
    root = mammals.index("mammal.n.01")
    child, parent = mammals.edges[:, 0], mammals.edges[:, 1]
    # Every other noun is a mammal: it has mammal.n.01 as an ancestor, and the root has none.
    assert set(child[parent == root].tolist()) == set(range(mammals.num_nodes)) - {root}
    assert root not in set(child.tolist())
    assert np.all(child != parent)
    # Transitively closed: the closure of the closure adds nothing.
    assert _pairs(transitive_closure(mammals)) == _pairs(mammals)
    pairs = _pairs(mammals)
    assert ("whale.n.02", "mammal.n.01") in pairs  # nltk sense numbering
    assert ("dog.n.01", "canine.n.02") in pairs
    assert ("domestic_cat.n.01", "feline.n.01") in pairs  # first lemma of {domestic_cat, house_cat}
    # Instance hypernyms (@i) are followed: the racehorse Secretariat is an instance.
    assert ("secretariat.n.02", "racehorse.n.01") in pairs
    assert ("secretariat.n.02", "equine.n.01") in pairs
    # Nodes dropped by the reference filter are absent.
    assert "tusker.n.01" not in mammals.names
    assert "female_mammal.n.01" not in mammals.names


def test_shipped_license_is_beside_the_data():
    from importlib import resources

    text = resources.files("spiraljax.data").joinpath("LICENSE.wordnet").read_text("utf-8")
    assert "WordNet 3.0 Copyright 2006 by Princeton University" in text


def test_loading_the_shipped_file_by_path_gives_the_same_graph(mammals):
    from importlib import resources

    with resources.as_file(resources.files("spiraljax.data") / "wordnet_mammal_closure.tsv") as p:
        g = load_edges(p)
    assert g.names == mammals.names
    np.testing.assert_array_equal(g.edges, mammals.edges)


@pytest.mark.skipif(
    not Path("/usr/share/wordnet/data.noun").is_file(), reason="wordnet-base not installed"
)
def test_build_script_reproduces_the_shipped_file(tmp_path, mammals):
    spec = importlib.util.spec_from_file_location(
        "build_wordnet", REPO / "scripts/build_wordnet.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "m.tsv"
    assert module.main(["--output", str(out)]) == 0
    assert _pairs(load_edges(out)) == _pairs(mammals)
    unfiltered = tmp_path / "u.tsv"
    module.main(["--output", str(unfiltered), "--no-filter"])
    extra = _pairs(load_edges(unfiltered)) - _pairs(mammals)
    assert extra == {("tusker.n.01", "mammal.n.01"), ("female_mammal.n.01", "mammal.n.01")}
