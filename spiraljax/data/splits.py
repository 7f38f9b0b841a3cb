"""Link-prediction splits of a transitive closure (Ganea, Bécigneul & Hofmann 2018, §5).

The split of *Hyperbolic Entailment Cones* (ICML 2018) on the WordNet noun closure:

* the root (a node that is an ancestor of every other node, ``entity.n.01`` for the nouns,
  ``mammal.n.01`` for the mammals) and its edges are removed;
* **basic** edges — the transitive reduction, the edges that no path of two or more edges
  implies — are always in the training set;
* the other, **non-basic** closure edges are shuffled once (by ``seed``): the first 5 % are
  the test positives, the next 5 % the validation positives, and the training set adds the
  next ``non_basic_fraction`` of them (0 %, 10 %, 25 %, 50 % in the paper; fractions are of
  all non-basic edges, as in the authors' ``split_wordnet_data.py``). For one seed the test
  and validation sets are the same for every fraction and the training sets are nested;
* each test and validation positive (u, v) — u a descendant of v — gets
  ``negatives_per_side`` negatives (u, v') with v' not an ancestor of u, and as many
  (u', v) with u' not a descendant of v (5 + 5 in the paper), drawn uniformly, distinct per
  positive, none of them an edge of the full closure (so a reversed edge (v, u) can be a
  negative: the task is directed).

The authors' code samples each training fraction independently; here they are nested
prefixes of one shuffle, so a larger fraction only adds edges. Everything is a pure
function of the graph, ``non_basic_fraction`` and ``seed`` (NumPy ``default_rng``).

On the shipped WordNet nouns this gives 661,127 closure edges without the root (as in the
paper: 82,114 nodes, 661,127 edges), of which 84,363 are basic and 576,764 non-basic; the
authors' script reports 578,477 non-basic edges for its copy of the closure.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from spiraljax.data.edges import EdgeList

__all__ = ["ClosureSplit", "basic_edge_mask", "closure_split"]

MAX_REDRAWS = 1000


@dataclasses.dataclass(frozen=True, eq=False)
class ClosureSplit:
    """A link-prediction split of a closure (module docstring). Edge arrays are int32
    ``(m, 2)`` rows (child, ancestor) indexing ``names``.

    Attributes:
      names: node names (the root removed), sorted; ``num_nodes = len(names)``.
      train: basic edges, then the sampled non-basic ones.
      valid, test: held-out non-basic positives.
      valid_negatives, test_negatives: ``2 · negatives_per_side`` negatives per positive,
        in positive order: for positive i, rows ``i·2k … i·2k + k − 1`` corrupt the ancestor,
        the next k the descendant.
      closure: every edge of the closure without the root (positives of all splits).
      num_basic, num_non_basic: sizes of the two kinds of closure edges.
      non_basic_fraction, seed: the arguments.
      root: the removed root's name, or None.
      source: where the graph came from.
    """

    names: tuple[str, ...]
    train: np.ndarray
    valid: np.ndarray
    valid_negatives: np.ndarray
    test: np.ndarray
    test_negatives: np.ndarray
    closure: np.ndarray
    num_basic: int
    num_non_basic: int
    non_basic_fraction: float
    seed: int
    root: str | None
    source: str

    @property
    def num_nodes(self) -> int:
        return len(self.names)

    def train_graph(self) -> EdgeList:
        """The training edges as an ``EdgeList`` over all nodes (for ``embedding.train``)."""
        return EdgeList(
            names=self.names,
            edges=self.train,
            source=f"{self.source}: train, {self.non_basic_fraction:.0%} non-basic",
        )

    def __repr__(self) -> str:
        return (
            f"ClosureSplit({self.num_nodes} nodes; train {len(self.train)} = {self.num_basic} "
            f"basic + {len(self.train) - self.num_basic} non-basic "
            f"({self.non_basic_fraction:.0%}); valid {len(self.valid)}, test {len(self.test)} "
            f"(+{len(self.test_negatives)} negatives); seed {self.seed})"
        )


def _codes(edges: np.ndarray, n: int) -> np.ndarray:
    return edges[:, 0].astype(np.int64) * n + edges[:, 1]


def _two_step_codes(edges: np.ndarray, n: int) -> np.ndarray:
    """Codes c·n + a₂ of every two-edge path c → a₁ → a₂ (edges sorted by child)."""
    starts = np.searchsorted(edges[:, 0], np.arange(n + 1))
    counts = starts[1:] - starts[:-1]
    mid = edges[:, 1]
    reps = counts[mid]
    offsets = np.repeat(starts[mid] - np.cumsum(np.r_[0, reps[:-1]]), reps) + np.arange(reps.sum())
    return np.repeat(edges[:, 0].astype(np.int64), reps) * n + edges[offsets, 1]


def basic_edge_mask(edges: np.ndarray, num_nodes: int) -> np.ndarray:
    """(m,) bool: True for the edges of the transitive reduction of a closure.

    An edge (c, a) of a transitively closed DAG is non-basic iff some path c → b → a of two
    edges exists. ``edges`` must be closed under transitivity (``ValueError`` otherwise,
    naming one missing edge).
    """
    edges = np.asarray(edges, np.int64).reshape(-1, 2)
    order = np.lexsort((edges[:, 1], edges[:, 0]))
    sorted_edges = edges[order]
    two = np.unique(_two_step_codes(sorted_edges, num_nodes))
    codes = _codes(edges, num_nodes)
    missing = np.setdiff1d(two, codes, assume_unique=False)
    if missing.size:
        c, a = divmod(int(missing[0]), num_nodes)
        raise ValueError(
            f"edges are not transitively closed: {missing.size} two-step paths have no edge, "
            f"e.g. node {c} -> node {a}; pass transitive_closure(graph)"
        )
    return ~np.isin(codes, two)


def _roots(edges: np.ndarray, n: int) -> np.ndarray:
    """Nodes that are ancestors of every other node."""
    return np.flatnonzero(np.bincount(edges[:, 1], minlength=n) == n - 1)


def _drop_nodes(graph: EdgeList, drop: np.ndarray) -> tuple[tuple[str, ...], np.ndarray]:
    keep = np.ones(graph.num_nodes, bool)
    keep[drop] = False
    new_id = np.cumsum(keep) - 1
    e = graph.edges
    e = e[keep[e[:, 0]] & keep[e[:, 1]]]
    names = tuple(nm for nm, k in zip(graph.names, keep, strict=True) if k)
    return names, new_id[e].astype(np.int64)


def _duplicates_in_rows(cand: np.ndarray) -> np.ndarray:
    """Mask of entries equal to an earlier entry of their row."""
    order = np.argsort(cand, axis=1, kind="stable")
    s = np.take_along_axis(cand, order, axis=1)
    dup_sorted = np.zeros_like(cand, bool)
    dup_sorted[:, 1:] = s[:, 1:] == s[:, :-1]
    dup = np.zeros_like(cand, bool)
    np.put_along_axis(dup, order, dup_sorted, axis=1)
    return dup


def _corrupt(rng, fixed, side, k, closure_codes, n, pool, names):
    """k distinct nodes per row of ``fixed`` forming no closure edge with it.

    ``side = 1``: (fixed, new) pairs — new ancestors; ``side = 0``: (new, fixed).
    """
    small = pool[fixed] < k
    if small.any():
        node = names[int(fixed[small][0])]
        raise ValueError(
            f"node {node!r} has only {int(pool[fixed][small][0])} possible negatives, fewer "
            f"than negatives_per_side={k}"
        )
    m = len(fixed)
    cand = rng.integers(0, n, (m, k))
    bad = np.ones((m, k), bool)
    for _ in range(MAX_REDRAWS):
        if side == 1:
            codes = fixed[:, None].astype(np.int64) * n + cand
        else:
            codes = cand.astype(np.int64) * n + fixed[:, None]
        pos = np.searchsorted(closure_codes, codes)
        is_edge = closure_codes[np.minimum(pos, len(closure_codes) - 1)] == codes
        bad = is_edge | (cand == fixed[:, None]) | _duplicates_in_rows(cand)
        if not bad.any():
            break
        cand[bad] = rng.integers(0, n, int(bad.sum()))
    else:  # pragma: no cover - needs a pool of ≥ k that rejection still misses 1000 times
        raise RuntimeError("negative sampling did not converge")
    pairs = np.empty((m, k, 2), np.int64)
    pairs[..., 0] = cand if side == 0 else fixed[:, None]
    pairs[..., 1] = fixed[:, None] if side == 0 else cand
    return pairs


def _negatives(rng, positives, k, closure_codes, n, n_anc, n_desc, names):
    if len(positives) == 0:
        return np.zeros((0, 2), np.int32)
    # (u, v'): v' not an ancestor of u (nor u); (u', v): u' not a descendant of v (nor v).
    new_parent = _corrupt(rng, positives[:, 0], 1, k, closure_codes, n, n - 1 - n_anc, names)
    new_child = _corrupt(rng, positives[:, 1], 0, k, closure_codes, n, n - 1 - n_desc, names)
    return np.concatenate([new_parent, new_child], axis=1).reshape(-1, 2).astype(np.int32)


def closure_split(
    graph: EdgeList,
    *,
    non_basic_fraction: float,
    seed: int = 0,
    valid_fraction: float = 0.05,
    test_fraction: float = 0.05,
    negatives_per_side: int = 5,
    drop_root: bool = True,
) -> ClosureSplit:
    """Split a transitive closure for link prediction (Ganea et al. 2018; module docstring).

    Args:
      graph: a transitive closure, e.g. ``load_noun_closure()`` or ``load_mammal_closure()``.
      non_basic_fraction: fraction of the non-basic edges added to the training set
        (0.0, 0.1, 0.25, 0.5 in the paper); at most 1 − valid_fraction − test_fraction.
      seed: seed of the shuffle and of the negatives.
      valid_fraction, test_fraction: fractions of the non-basic edges held out (5 % each).
      negatives_per_side: negatives per positive and corrupted end (5 in the paper).
      drop_root: remove the node(s) that are ancestors of every other node, with their edges.

    Returns:
      A ``ClosureSplit``.

    Raises:
      ValueError: fractions outside [0, 1] or summing over 1, a graph that is not
      transitively closed, a node with fewer than ``negatives_per_side`` possible negatives.
    """
    for name, f in (
        ("non_basic_fraction", non_basic_fraction),
        ("valid_fraction", valid_fraction),
        ("test_fraction", test_fraction),
    ):
        if not (isinstance(f, int | float) and 0 <= f <= 1):
            raise ValueError(f"{name}={f!r} must be a number in [0, 1]")
    if non_basic_fraction + valid_fraction + test_fraction > 1 + 1e-12:
        raise ValueError(
            f"non_basic_fraction={non_basic_fraction} + valid_fraction={valid_fraction} + "
            f"test_fraction={test_fraction} exceeds 1"
        )
    k = negatives_per_side
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"negatives_per_side={k!r} must be an integer ≥ 1")

    e = graph.edges.astype(np.int64)
    roots = _roots(e, graph.num_nodes) if drop_root else np.zeros(0, np.int64)
    root = graph.names[int(roots[0])] if roots.size else None
    names, e = _drop_nodes(graph, roots)
    n = len(names)
    e = e[np.lexsort((e[:, 1], e[:, 0]))]  # sorted by (child, ancestor): a fixed order
    basic = basic_edge_mask(e, n)
    basic_edges, non_basic = e[basic], e[~basic]
    m = len(non_basic)

    rng = np.random.default_rng(seed)
    perm = rng.permutation(m)
    n_test, n_valid = int(test_fraction * m), int(valid_fraction * m)
    n_train = int(non_basic_fraction * m)
    test = non_basic[perm[:n_test]]
    valid = non_basic[perm[n_test : n_test + n_valid]]
    extra = non_basic[perm[n_test + n_valid : n_test + n_valid + n_train]]

    closure_codes = np.sort(_codes(e, n))
    n_anc = np.bincount(e[:, 0], minlength=n)
    n_desc = np.bincount(e[:, 1], minlength=n)
    # Negatives from their own streams: they do not depend on the training fraction.
    valid_rng, test_rng = (np.random.default_rng([seed, i]) for i in (1, 2))
    valid_neg = _negatives(valid_rng, valid, k, closure_codes, n, n_anc, n_desc, names)
    test_neg = _negatives(test_rng, test, k, closure_codes, n, n_anc, n_desc, names)
    return ClosureSplit(
        names=names,
        train=np.concatenate([basic_edges, extra]).astype(np.int32),
        valid=valid.astype(np.int32),
        valid_negatives=valid_neg,
        test=test.astype(np.int32),
        test_negatives=test_neg,
        closure=e.astype(np.int32),
        num_basic=int(basic.sum()),
        num_non_basic=m,
        non_basic_fraction=float(non_basic_fraction),
        seed=int(seed),
        root=root,
        source=graph.source,
    )
