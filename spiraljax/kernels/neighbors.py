"""k nearest neighbours by hyperbolic (Poincaré-ball) distance, selected with Rank-K.

For query points q_i and reference points p_j on the ball of curvature K = −c,

    d(q, p) = (2/√c) artanh(√c ‖(−q) ⊕ p‖)

and the neighbours of q_i are ``bottomk(d(q_i, ·), k)``: exact, ascending, equal
distances by lower index. This is the one nearest-neighbour function of spiraljax (the
embedding demo and notebooks use it too); see docs/concepts/rank-k.md.
"""

from __future__ import annotations

import jax.numpy as jnp

from spiraljax.geometry.poincare import dist, pairwise_dist
from spiraljax.kernels.rank import bottomk

DISTANCES = ("pairwise", "direct")


def nearest_neighbors(
    queries,
    points,
    k: int,
    *,
    curvature=-1.0,
    exclude_self: bool = False,
    query_ids=None,
    distance: str = "pairwise",
    implementation: str = "auto",
):
    """The k points nearest to each query, by Poincaré distance.

    Args:
      queries: (..., q, d) query points in the ball.
      points: (..., m, d) reference points (leading axes broadcast with ``queries``).
      k: neighbours per query, ``0 ≤ k ≤ m`` (``≤ m − 1`` with ``exclude_self``).
      curvature: K ≤ 0.
      exclude_self: the queries are points themselves — ``points`` (q = m), or
        ``points[query_ids]`` when ``query_ids`` is given: drop each query's own entry
        from its list (its distance is set to +Inf before selection).
      query_ids: (q,) indices into ``points`` of the queries (with ``exclude_self``).
      distance: ``"pairwise"`` (``poincare.pairwise_dist``: one matrix product, O(q·m)
        memory, absolute error ~1e-3 between near float32 points) or ``"direct"``
        (``poincare.dist`` broadcast: O(q·m·d) memory, full accuracy on near pairs).
      implementation: Rank-K backend (see ``spiraljax.kernels.bottomk``).

    Returns:
      ``(distances, indices)``, each (..., q, k), nearest first; indices into ``points``.
      Differentiable in the points through the selected distances.
    """
    if distance not in DISTANCES:
        raise ValueError(f"distance={distance!r} is not one of {DISTANCES}")
    if query_ids is not None and not exclude_self:
        raise ValueError("query_ids is only meaningful with exclude_self=True")
    if distance == "pairwise":
        d = pairwise_dist(queries, points, curvature=curvature)
    else:
        q, p = jnp.asarray(queries), jnp.asarray(points)
        d = dist(q[..., :, None, :], p[..., None, :, :], curvature=curvature)
    nq, m = d.shape[-2], d.shape[-1]
    if exclude_self:
        if query_ids is None:
            if nq != m:
                raise ValueError(
                    f"exclude_self needs queries and points of equal count, got {nq} and {m}"
                )
            own = jnp.eye(m, dtype=bool)
        else:
            ids = jnp.asarray(query_ids, jnp.int32).reshape(-1)
            if ids.shape[0] != nq:
                raise ValueError(f"query_ids has {ids.shape[0]} entries for {nq} queries")
            own = ids[:, None] == jnp.arange(m, dtype=jnp.int32)[None, :]
        if k > m - 1:
            raise ValueError(f"k={k} exceeds the {m - 1} other points")
        d = jnp.where(own, jnp.asarray(jnp.inf, d.dtype), d)
    return bottomk(d, k, implementation=implementation)
