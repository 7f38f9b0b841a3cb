"""The WordNet 3.0 noun hierarchy shipped with spiraljax (82,115 nouns, 743,241 closure edges).

Shipped: ``wordnet_noun_reduction.tsv.xz`` — the transitive reduction of the WordNet 3.0
hypernym (``@``) and instance-hypernym (``@i``) relation under ``entity.n.01`` (84,366
``child<TAB>parent`` lines, LZMA-compressed, 0.5 MB), built by
``scripts/build_wordnet.py --root entity.n.01 --reduction``. The license is
``LICENSE.wordnet`` beside it. Loading needs no network and no WordNet installation.

``load_noun_closure`` computes the transitive closure of the reduction (the training set
of Nickel & Kiela 2017; equal edge for edge to ``scripts/build_wordnet.py --root
entity.n.01``) and caches it as an ``.npz`` file, so later loads read it back (< 1 s).

Cache location, first that is set: the ``cache_dir`` argument, the environment variable
``SPIRALJAX_CACHE_DIR``, ``$XDG_CACHE_HOME/spiraljax``, ``~/.cache/spiraljax``. The cache
file name carries a digest of the shipped file, and the file a SHA-256 of its own
contents: a stale, truncated or corrupt cache is rebuilt (with a warning), never used. The
cache is written beside its final name, fsynced and renamed over it (atomic), so
concurrent loaders never see a half-written file. An unwritable cache directory only
costs the rebuild (a warning says so).
"""

from __future__ import annotations

import hashlib
import lzma
import os
import tempfile
import warnings
import zipfile
from importlib import resources
from pathlib import Path

import numpy as np

from spiraljax.data.edges import EdgeList, _from_pairs, _parse

__all__ = [
    "NOUN_REDUCTION",
    "closure_under",
    "load_noun_closure",
    "load_noun_reduction",
    "noun_cache_dir",
]

NOUN_REDUCTION = "wordnet_noun_reduction.tsv.xz"
_CACHE_VERSION = 1  # bump when the cache layout changes


def _shipped_bytes() -> bytes:
    return resources.files("spiraljax.data").joinpath(NOUN_REDUCTION).read_bytes()


def load_noun_reduction() -> EdgeList:
    """The shipped transitive reduction of the WordNet 3.0 noun hierarchy (84,366 edges).

    Edges in file order (sorted by child name, then parent name); node ids index the
    sorted names, as for every ``EdgeList``.
    """
    source = f"package:spiraljax/data/{NOUN_REDUCTION}"
    text = lzma.decompress(_shipped_bytes()).decode("utf-8")
    return _from_pairs(_parse(text.split("\n"), source), source)


def closure_edges(edges: np.ndarray, num_nodes: int) -> np.ndarray:
    """(m, 2) int32 edges of the transitive closure of the DAG ``edges`` (child, parent).

    Rows sorted by (child id, parent id). Ancestors are accumulated in a topological order
    (parents before children), so each node's ancestor set is built once from its parents'.
    A cycle raises ``ValueError`` naming the number of nodes on or below it.
    """
    edges = np.asarray(edges, np.int64).reshape(-1, 2)
    child, parent = edges[:, 0], edges[:, 1]
    parents: list[list[int]] = [[] for _ in range(num_nodes)]
    children: list[list[int]] = [[] for _ in range(num_nodes)]
    for c, p in zip(child.tolist(), parent.tolist(), strict=True):
        parents[c].append(p)
        children[p].append(c)
    pending = [len(ps) for ps in parents]
    ready = [i for i in range(num_nodes) if pending[i] == 0]
    ancestors: list[set[int] | None] = [None] * num_nodes
    done = 0
    while ready:
        node = ready.pop()
        acc: set[int] = set()
        for p in parents[node]:
            acc.add(p)
            acc |= ancestors[p]  # type: ignore[operator]
        ancestors[node] = acc
        done += 1
        for c in children[node]:
            pending[c] -= 1
            if pending[c] == 0:
                ready.append(c)
    if done != num_nodes:
        raise ValueError(
            f"edges contain a cycle: {num_nodes - done} nodes lie on or below one; "
            "a hierarchy must be acyclic"
        )
    counts = np.fromiter((len(a) for a in ancestors), np.int64, num_nodes)  # type: ignore[arg-type]
    flat = np.fromiter(
        (p for a in ancestors for p in sorted(a)),  # type: ignore[union-attr]
        np.int32,
        int(counts.sum()),
    )
    kids = np.repeat(np.arange(num_nodes, dtype=np.int32), counts)
    return np.stack([kids, flat], axis=1)


def closure_under(graph: EdgeList, root: str) -> EdgeList:
    """The closure ``graph`` restricted to ``root`` and its descendants.

    For a transitive closure (such as ``load_noun_closure()``) this is the closure of the
    sub-hierarchy under ``root``: the edges whose both ends are ``root`` or below it.
    Node ids are renumbered (sorted names of the kept nodes).
    """
    r = graph.index(root)
    members = np.zeros(graph.num_nodes, bool)
    members[r] = True
    members[graph.edges[graph.edges[:, 1] == r, 0]] = True
    keep = members[graph.edges[:, 0]] & members[graph.edges[:, 1]]
    if not keep.any():
        raise ValueError(f"root={root!r} has no descendants in {graph.source}")
    names = graph.names
    pairs = [(names[c], names[p]) for c, p in graph.edges[keep].tolist()]
    return _from_pairs(pairs, f"{graph.source} under {root}")


def noun_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where ``load_noun_closure`` caches the closure (module docstring for the order)."""
    if cache_dir is not None:
        return Path(cache_dir)
    if env := os.environ.get("SPIRALJAX_CACHE_DIR"):
        return Path(env)
    if xdg := os.environ.get("XDG_CACHE_HOME"):
        return Path(xdg) / "spiraljax"
    return Path.home() / ".cache" / "spiraljax"


def _digest(names_blob: np.ndarray, edges: np.ndarray) -> np.ndarray:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(names_blob).tobytes())
    h.update(np.ascontiguousarray(edges, np.int32).tobytes())
    return np.frombuffer(h.digest(), np.uint8)


def _read_cache(path: Path, source: str) -> EdgeList:
    """The cached closure; ``ValueError`` (or the reader's own error) if it is not intact."""
    with np.load(path, allow_pickle=False) as f:
        if set(f.files) != {"names", "edges", "digest"}:
            raise ValueError(f"unexpected arrays {sorted(f.files)}")
        names_blob, edges, digest = f["names"], f["edges"], f["digest"]
    if names_blob.dtype != np.uint8 or edges.dtype != np.int32 or edges.ndim != 2:
        raise ValueError("unexpected dtypes or shapes")
    if not np.array_equal(digest, _digest(names_blob, edges)):
        raise ValueError("checksum mismatch")
    names = tuple(names_blob.tobytes().decode("utf-8").split("\n"))
    if edges.shape[1] != 2 or (edges.size and (edges.min() < 0 or edges.max() >= len(names))):
        raise ValueError("edge ids out of range")
    return EdgeList(names=names, edges=edges, source=source)


def _write_cache(path: Path, graph: EdgeList) -> None:
    """Atomic write: a temporary file in the same directory, fsynced, renamed over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    names_blob = np.frombuffer("\n".join(graph.names).encode("utf-8"), np.uint8)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(
                f, names=names_blob, edges=graph.edges, digest=_digest(names_blob, graph.edges)
            )
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def load_noun_closure(
    *, cache: bool = True, cache_dir: str | os.PathLike[str] | None = None
) -> EdgeList:
    """WordNet 3.0 noun closure: 82,115 nouns, 743,241 (child, ancestor) edges.

    Equal, edge for edge and in the same order (sorted by child, then ancestor name), to
    ``load_edges`` of the TSV written by ``scripts/build_wordnet.py --root entity.n.01``.
    Computed from the shipped transitive reduction (a few seconds) and cached.

    Args:
      cache: read and write the cache (module docstring); False always recomputes.
      cache_dir: cache directory (default: ``SPIRALJAX_CACHE_DIR``,
        ``$XDG_CACHE_HOME/spiraljax`` or ``~/.cache/spiraljax``).
    """
    shipped = _shipped_bytes()
    key = hashlib.sha256(shipped).hexdigest()[:16]
    source = f"package:spiraljax/data/{NOUN_REDUCTION} (transitive closure)"
    path = noun_cache_dir(cache_dir) / f"wordnet_noun_closure-v{_CACHE_VERSION}-{key}.npz"
    if cache and path.exists():
        try:
            return _read_cache(path, source)
        except (ValueError, OSError, KeyError, EOFError, zipfile.BadZipFile) as e:
            warnings.warn(
                f"noun closure cache {str(path)!r} is unreadable ({e}); rebuilding it",
                RuntimeWarning,
                stacklevel=2,
            )
    reduction = load_noun_reduction()
    graph = EdgeList(
        names=reduction.names,
        edges=closure_edges(reduction.edges, reduction.num_nodes),
        source=source,
    )
    if cache:
        try:
            _write_cache(path, graph)
        except OSError as e:
            warnings.warn(
                f"could not write the noun closure cache {str(path)!r} ({e}); "
                "set SPIRALJAX_CACHE_DIR to a writable directory to avoid the rebuild",
                RuntimeWarning,
                stacklevel=2,
            )
    return graph
