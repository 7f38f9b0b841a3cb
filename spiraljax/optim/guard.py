"""``topos_guard``: an optax transform that repairs non-finite / oversized updates.

See docs/concepts/optax.md and docs/concepts/zspace.md (the topos guard).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from spiraljax.topos import OpenCartesianTopos, RewriteCounts

__all__ = ["ToposGuardState", "topos_guard"]


class ToposGuardState(NamedTuple):
    """State of ``topos_guard`` (observable rewrite counts, int32 scalars).

    Attributes:
      last: entries rewritten in the most recent update, by rule
        (``nan``: NaN → 0; ``inf``: ±Inf → ±S; ``saturated``: finite with |v| > S → ±S).
      total: the same counts summed over all updates since ``init``.
    """

    last: RewriteCounts
    total: RewriteCounts


def _zero_counts() -> RewriteCounts:
    zero = jnp.zeros((), jnp.int32)
    return RewriteCounts(zero, zero, zero)


def topos_guard(topos: OpenCartesianTopos) -> optax.GradientTransformationExtraArgs:
    """Rewrite every update entry with the topos' element-wise rules and count the rewrites.

    Each entry v of every update leaf becomes ``clip(nan_to_num(v), −S, S)`` with
    S = ``topos.saturation`` (NaN → 0, ±Inf → ±S, |v| > S → sign(v)·S; finite |v| ≤ S
    untouched) — ``OpenCartesianTopos.saturate``. Updates are gradients or tangent
    displacements, not ball points, so the ball projection of ``rewrite``
    is not applied here (parameters are re-projected by
    ``spiraljax.optim.apply_updates``). Place it first in a chain to sanitise raw
    gradients, e.g. ``optax.chain(topos_guard(topos), riemannian_adam(1e-2))``, or last to
    sanitise the final displacements.

    Args:
      topos: the ``OpenCartesianTopos`` whose rules apply.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` with state ``ToposGuardState``.
    """
    if not isinstance(topos, OpenCartesianTopos):
        raise ValueError(f"topos={topos!r} must be an OpenCartesianTopos")

    def init_fn(params: Any) -> ToposGuardState:
        del params
        return ToposGuardState(last=_zero_counts(), total=_zero_counts())

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        counts = topos.count_rewrites_tree(updates)
        new_updates = topos.saturate_tree(updates)
        total = jax.tree_util.tree_map(jnp.add, state.total, counts)
        return new_updates, ToposGuardState(last=counts, total=total)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
