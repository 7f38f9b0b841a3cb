"""Reconstruction mean rank and MAP of a graph embedding (Nickel & Kiela 2017, §4.1).

For every node u with at least one out-edge, N(u) = {v : (u, v) ∈ E} are its true
neighbours (for a hypernymy closure: all ancestors of u); every other node except u is a
non-neighbour. With d_u(w) the distance from u to w in the embedding:

* rank of a true pair (u, v): 1 + #{non-neighbours w : d_u(w) ≤ d_u(v)}; the mean rank
  averages it over all edges (1 is perfect). This is the rank of v among the
  non-neighbours of u, as in the reference code (``hype/graph.py``
  ``reconstruction_worker``: position in the sorted row minus the neighbours before it).
* average precision of u: mean over v ∈ N(u) of precision(v) =
  #{v' ∈ N(u) : d_u(v') ≤ d_u(v)} / #{w ≠ u : d_u(w) ≤ d_u(v)}; MAP averages it over the
  nodes u. This equals ``sklearn.metrics.average_precision_score(labels, -d_u)``.

Ties count against the embedding (≤ above), as sklearn does for AP; the reference code's
rank breaks ties by sort order instead. Both are exact and vectorised: rows are processed
in blocks, each block's non-neighbour distances are sorted once and every neighbour is
located by binary search.

Memory is bounded by the block: a block of b rows holds a few (b, n) arrays (distances,
masks, the sorted copy), about ``BYTES_PER_ENTRY`` = 48 bytes per entry in float64, so the
default ``memory_budget`` of 1 GiB gives b = 272 rows for the WordNet nouns (n = 82,115)
and evaluates all 82,114 × 82,115 pairs exactly in 302 blocks. The next block is dispatched
before the previous one's counts are read back, so the device never waits for the host.

``sample=s`` evaluates s random source nodes instead of all of them (exact within each
row): MAP is then the mean AP of the sampled nodes (an unbiased estimate of the full MAP)
and the mean rank the mean over their edges (a ratio estimate, slightly biased for small
s). Both are approximate, for quick looks during training; the reported numbers should be
the exact ones.
"""

from __future__ import annotations

import contextlib
import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from spiraljax.data import EdgeList
from spiraljax.geometry import lorentz, poincare

__all__ = [
    "ReconstructionMetrics",
    "block_rows",
    "neighbour_table",
    "ranking_metrics",
    "reconstruction_metrics",
]


BYTES_PER_ENTRY = 48  # per (row, node) entry of a block: see the module docstring
DEFAULT_MEMORY_BUDGET = 2**30


class ReconstructionMetrics(NamedTuple):
    """``mean_rank`` (≥ 1, lower is better) and ``map`` (in (0, 1], higher is better).

    ``num_pairs`` and ``num_nodes`` count the edges and source nodes evaluated (a sample
    of them for ``reconstruction_metrics(..., sample=s)``).
    """

    mean_rank: float
    map: float
    num_pairs: int
    num_nodes: int


def x64_context(dtype) -> contextlib.AbstractContextManager:
    """``jax.enable_x64(True)`` for a float64 dtype (so float64 work stays float64 whatever
    the global ``jax_enable_x64``), a no-op otherwise."""
    if np.dtype(dtype) != np.float64 or jax.config.jax_enable_x64:
        return contextlib.nullcontext()
    return jax.enable_x64(True)


def neighbour_table(graph: EdgeList) -> tuple[np.ndarray, np.ndarray]:
    """Padded out-neighbour lists.

    Returns:
      ``(sources, table)``: ``sources`` (s,) int32 ids of the nodes with ≥ 1 out-edge, in
      increasing order; ``table`` (s, max_degree) int32, row i the neighbours of
      ``sources[i]``, padded with −1.
    """
    child, parent = graph.edges[:, 0], graph.edges[:, 1]
    order = np.lexsort((parent, child))
    child, parent = child[order], parent[order]
    sources, starts, counts = np.unique(child, return_index=True, return_counts=True)
    table = np.full((sources.size, int(counts.max())), -1, dtype=np.int32)
    col = np.arange(child.size) - np.repeat(starts, counts)
    table[np.repeat(np.arange(sources.size), counts), col] = parent
    return sources.astype(np.int32), table


@jax.jit
def _block_scores(d: jax.Array, rows: jax.Array, nbrs: jax.Array):
    """Ranks and precisions for a block of rows.

    d: (b, n) distances from node ``rows[i]`` to every node; nbrs: (b, k) padded with −1.
    Returns counts (non-neighbours ≤ d_u(v), neighbours ≤ d_u(v)), both (b, k) int; padded
    entries are meaningless.
    """
    b, n = d.shape
    valid = nbrs >= 0
    safe = jnp.where(valid, nbrs, 0)
    inf = jnp.array(jnp.inf, d.dtype)
    d_nbr = jnp.where(valid, jnp.take_along_axis(d, safe, axis=1), inf)
    is_nbr = jnp.zeros((b, n), bool).at[jnp.arange(b)[:, None], safe].max(valid)
    is_self = jnp.arange(n)[None, :] == rows[:, None]
    non_sorted = jnp.sort(jnp.where(is_nbr | is_self, inf, d), axis=1)
    nbr_sorted = jnp.sort(d_nbr, axis=1)
    count_le = jax.vmap(functools.partial(jnp.searchsorted, side="right"))
    non_le = count_le(non_sorted, d_nbr)
    nbr_le = count_le(nbr_sorted, d_nbr)
    return non_le, nbr_le


def _accumulate(dist_rows, sources: np.ndarray, table: np.ndarray, block: int, progress=False):
    rank_sum = 0.0
    ap_sum = 0.0
    pairs = 0
    rows_done = 0

    def launch(start):
        rows = sources[start : start + block]
        nbrs = table[start : start + block]
        pad = block - rows.size
        if pad:  # fixed block shape: one compilation
            rows = np.concatenate([rows, np.full(pad, rows[-1], np.int32)])
            nbrs = np.concatenate([nbrs, np.full((pad, nbrs.shape[1]), -1, np.int32)])
        out = _block_scores(dist_rows(rows), jnp.asarray(rows), jnp.asarray(nbrs))
        return out, nbrs

    starts = range(0, sources.size, block)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=int(sources.size), desc="evaluating", unit="row")
    pending = launch(0)
    for i in range(len(starts)):
        # Dispatch block i + 1 before reading block i back (asynchronous dispatch).
        current, pending = pending, (launch(starts[i + 1]) if i + 1 < len(starts) else None)
        (non_le, nbr_le), nbrs = current
        valid = nbrs >= 0
        non_le, nbr_le = np.asarray(non_le, np.int64), np.asarray(nbr_le, np.int64)
        precision = nbr_le / np.maximum(nbr_le + non_le, 1)
        rank_sum += float(np.sum(non_le + 1, where=valid))
        degree = valid.sum(axis=1)
        row_ap = np.sum(precision, axis=1, where=valid) / np.maximum(degree, 1)
        ap_sum += float(row_ap[degree > 0].sum())
        pairs += int(valid.sum())
        rows_done = min(rows_done + block, int(sources.size))
        if bar is not None:
            bar.update(rows_done - bar.n)
    if bar is not None:
        bar.close()
    return ReconstructionMetrics(rank_sum / pairs, ap_sum / sources.size, pairs, int(sources.size))


def block_rows(num_nodes: int, *, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> int:
    """Rows per evaluation block so that a block's (rows, n) arrays fit ``memory_budget``
    bytes (``BYTES_PER_ENTRY`` per entry), between 1 and 4096."""
    if memory_budget <= 0:
        raise ValueError(f"memory_budget={memory_budget} must be > 0 bytes")
    return int(np.clip(memory_budget // (BYTES_PER_ENTRY * max(num_nodes, 1)), 1, 4096))


def ranking_metrics(distances, graph: EdgeList, *, block: int = 128) -> ReconstructionMetrics:
    """Mean rank and MAP from a full (n, n) distance matrix (any dissimilarity).

    Args:
      distances: (n, n) array, ``distances[u, w]`` = d_u(w); n = ``graph.num_nodes``.
      graph: the true edges.
    """
    d = jnp.asarray(distances)
    if d.shape != (graph.num_nodes, graph.num_nodes):
        raise ValueError(
            f"distances.shape={d.shape} must be ({graph.num_nodes}, {graph.num_nodes})"
        )
    sources, table = neighbour_table(graph)
    return _accumulate(lambda rows: d[rows], sources, table, block)


def _dist_rows(x, curvature, rows, manifold="poincare"):
    # Broadcast dist (not the pairwise expansion) for full accuracy on near pairs.
    model = lorentz if manifold == "lorentz" else poincare
    return model.dist(x[rows][:, None, :], x[None, :, :], curvature=curvature)


@jax.jit
def _dist_rows_blocked(x, curvature, rows):
    """(b, n) distances d(x[rows], x), c = −K, as

        d = (1/√c)·arcosh(1 + 2c‖x − y‖² / ((1 − c‖x‖²)(1 − c‖y‖²))),

    the same distance as ``poincare.dist``, written so that XLA fuses the (b, n, d)
    differences into the reduction: no (b, n, d) intermediate, memory O(b·n). ‖x − y‖²
    from the differences (not ‖x‖² + ‖y‖² − 2⟨x, y⟩) keeps near pairs accurate, and
    arcosh(1 + z) = log1p(z + √(z(z + 2))) keeps small distances accurate.
    """
    c = -curvature
    u = x[rows]
    sq = jnp.sum(jnp.square(u[:, None, :] - x[None, :, :]), axis=-1)
    du = 1 - c * jnp.sum(u * u, axis=-1)
    dx = 1 - c * jnp.sum(x * x, axis=-1)
    z = 2 * c * sq / (du[:, None] * dx[None, :])
    return jnp.log1p(z + jnp.sqrt(z * (z + 2))) / jnp.sqrt(c)


_dist_rows_jit = jax.jit(_dist_rows, static_argnames=("manifold",))


def _check_manifold(manifold: str) -> None:
    if manifold not in ("poincare", "lorentz"):
        raise ValueError(f"manifold={manifold!r} must be 'poincare' or 'lorentz'")


def reconstruction_metrics(
    embedding,
    graph: EdgeList,
    *,
    curvature: float = -1.0,
    block: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    sample: int | None = None,
    seed: int = 0,
    progress: bool = False,
    manifold: str = "poincare",
) -> ReconstructionMetrics:
    """Reconstruction mean rank and MAP of Poincaré-ball points (module docstring).

    Exact over all pairs unless ``sample`` is given. Rows are evaluated in blocks whose
    (block, n) arrays fit ``memory_budget`` bytes.

    Args:
      embedding: (n, d) points in the ball of curvature ``curvature``; row i embeds
        ``graph.names[i]``.
      graph: the true edges (usually the training closure).
      curvature: K < 0 of the ball.
      block: rows per block (default: ``block_rows(n, memory_budget=memory_budget)``);
        memory is O(block · n).
      memory_budget: bytes per block when ``block`` is None (default 1 GiB).
      sample: evaluate only this many source nodes, drawn uniformly without replacement
        (``seed``): an approximate, faster estimate (module docstring). None: exact.
      seed: seed of the sample.
      progress: show a tqdm bar over the rows.
      block: rows per block (default: about 2²² distance coordinates per block); memory
        is O(block · n · d).
      manifold: ``"poincare"`` (ball points (n, d)) or ``"lorentz"`` (hyperboloid points
        (n, d+1), distances of ``spiraljax.geometry.lorentz``).
    """
    _check_manifold(manifold)
    shape = np.shape(embedding)
    if len(shape) != 2 or shape[0] != graph.num_nodes:
        raise ValueError(f"embedding.shape={shape} must be ({graph.num_nodes}, dim)")
    if not (isinstance(curvature, int | float) and math.isfinite(curvature) and curvature < 0):
        raise ValueError(f"curvature={curvature!r} must be finite and < 0")
    if manifold == "poincare" and shape[0]:
        # Points on or outside the ball (e.g. a Lorentz table passed without
        # manifold="lorentz") would be ranked by a meaningless distance.
        top = float(np.max(np.sum(np.square(np.asarray(embedding, np.float64)), axis=1)))
        if not top < 1.0 / -curvature:
            raise ValueError(
                f"embedding has a row of squared norm {top:.6g} ≥ 1/c = {1.0 / -curvature:.6g}:"
                " not a point of the ball (hyperboloid points need manifold='lorentz')"
            )
    if block is None:
        block = block_rows(shape[0], memory_budget=memory_budget)
    elif block < 1:
        raise ValueError(f"block={block} must be ≥ 1")
    sources, table = neighbour_table(graph)
    if sample is not None:
        if not 1 <= sample:
            raise ValueError(f"sample={sample} must be ≥ 1")
        if sample < sources.size:
            pick = np.sort(np.random.default_rng(seed).choice(sources.size, sample, replace=False))
            sources, table = sources[pick], table[pick]
    block = min(block, int(sources.size))
    # A float64 embedding is evaluated in float64 even when x64 is globally off.
    with x64_context(np.asarray(embedding).dtype):
        x = jnp.asarray(embedding)
        c = jnp.asarray(curvature, x.dtype)
        return _accumulate(
            lambda rows: (
                _dist_rows_blocked(x, c, jnp.asarray(rows))
                if manifold == "poincare"
                else _dist_rows_jit(x, c, jnp.asarray(rows), manifold=manifold)
            ),
            sources,
            table,
            block,
            progress,
        )
