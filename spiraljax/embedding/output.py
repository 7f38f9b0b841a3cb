"""Writing an embedding run to disk: atomically, with a Poincaré-disk picture.

An output directory holds ``embedding.npz`` (points, names, edges, losses),
``metrics.json`` (reconstruction metrics, settings, speed, versions, date) and
``poincare_disk.png``. It is written into a hidden temporary directory beside the target
and renamed into place only when complete, so an interrupted run never leaves a
half-written output directory (at worst a ``.<name>.tmp-*`` directory, removed on any
Python-level error or KeyboardInterrupt).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import platform
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from spiraljax.data import EdgeList

__all__ = [
    "atomic_directory",
    "disk_coordinates",
    "environment_info",
    "hierarchy_levels",
    "plot_poincare_disk",
    "write_run",
]

_MARKER = "metrics.json"  # a directory holding this file is one of ours and may be replaced


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a fresh temporary directory that becomes ``path`` when the block succeeds.

    The temporary directory is created beside ``path`` (same file system), so the final
    step is a rename. An existing ``path`` is replaced only if it is empty or holds a
    previous run (a ``metrics.json``); the old one is renamed aside first and deleted after
    the new one is in place. On an exception (KeyboardInterrupt included) the temporary
    directory is removed and ``path`` is left as it was.

    Raises:
      FileExistsError: ``path`` exists and is not a directory, or is a non-empty directory
        that is not a previous run (nothing is overwritten).
    """
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise FileExistsError(f"output={str(target)!r} exists and is not a directory")
    if target.is_dir() and any(target.iterdir()) and not (target / _MARKER).is_file():
        raise FileExistsError(
            f"output={str(target)!r} is a non-empty directory without {_MARKER}; "
            "refusing to replace it"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        _fsync_tree(tmp)  # contents durable before the rename publishes them
        if target.exists():
            old = target.parent / f".{target.name}.old-{uuid.uuid4().hex}"
            os.rename(target, old)
            try:
                os.rename(tmp, target)
            except BaseException:
                os.rename(old, target)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, target)
        _fsync_path(target.parent)  # the rename itself survives a power loss
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    """fsync every file below ``root``, then the directories (after a power loss a renamed
    directory whose files were never flushed can hold empty files)."""
    for dirpath, _, files in os.walk(root):
        for name in files:
            _fsync_path(Path(dirpath) / name)
        _fsync_path(Path(dirpath))


def environment_info() -> dict[str, str]:
    """Versions, device and date for result files."""
    import jax

    import spiraljax

    device = jax.devices()[0]
    return {
        "spiraljax": spiraljax.__version__,
        "jax": jax.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "device": f"{device.platform}: {getattr(device, 'device_kind', '')}".strip(),
        "cpu_count": str(os.cpu_count()),
        "machine": platform.machine(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def hierarchy_levels(graph: EdgeList) -> tuple[np.ndarray, np.ndarray]:
    """Descendant counts and direct parents of every node.

    Returns:
      ``(descendants, direct)``: ``descendants`` (n,) = number of edges pointing to each
      node (for a closure: its number of descendants); ``direct`` (m,) bool marks the edges
      (c, p) of the transitive reduction — no other parent a of c has (a, p) as an edge.
    """
    n = graph.num_nodes
    descendants = np.bincount(graph.edges[:, 1], minlength=n)
    parents: list[set[int]] = [set() for _ in range(n)]
    for c, p in graph.edges.tolist():
        parents[c].add(p)
    direct = np.array(
        [not any(p in parents[a] for a in parents[c] if a != p) for c, p in graph.edges.tolist()]
    )
    return descendants, direct


def disk_coordinates(embedding: np.ndarray, *, curvature: float = -1.0) -> np.ndarray:
    """2-d picture coordinates in the unit disk.

    d = 2: the points scaled by √c (the unit disk). d > 2: each point keeps its norm (so
    its distance to the origin, i.e. its depth in the hierarchy, is exact) and gets the
    direction of its first two principal components of logmap₀ (PCA of the tangent
    vectors at the origin, which are ∝ the points themselves).
    """
    x = np.asarray(embedding, np.float64) * np.sqrt(-curvature)
    if x.shape[1] == 1:
        return np.concatenate([x, np.zeros_like(x)], axis=1)
    if x.shape[1] == 2:
        return x
    radius = np.linalg.norm(x, axis=1, keepdims=True)
    tangent = x / np.maximum(radius, 1e-300) * np.arctanh(np.minimum(radius, 1 - 1e-15))
    centered = tangent - tangent.mean(axis=0)
    _, _, vt = np.linalg.svd(centered, full_matrices=False)
    plane = tangent @ vt[:2].T
    return plane / np.maximum(np.linalg.norm(plane, axis=1, keepdims=True), 1e-300) * radius


def plot_poincare_disk(
    embedding: np.ndarray,
    graph: EdgeList,
    path: str | os.PathLike[str],
    *,
    curvature: float = -1.0,
    num_labels: int = 15,
    title: str | None = None,
) -> None:
    """Save a PNG of the embedding in the Poincaré disk, the top of the hierarchy labelled.

    Draws the direct (transitive-reduction) edges, every node coloured by its distance to
    the origin, and labels up to ``num_labels`` of the nodes with the most descendants
    (skipping one that would overlap a more general node's label). Needs matplotlib (the
    ``plot`` extra); uses the Agg canvas directly, so no pyplot state is touched.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.collections import LineCollection
        from matplotlib.figure import Figure
        from matplotlib.patches import Circle
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "plotting needs matplotlib: pip install 'spiraljax[plot]' (or pass --no-plot)"
        ) from e
    xy = disk_coordinates(embedding, curvature=curvature)
    descendants, direct = hierarchy_levels(graph)
    fig = Figure(figsize=(9, 9), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.add_patch(Circle((0, 0), 1.0, fill=False, color="0.3", lw=1.0))
    segments = xy[graph.edges[direct]]
    ax.add_collection(LineCollection(segments, colors="0.6", linewidths=0.3, alpha=0.5))
    depth = np.arctanh(np.minimum(np.linalg.norm(xy, axis=1), 1 - 1e-15))
    ax.scatter(xy[:, 0], xy[:, 1], s=4, c=depth, cmap="viridis", zorder=2)
    placed: list[np.ndarray] = []
    for i in np.argsort(-descendants, kind="stable"):
        if len(placed) == num_labels or descendants[i] == 0:
            break
        # Skip a label that would sit on top of one already placed (more general) label.
        if any(np.linalg.norm(xy[i] - q) < 0.07 for q in placed):
            continue
        placed.append(xy[i])
        ax.annotate(
            graph.names[i].split(".")[0],
            xy[i],
            fontsize=8,
            zorder=3,
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.7},
        )
    ax.set_xlim(-1.02, 1.02)
    ax.set_ylim(-1.02, 1.02)
    ax.set_aspect("equal")
    ax.axis("off")
    dim = embedding.shape[1]
    suffix = "" if dim <= 2 else f" (PCA of log₀, true radii; dim {dim})"
    ax.set_title((title or "Poincaré embedding") + suffix)
    fig.savefig(path, bbox_inches="tight")


def write_run(
    output: str | os.PathLike[str],
    *,
    embedding: np.ndarray,
    graph: EdgeList,
    metrics: Mapping[str, Any],
    losses: np.ndarray | None = None,
    curvature: float = -1.0,
    plot: bool = True,
    title: str | None = None,
    manifold: str = "poincare",
) -> Path:
    """Write ``embedding.npz``, ``metrics.json`` and ``poincare_disk.png`` atomically.

    Args:
      output: target directory (see ``atomic_directory`` for replacement rules).
      embedding: (n, d) points; row i embeds ``graph.names[i]``.
      graph: the training edges.
      metrics: JSON-serialisable mapping written to ``metrics.json``.
      losses: per-epoch training losses, stored in the npz.
      plot: also write the PNG (needs matplotlib).
      manifold: ``"poincare"`` or ``"lorentz"`` ((n, d+1) hyperboloid points, stored as
        they are and drawn through the isometry ``lorentz.to_poincare``); stored in the npz.

    Returns:
      The output directory.
    """
    target = Path(output)
    with atomic_directory(target) as tmp:
        np.savez(
            tmp / "embedding.npz",
            embedding=np.asarray(embedding),
            names=np.asarray(graph.names),
            edges=graph.edges,
            losses=np.asarray([] if losses is None else losses, np.float64),
            curvature=np.float64(curvature),
            manifold=np.asarray(manifold),
        )
        if plot:
            ball = embedding
            if manifold == "lorentz":
                x = np.asarray(embedding, np.float64)
                ball = x[:, 1:] / (1 + np.sqrt(-curvature) * x[:, :1])
            plot_poincare_disk(
                ball, graph, tmp / "poincare_disk.png", curvature=curvature, title=title
            )
        # Written last: its presence marks a complete run.
        with open(tmp / _MARKER, "w", encoding="utf-8") as f:
            json.dump(dict(metrics), f, indent=2, sort_keys=True)
            f.write("\n")
    return target
