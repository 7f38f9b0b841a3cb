"""k nearest neighbours by hyperbolic (Poincaré-ball) distance, selected with Rank-K.

For query points q_i and reference points p_j on the ball of curvature K = −c,

    d(q, p) = (2/√c) artanh(√c ‖(−q) ⊕ p‖)

(``spiraljax.geometry.poincare.pairwise_dist``), and the neighbours of q_i are
``bottomk(d(q_i, ·), k)``: exact, ascending, equal distances by lower index.
"""

from __future__ import annotations

import jax.numpy as jnp

from spiraljax.geometry.poincare import pairwise_dist
from spiraljax.kernels.rank import bottomk


def nearest_neighbors(
    queries,
    points,
    k: int,
    *,
    curvature=-1.0,
    exclude_self: bool = False,
    implementation: str = "auto",
):
    """The k points nearest to each query, by Poincaré distance.

    Args:
      queries: (..., q, d) query points in the ball.
      points: (..., m, d) reference points (leading axes broadcast with ``queries``).
      k: neighbours per query, ``0 ≤ k ≤ m`` (``≤ m − 1`` with ``exclude_self``).
      curvature: K ≤ 0.
      exclude_self: ``queries`` *are* ``points`` (q = m): drop each point from its own
        list (its distance is set to +Inf before selection).
      implementation: Rank-K backend (see ``spiraljax.kernels.bottomk``).

    Returns:
      ``(distances, indices)``, each (..., q, k), nearest first; indices into ``points``.
      Differentiable in the points through the selected distances.
    """
    d = pairwise_dist(queries, points, curvature=curvature)
    m = d.shape[-1]
    if exclude_self:
        if d.shape[-2] != m:
            raise ValueError(
                f"exclude_self needs queries and points of equal count, got {d.shape[-2]} and {m}"
            )
        if k > m - 1:
            raise ValueError(f"k={k} exceeds the {m - 1} other points")
        d = jnp.where(jnp.eye(m, dtype=bool), jnp.asarray(jnp.inf, d.dtype), d)
    return bottomk(d, k, implementation=implementation)
