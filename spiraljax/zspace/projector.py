"""ZSpaceProjector: blend Euclidean vectors toward their image in the Poincaré ball.

See docs/concepts/zspace.md.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from spiraljax.geometry import poincare
from spiraljax.geometry.guards import check_curvature, is_concrete

__all__ = ["ZSpaceProjector", "zspace_project"]


def _check_strength(strength: Any) -> None:
    if np.shape(strength) != ():
        raise ValueError(f"strength must be a scalar, got shape {np.shape(strength)}")
    if is_concrete(strength):
        s = float(np.asarray(strength))
        if not (np.isfinite(s) and s >= 0):
            raise ValueError(f"strength={s} must be finite and >= 0")


def zspace_project(x: Any, *, curvature: Any = -1.0, strength: Any = 1.0) -> jax.Array:
    """x + σ·(exp₀(x) − x): σ = 0 is the identity, σ = 1 the ball image exp₀(x).

    ``exp₀(x) = tanh(√c‖x‖)·x/(√c‖x‖)`` (projected to norm ≤ (1 − ε)/√c), applied along
    the last axis; leading axes broadcast. For 0 ≤ σ ≤ 1 and x inside the ball the result
    stays in the ball (convexity); σ > 1 extrapolates. Differentiable in x, σ and K.

    Args:
      x: vectors ``(..., d)``, float32/float64 (bfloat16/float16 computed in float32).
      curvature: K ≤ 0.
      strength: σ ≥ 0 (finite).

    Returns:
      Array of the shape and dtype of ``x``.

    Reference: the seed's ``nn.ZSpaceProjector`` (SpiralTorch), whose ball map was a
    radius-1 tanh squash; here it is the exact ``expmap0`` of the curvature's ball.
    """
    check_curvature(curvature)
    _check_strength(strength)
    image = poincare.expmap0(x, curvature=curvature)
    x = jnp.asarray(x)
    work = image.dtype if image.dtype in (jnp.float32, jnp.float64) else jnp.float32
    sigma = jnp.asarray(strength, work)
    out = x.astype(work) + sigma * (image.astype(work) - x.astype(work))
    return out.astype(image.dtype)


@jax.tree_util.register_pytree_node_class
class ZSpaceProjector:
    """``ZSpaceProjector(curvature, strength=1.0)``; ``projector(x)`` = ``zspace_project``.

    A pytree with leaves ``curvature`` and ``strength`` (both differentiable, traceable).
    Raises ``ValueError`` for K > 0, non-finite K, or σ < 0 / non-finite σ.
    """

    def __init__(self, curvature: Any = -1.0, strength: Any = 1.0) -> None:
        check_curvature(curvature)
        _check_strength(strength)
        self.curvature = curvature
        self.strength = strength

    def tree_flatten(self):
        return (self.curvature, self.strength), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        obj = object.__new__(cls)
        obj.curvature, obj.strength = children
        return obj

    def __repr__(self) -> str:
        return f"ZSpaceProjector(curvature={self.curvature!r}, strength={self.strength!r})"

    def __call__(self, x: Any) -> jax.Array:
        return zspace_project(x, curvature=self.curvature, strength=self.strength)
