"""Riemannian optax transforms, gradient tapes and the topos guard transform.

See docs/concepts/optax.md.

* ``riemannian_sgd``, ``riemannian_adam`` — ``optax.GradientTransformationExtraArgs``
  on the Poincaré ball (geoopt semantics); they emit ``new − old`` and need ``params``.
* ``apply_updates`` — ``project(params + updates)`` on ball leaves.
* ``Hypergrad``, ``Realgrad`` — functional gradient tapes (pytrees).
* ``topos_guard`` — rewrites non-finite / oversized updates and counts the rewrites.
* ``roundtable`` — scales the top-k / middle / bottom-k magnitude bands of each leaf.
"""

from spiraljax.optim.guard import ToposGuardState, topos_guard
from spiraljax.optim.riemannian import (
    RiemannianAdamState,
    RiemannianSGDState,
    apply_updates,
    riemannian_adam,
    riemannian_sgd,
    riemannian_sgd_step,
)
from spiraljax.optim.roundtable import RoundtableState, roundtable
from spiraljax.optim.tapes import Hypergrad, Realgrad

__all__ = [
    "Hypergrad",
    "Realgrad",
    "RiemannianAdamState",
    "RiemannianSGDState",
    "RoundtableState",
    "ToposGuardState",
    "apply_updates",
    "riemannian_adam",
    "riemannian_sgd",
    "riemannian_sgd_step",
    "roundtable",
    "topos_guard",
]
