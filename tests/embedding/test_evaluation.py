"""Reconstruction mean rank and MAP: hand-computed values and an sklearn reference."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from spiraljax.data import EdgeList
from spiraljax.embedding import neighbour_table, ranking_metrics, reconstruction_metrics
from spiraljax.embedding.evaluation import block_rows


def _graph(pairs, names=None) -> EdgeList:
    names = tuple(sorted({n for p in pairs for n in p})) if names is None else names
    ids = {n: i for i, n in enumerate(names)}
    edges = np.array([(ids[c], ids[p]) for c, p in pairs], np.int32)
    return EdgeList(names=names, edges=edges, source="test")


# a -> b -> c, a -> c, d -> c;  ids a=0, b=1, c=2, d=3.
HAND = _graph([("a", "b"), ("a", "c"), ("b", "c"), ("d", "c")])
HAND_D = np.array(
    [
        [0.0, 1.0, 3.0, 2.0],
        [1.0, 0.0, 2.0, 2.0],  # from b: non-neighbour d ties with neighbour c
        [3.0, 2.0, 0.0, 0.5],
        [2.0, 2.0, 0.5, 0.0],
    ]
)


def test_hand_computed_example():
    # u=a: N={b (1), c (3)}, non-neighbours {d (2)}: ranks 1, 2; precisions 1, 2/3.
    # u=b: N={c (2)}, non-neighbours {a (1), d (2, tie)}: rank 3; precision 1/3.
    # u=d: N={c (0.5)}: rank 1; precision 1.   (c has no out-edge: not evaluated.)
    m = ranking_metrics(HAND_D, HAND)
    assert m.num_pairs == 4 and m.num_nodes == 3
    assert m.mean_rank == pytest.approx((1 + 2 + 3 + 1) / 4, abs=1e-12)
    assert m.map == pytest.approx(((1 + 2 / 3) / 2 + 1 / 3 + 1) / 3, abs=1e-12)  # 13/18


def test_hand_example_is_invariant_to_block_size():
    for block in (1, 2, 3, 7):
        m = ranking_metrics(HAND_D, HAND, block=block)
        assert m.mean_rank == pytest.approx(1.75) and m.map == pytest.approx(13 / 18)


def test_perfect_and_reversed_orders():
    # Chain closure n0 -> n1 -> n2 -> n3: every ancestor nearer than every descendant.
    pairs = [(f"n{i}", f"n{j}") for i in range(4) for j in range(i + 1, 4)]
    g = _graph(pairs)
    i, j = np.meshgrid(np.arange(4.0), np.arange(4.0), indexing="ij")
    perfect = np.where(j > i, j - i, 10 + i - j)
    m = ranking_metrics(perfect, g)
    assert m.mean_rank == 1.0 and m.map == 1.0
    # Plain |i - j|: for n1, the descendant n0 (1) ties with n2 and precedes n3 (2).
    m_abs = ranking_metrics(np.abs(i - j), g)
    # ranks: n0: 1,1,1; n1: n2 -> 2, n3 -> 2; n2: n3 -> 1 + #{n0 (2), n1 (1)} ≤ 1 = 2.
    assert m_abs.mean_rank == pytest.approx((3 + 4 + 2) / 6)
    # AP: n0: 1; n1: (1/2 + 2/3)/2; n2: 1/2.
    assert m_abs.map == pytest.approx((1 + (1 / 2 + 2 / 3) / 2 + 1 / 2) / 3)
    # n1's only neighbour n0 (at 5) comes after the non-neighbour n2 (at 1): rank 2, AP 1/2.
    g2 = _graph([("n1", "n0")], names=("n0", "n1", "n2"))
    d = np.array([[0, 5, 1], [5, 0, 1], [1, 1, 0]], float)
    m2 = ranking_metrics(d, g2)
    assert m2.mean_rank == 2.0 and m2.map == pytest.approx(1 / 2)


def _poincare_dist_np(x):
    x2 = (x * x).sum(-1)
    d2 = ((x[:, None] - x[None]) ** 2).sum(-1)
    return np.arccosh(1 + 2 * d2 / ((1 - x2)[:, None] * (1 - x2)[None]))


def _reference(d, g):
    """Direct transcription of the definition, with sklearn for AP."""
    adj: dict[int, set[int]] = {}
    for c, p in g.edges.tolist():
        adj.setdefault(c, set()).add(p)
    ranks, aps = [], []
    for u, nbrs in adj.items():
        row = d[u].copy()
        row[u] = 1e12
        labels = np.zeros(len(row))
        labels[list(nbrs)] = 1
        non = (labels == 0) & (np.arange(len(row)) != u)
        ranks += [1 + np.sum(row[non] <= row[v]) for v in nbrs]
        aps.append(average_precision_score(labels, -row))
    return np.mean(ranks), np.mean(aps)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_sklearn_reference_on_random_embeddings(dtype, seed):
    rng = np.random.default_rng(seed)
    n = 40
    # A random forest closure: parent of i is a random earlier node; edges to all ancestors.
    parent = [-1] + [int(rng.integers(0, i)) for i in range(1, n)]
    pairs = []
    for i in range(1, n):
        a = parent[i]
        while a >= 0:
            pairs.append((f"v{i:02d}", f"v{a:02d}"))
            a = parent[a]
    g = _graph(pairs)
    x = rng.normal(size=(g.num_nodes, 3))
    x = 0.95 * x / np.linalg.norm(x, axis=1, keepdims=True) * rng.uniform(0, 1, (g.num_nodes, 1))
    x = x.astype(dtype)
    want_rank, want_map = _reference(_poincare_dist_np(x.astype(np.float64)), g)
    m = reconstruction_metrics(x, g, block=16)
    assert m.mean_rank == pytest.approx(want_rank, rel=1e-12)
    assert m.map == pytest.approx(want_map, rel=1e-9)
    # Curvature K: distances scale by 1/√c for points scaled by 1/√c -> same ranking.
    m2 = reconstruction_metrics(x / 2, g, curvature=-4.0)
    assert m2.mean_rank == pytest.approx(want_rank) and m2.map == pytest.approx(want_map)


def test_neighbour_table():
    sources, table = neighbour_table(HAND)
    np.testing.assert_array_equal(sources, [0, 1, 3])
    np.testing.assert_array_equal(table, [[1, 2], [2, -1], [2, -1]])


def test_bad_shapes():
    with pytest.raises(ValueError, match=r"distances.shape=\(3, 4\)"):
        ranking_metrics(np.zeros((3, 4)), HAND)
    with pytest.raises(ValueError, match=r"embedding.shape=\(5, 2\)"):
        reconstruction_metrics(np.zeros((5, 2), np.float32), HAND)


def test_points_outside_the_ball_are_refused():
    from spiraljax.geometry import lorentz

    n = HAND.num_nodes
    x = np.full((n, 2), 0.1)
    x[1] = [0.8, 0.7]  # squared norm 1.13: outside the unit ball
    with pytest.raises(ValueError, match="squared norm 1.13"):
        reconstruction_metrics(x, HAND)
    with pytest.raises(ValueError, match="1/c = 4"):  # K = −0.25: radius 2, this row fits
        reconstruction_metrics(np.full((n, 2), 1.5), HAND, curvature=-0.25)
    reconstruction_metrics(x, HAND, curvature=-0.25)
    x[2, 0] = np.nan
    with pytest.raises(ValueError, match="squared norm nan"):
        reconstruction_metrics(x, HAND, curvature=-0.25)
    # hyperboloid points as ball points: refused, with the hint; fine with manifold=
    h = np.asarray(lorentz.project(np.concatenate([np.zeros((n, 1)), np.full((n, 2), 0.1)], 1)))
    with pytest.raises(ValueError, match="manifold='lorentz'"):
        reconstruction_metrics(h, HAND)
    reconstruction_metrics(h, HAND, manifold="lorentz")


def test_nearest_neighbours_of_embedded_nodes_with_rank_k():
    from spiraljax.kernels.neighbors import nearest_neighbors

    x = np.array([[0.0, 0.0], [0.1, 0.0], [0.0, 0.5], [-0.9, 0.0], [0.2, 0.0]], np.float32)

    def nearest_neighbours(x, q, k):
        q = np.asarray(q)
        d, i = nearest_neighbors(x[q], x, k, exclude_self=True, query_ids=q, distance="direct")
        return np.asarray(i), np.asarray(d)

    ids, dists = nearest_neighbours(x, [0, 3], k=3)
    d = _poincare_dist_np(x.astype(np.float64))
    np.testing.assert_array_equal(ids[0], [1, 4, 2])  # self excluded
    np.testing.assert_array_equal(ids[1], [0, 1, 4])
    np.testing.assert_allclose(dists, d[[0, 3]][np.arange(2)[:, None], ids], rtol=1e-5)
    with pytest.raises(ValueError, match="k=5"):
        nearest_neighbours(x, [0], k=5)


def _random_dag(rng, n):
    """A random DAG closure (several parents per node allowed), as an EdgeList."""
    parents = {i: set(rng.choice(i, size=min(i, int(rng.integers(1, 3))), replace=False))
               for i in range(1, n)}  # fmt: skip
    anc: dict[int, set[int]] = {0: set()}
    for i in range(1, n):
        anc[i] = set().union(*({int(p)} | anc[int(p)] for p in parents[i]))
    return _graph([(f"v{i:03d}", f"v{a:03d}") for i in range(1, n) for a in sorted(anc[i])])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_blocked_evaluation_matches_sklearn_on_random_dags(seed):
    rng = np.random.default_rng(100 + seed)
    g = _random_dag(rng, int(rng.integers(20, 70)))
    x = rng.normal(size=(g.num_nodes, 2))
    x = 0.99 * x / np.linalg.norm(x, axis=1, keepdims=True) * rng.uniform(0, 1, (g.num_nodes, 1))
    want_rank, want_map = _reference(_poincare_dist_np(x), g)
    # Tiny budgets force one-row and few-row blocks; the result must not depend on them.
    for budget in (1, 48 * g.num_nodes * 3, 2**30):
        m = reconstruction_metrics(x, g, memory_budget=budget)
        assert m.mean_rank == pytest.approx(want_rank, rel=1e-12)
        assert m.map == pytest.approx(want_map, rel=1e-9)
        assert m.num_pairs == g.num_edges


def test_block_rows_from_memory_budget():
    assert block_rows(82_115) == 272  # the WordNet nouns at the 1 GiB default
    assert block_rows(82_115, memory_budget=1) == 1
    assert block_rows(10) == 4096
    with pytest.raises(ValueError, match="memory_budget"):
        block_rows(10, memory_budget=0)


def test_sampled_estimate_is_exact_per_sampled_row():
    rng = np.random.default_rng(7)
    g = _random_dag(rng, 60)
    x = 0.9 * rng.uniform(-0.7, 0.7, size=(g.num_nodes, 2))
    full = reconstruction_metrics(x, g)
    assert reconstruction_metrics(x, g, sample=10**6) == full  # ≥ all rows: exact
    est = reconstruction_metrics(x, g, sample=15, seed=3)
    assert est.num_nodes == 15 and est.num_pairs < full.num_pairs
    # The estimate equals the exact metrics of the sub-graph of the sampled rows' edges.
    sources, _ = neighbour_table(g)
    pick = np.sort(np.random.default_rng(3).choice(sources.size, 15, replace=False))
    sub = EdgeList(g.names, g.edges[np.isin(g.edges[:, 0], sources[pick])], "sub")
    exact_sub = reconstruction_metrics(x, sub)
    assert est.map == pytest.approx(exact_sub.map, rel=1e-12)
    assert est.mean_rank == pytest.approx(exact_sub.mean_rank, rel=1e-12)
    with pytest.raises(ValueError, match="sample"):
        reconstruction_metrics(x, g, sample=0)
