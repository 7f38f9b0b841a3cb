"""The link-prediction split of Ganea et al. 2018 (basic edges in training, held-out
non-basic edges with corrupted negatives), checked from its definition."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from spiraljax.data import (
    EdgeList,
    basic_edge_mask,
    closure_split,
    load_mammal_closure,
    transitive_closure,
)

MAMMALS = load_mammal_closure()
SPLITS = {f: closure_split(MAMMALS, non_basic_fraction=f, seed=3) for f in (0.0, 0.1, 0.25, 0.5)}


def _set(edges):
    return {tuple(e) for e in np.asarray(edges).tolist()}


def _random_dag(rng, n=14, p=0.25):
    pairs = [(f"n{c:02d}", f"n{a:02d}") for c, a in itertools.combinations(range(n), 2)
             if rng.random() < p]  # fmt: skip
    return transitive_closure(EdgeList(*_from(pairs)))


def _from(pairs):
    names = tuple(sorted({x for p in pairs for x in p}))
    ids = {x: i for i, x in enumerate(names)}
    return names, np.array([(ids[c], ids[a]) for c, a in pairs], np.int32).reshape(-1, 2), "t"


def test_basic_edges_are_the_transitive_reduction():
    rng = np.random.default_rng(0)
    for _ in range(5):
        g = _random_dag(rng)
        closed = _set(g.edges)
        nodes = range(g.num_nodes)
        # by definition: (c, a) is basic iff no b with c → b → a
        want = [not any((c, b) in closed and (b, a) in closed for b in nodes) for c, a in closed]
        got = dict(zip(map(tuple, g.edges.tolist()), basic_edge_mask(g.edges, g.num_nodes),
                       strict=True))  # fmt: skip
        assert [got[e] for e in closed] == want


def test_an_unclosed_graph_is_rejected():
    with pytest.raises(ValueError, match="not transitively closed.*node 0 -> node 2"):
        basic_edge_mask(np.array([[0, 1], [1, 2]]), 3)


def test_root_removed_and_counts_partition_the_closure():
    s = SPLITS[0.25]
    assert s.root == "mammal.n.01" and "mammal.n.01" not in s.names
    assert s.num_nodes == MAMMALS.num_nodes - 1
    assert len(s.closure) == MAMMALS.num_edges - (MAMMALS.num_nodes - 1)
    assert s.num_basic + s.num_non_basic == len(s.closure)
    basic = _set(s.closure[basic_edge_mask(s.closure, s.num_nodes)])
    assert len(basic) == s.num_basic
    # the basic edges generate the whole closure again
    regen = transitive_closure(
        EdgeList(s.names, s.closure[basic_edge_mask(s.closure, s.num_nodes)], "")
    )
    names = np.array(s.names)
    assert _set(zip(names[regen.edges[:, 0]], names[regen.edges[:, 1]], strict=True)) == _set(
        zip(names[s.closure[:, 0]], names[s.closure[:, 1]], strict=True)
    )


def test_train_valid_test_are_disjoint_and_sized_as_in_the_paper():
    closure, m = _set(SPLITS[0.0].closure), SPLITS[0.0].num_non_basic
    basic = _set(SPLITS[0.0].train)
    for f, s in SPLITS.items():
        train, valid, test = _set(s.train), _set(s.valid), _set(s.test)
        assert basic <= train and len(train) == len(s.train)
        assert len(train) - len(basic) == int(f * m)
        assert len(valid) == len(test) == int(0.05 * m)
        assert not (train & valid) and not (train & test) and not (valid & test)
        assert (valid | test) <= closure - basic


def test_fractions_are_nested_and_heldout_sets_fixed_per_seed():
    prev = set()
    for s in SPLITS.values():
        assert prev <= _set(s.train)
        prev = _set(s.train)
        np.testing.assert_array_equal(s.test, SPLITS[0.0].test)
        np.testing.assert_array_equal(s.test_negatives, SPLITS[0.0].test_negatives)
        np.testing.assert_array_equal(s.valid_negatives, SPLITS[0.0].valid_negatives)
    again = closure_split(MAMMALS, non_basic_fraction=0.25, seed=3)
    for name in ("train", "valid", "test", "valid_negatives", "test_negatives"):
        np.testing.assert_array_equal(getattr(again, name), getattr(SPLITS[0.25], name))
    other = closure_split(MAMMALS, non_basic_fraction=0.25, seed=4)
    assert _set(other.test) != _set(SPLITS[0.25].test)


def test_negatives_corrupt_one_end_and_are_never_closure_edges():
    s, k = SPLITS[0.1], 5
    closure = _set(s.closure)
    for pos, neg in ((s.valid, s.valid_negatives), (s.test, s.test_negatives)):
        neg = neg.reshape(len(pos), 2 * k, 2)
        assert not (_set(neg.reshape(-1, 2)) & closure)
        assert np.all(neg[..., 0] != neg[..., 1])
        # first k keep the descendant u and replace the ancestor; the next k the reverse
        assert np.all(neg[:, :k, 0] == pos[:, None, 0])
        assert np.all(neg[:, k:, 1] == pos[:, None, 1])
        for row in neg:
            assert len(set(row[:k, 1])) == k and len(set(row[k:, 0])) == k


def test_train_graph_keeps_every_node():
    g = SPLITS[0.1].train_graph()
    assert g.num_nodes == SPLITS[0.1].num_nodes and g.num_edges == len(SPLITS[0.1].train)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(non_basic_fraction=0.95), "exceeds 1"),
        (dict(non_basic_fraction=-0.1), "non_basic_fraction=-0.1"),
        (dict(non_basic_fraction=0.1, test_fraction=2), "test_fraction=2"),
        (dict(non_basic_fraction=0.1, negatives_per_side=0), "negatives_per_side=0"),
        (dict(non_basic_fraction=0.1, negatives_per_side=2000), "fewer than negatives_per_side"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        closure_split(MAMMALS, **kwargs)
