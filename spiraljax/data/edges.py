"""Edge lists: the TSV reader, the transitive closure and the shipped mammal closure
(re-exported by ``spiraljax.data``, whose docstring describes the data)."""

from __future__ import annotations

import dataclasses
import functools
import os
from importlib import resources
from pathlib import Path

import numpy as np

__all__ = ["MAMMAL_CLOSURE", "EdgeList", "load_edges", "load_mammal_closure", "transitive_closure"]

MAMMAL_CLOSURE = "wordnet_mammal_closure.tsv"


@dataclasses.dataclass(frozen=True, eq=False)
class EdgeList:
    """A directed graph given as (child, parent) index pairs.

    Attributes:
      names: node names; node ``i`` is ``names[i]`` (sorted, so ids are reproducible).
      edges: int32 array of shape ``(m, 2)``; row ``(c, p)`` means ``names[c]`` is a child
        (hyponym) of ``names[p]``. Rows in file order.
      source: where the edges came from (a path or ``package:<file>``).
    """

    names: tuple[str, ...]
    edges: np.ndarray
    source: str

    @property
    def num_nodes(self) -> int:
        return len(self.names)

    @property
    def num_edges(self) -> int:
        return int(self.edges.shape[0])

    def index(self, name: str) -> int:
        """Node id of ``name`` (``ValueError`` naming it if absent)."""
        try:
            return self._ids[name]
        except KeyError:
            raise ValueError(f"node {name!r} is not in {self.source}") from None

    @functools.cached_property
    def _ids(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.names)}

    def __repr__(self) -> str:
        return f"EdgeList({self.num_nodes} nodes, {self.num_edges} edges, source={self.source!r})"


def _parse(lines: list[str], source: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    first_seen: dict[tuple[str, str], int] = {}
    for lineno, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if line.startswith("#") or not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 2:
            raise ValueError(
                f"{source}:{lineno}: expected 2 tab-separated columns (child<TAB>parent), "
                f"got {len(fields)}: {line!r}"
            )
        child, parent = (f.strip() for f in fields)
        if not child or not parent:
            raise ValueError(f"{source}:{lineno}: empty node name in {line!r}")
        if child == parent:
            raise ValueError(f"{source}:{lineno}: self-loop {child!r} -> {parent!r}")
        if (child, parent) in first_seen:
            raise ValueError(
                f"{source}:{lineno}: duplicate edge {child!r} -> {parent!r} "
                f"(first on line {first_seen[child, parent]})"
            )
        first_seen[child, parent] = lineno
        pairs.append((child, parent))
    if not pairs:
        raise ValueError(f"{source}: no edges (the file is empty or only has comments)")
    return pairs


def _from_pairs(pairs: list[tuple[str, str]], source: str) -> EdgeList:
    names = tuple(sorted({n for pair in pairs for n in pair}))
    ids = {n: i for i, n in enumerate(names)}
    edges = np.array([(ids[c], ids[p]) for c, p in pairs], dtype=np.int32).reshape(-1, 2)
    return EdgeList(names=names, edges=edges, source=source)


def transitive_closure(graph: EdgeList) -> EdgeList:
    """The transitive closure of ``graph``: an edge (x, a) for every ancestor a of x.

    Edges are sorted by (child name, parent name). A cycle (which would make a node its
    own ancestor) raises ``ValueError`` naming a node on it.
    """
    parents: dict[int, list[int]] = {i: [] for i in range(graph.num_nodes)}
    for c, p in graph.edges.tolist():
        parents[c].append(p)
    memo: dict[int, frozenset[int]] = {}
    state: dict[int, int] = {}  # 1 = on the DFS stack, 2 = done
    for start in parents:
        if start in memo:
            continue
        stack = [(start, iter(parents[start]))]
        state[start] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                stack.pop()
                acc: set[int] = set()
                for p in parents[node]:
                    acc.add(p)
                    acc |= memo[p]
                memo[node] = frozenset(acc)
                state[node] = 2
            elif state.get(nxt) == 1:
                raise ValueError(
                    f"{graph.source}: cycle through {graph.names[nxt]!r}; "
                    "a hierarchy must be acyclic"
                )
            elif state.get(nxt) is None:
                state[nxt] = 1
                stack.append((nxt, iter(parents[nxt])))
    pairs = sorted(
        (graph.names[c], graph.names[a]) for c in range(graph.num_nodes) for a in memo[c]
    )
    return _from_pairs(pairs, graph.source)


def load_edges(path: str | os.PathLike[str], *, closure: bool = False) -> EdgeList:
    """Read a ``child<TAB>parent`` TSV (format in the module docstring).

    Args:
      path: the file.
      closure: if True, return the transitive closure of the edges read (Nickel & Kiela
        train on the closure; the shipped WordNet file already is one).

    Raises:
      FileNotFoundError: the file does not exist. ``ValueError``: a malformed line (wrong
      column count, empty name, self-loop, duplicate edge), undecodable bytes or no edges,
      always naming the file and line.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"data file {str(p)!r} does not exist or is not a file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        line = p.read_bytes()[: e.start].count(b"\n") + 1
        raise ValueError(f"{p}:{line}: not UTF-8 text ({e.reason})") from None
    graph = _from_pairs(_parse(text.split("\n"), str(p)), str(p))  # "\n" only: no \x0c, U+2028
    return transitive_closure(graph) if closure else graph


def load_mammal_closure() -> EdgeList:
    """The shipped WordNet 3.0 mammal closure (1,180 nouns, 6,540 edges)."""
    ref = resources.files("spiraljax.data").joinpath(MAMMAL_CLOSURE)
    source = f"package:spiraljax/data/{MAMMAL_CLOSURE}"
    return _from_pairs(_parse(ref.read_text(encoding="utf-8").split("\n"), source), source)
