"""Hypergrad / Realgrad gradient tapes: functional, pytree-registered accumulators.

See docs/concepts/optax.md.

A tape holds one Euclidean gradient accumulator ``g`` of a fixed ``shape`` and applies it
in one optimizer step. Every method returns a **new** tape (nothing is mutated), and tapes
are registered pytrees (leaves: ``gradient``, ``learning_rate`` and, for
``Hypergrad``, ``curvature``; static: ``shape``, ``dtype``), so they pass through
``jit``, ``vmap``, ``lax.scan`` and checkpointing.

How each feed maps into the accumulator (every input must have exactly ``tape.shape``,
else ``ValueError``; inputs are cast to the tape dtype):

* ``accumulate_pair(prediction, target)``: ``g ← g + (prediction − target)`` — the gradient
  of ½‖prediction − target‖² with respect to the prediction.
* ``accumulate_wave(wave)``: ``g ← g + wave`` for a real wave. A complex wave of shape
  ``(..., n)`` is read as its real and imaginary parts interleaved along the last axis,
  ``[re₀, im₀, re₁, im₁, …]`` of shape ``(..., 2n)`` (the seed's layout), which must equal
  ``tape.shape``. (The seed divided each entry by 1 + c·t²; that damping was mislabelled as
  a conformal factor and is not applied.)
* ``accumulate_barycenter_path(densities, weights=None)``: ``densities`` is a stack of S ≥ 1
  stages of shape ``(S, *shape)`` (or a sequence of S arrays, or objects with a
  ``.density`` attribute, e.g. Z-space barycenter intermediates). The accumulator gains the
  weighted sum ``Σₖ wₖ·ρₖ``. The default weights are the seed's composition —
  ``accumulate_wave(ρ₀)`` followed by ``accumulate_pair(ρₖ, ρₖ₋₁)`` for k = 1 … S−1 — which
  telescopes to adding the final stage ρ_{S−1} (w = one-hot on the last stage);
  ``weights=jnp.full(S, 1/S)`` adds the path average instead.

``apply(weights)`` consumes the accumulator: ``Hypergrad`` takes one exact Riemannian
SGD step on the Poincaré ball, ``project(expmap(x, −lr·g/λₓ²))`` with x = project(weights)
(the same step as ``spiraljax.optim.riemannian_sgd`` without momentum);
``Realgrad`` the Euclidean step ``weights − lr·g`` with no projection. Both return
``(new_weights, tape.reset())``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from spiraljax.geometry import guards
from spiraljax.optim.riemannian import _check_learning_rate, riemannian_sgd_step

__all__ = ["Hypergrad", "Realgrad"]


def _check_shape(shape: Any) -> tuple[int, ...]:
    if isinstance(shape, int | np.integer):
        shape = (shape,)
    if isinstance(shape, str) or not isinstance(shape, Sequence):
        raise ValueError(f"shape={shape!r} must be a tuple of positive integers")
    if not shape or not all(
        isinstance(s, int | np.integer) and not isinstance(s, bool) and s > 0 for s in shape
    ):
        raise ValueError(f"shape={tuple(shape)!r} must be a non-empty tuple of positive integers")
    return tuple(int(s) for s in shape)


class _Tape:
    """Shared accumulate / reset logic; subclasses define ``_step`` and the pytree split."""

    shape: tuple[int, ...]
    dtype: jnp.dtype
    gradient: jax.Array
    learning_rate: jax.Array

    def _replace(self, **changes: Any) -> Any:
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.__dict__.update(changes)
        return new

    def _as_input(self, name: str, value: Any) -> jax.Array:
        value = jnp.asarray(value)
        if value.shape != self.shape:
            raise ValueError(f"{name} has shape {value.shape}, but the tape shape is {self.shape}")
        if not jnp.issubdtype(value.dtype, jnp.number) or jnp.issubdtype(
            value.dtype, jnp.complexfloating
        ):
            raise ValueError(f"{name} has dtype {value.dtype}; pass a real array")
        return value.astype(self.dtype)

    def accumulate_pair(self, prediction: Any, target: Any):
        """Return a tape with ``g + (prediction − target)`` (the gradient of ½‖p − t‖²)."""
        p = self._as_input("prediction", prediction)
        t = self._as_input("target", target)
        return self._replace(gradient=self.gradient + (p - t))

    def accumulate_wave(self, wave: Any):
        """Return a tape with ``g + wave``; complex waves are interleaved [re, im, …] first."""
        wave = jnp.asarray(wave)
        if jnp.issubdtype(wave.dtype, jnp.complexfloating):
            if wave.ndim < 1:
                raise ValueError(f"wave has shape {wave.shape}; a complex wave needs an axis")
            wave = jnp.stack([wave.real, wave.imag], axis=-1).reshape(
                (*wave.shape[:-1], 2 * wave.shape[-1])
            )
        return self._replace(gradient=self.gradient + self._as_input("wave", wave))

    def accumulate_barycenter_path(self, densities: Any, weights: Any = None):
        """Return a tape with ``g + Σₖ wₖ·ρₖ`` over the S stages of a barycenter path.

        Args:
          densities: shape ``(S, *tape.shape)``, or a sequence of S arrays (or objects with
            ``.density``) of ``tape.shape``; S ≥ 1.
          weights: shape ``(S,)``; default one-hot on the last stage (the seed's
            wave-then-pairs composition, which telescopes to ρ_{S−1}).
        """
        if isinstance(densities, Sequence) and not isinstance(densities, str):
            if len(densities) == 0:
                raise ValueError("densities is empty; a barycenter path needs ≥ 1 stage")
            stages = [
                self._as_input(f"densities[{i}]", getattr(d, "density", d))
                for i, d in enumerate(densities)
            ]
            stack = jnp.stack(stages)
        else:
            stack = jnp.asarray(getattr(densities, "density", densities))
            if stack.shape[1:] != self.shape or stack.ndim != len(self.shape) + 1:
                raise ValueError(
                    f"densities has shape {stack.shape}; expected (S, *{self.shape}) "
                    f"= (S, {', '.join(map(str, self.shape))})"
                )
            if stack.shape[0] == 0:
                raise ValueError("densities has 0 stages; a barycenter path needs ≥ 1 stage")
            self._as_input("densities[0]", stack[0])
            stack = stack.astype(self.dtype)
        n_stages = stack.shape[0]
        if weights is None:
            return self._replace(gradient=self.gradient + stack[-1])
        weights = jnp.asarray(weights)
        if weights.shape != (n_stages,):
            raise ValueError(f"weights has shape {weights.shape}; expected ({n_stages},)")
        contribution = jnp.tensordot(weights.astype(self.dtype), stack, axes=1)
        return self._replace(gradient=self.gradient + contribution)

    def reset(self):
        """Return a tape with a zero accumulator (same configuration)."""
        return self._replace(gradient=jnp.zeros(self.shape, self.dtype))

    def apply(self, weights: Any) -> tuple[jax.Array, Any]:
        """One step with the accumulated gradient; returns ``(new_weights, reset tape)``.

        The new weights have the dtype of ``weights`` when it is floating (computed in the
        wider of it and the tape's dtype: float64 weights on a float32 tape stay float64),
        else the tape's dtype.
        """
        w = self._as_input("weights", weights)
        raw = jnp.asarray(weights)
        if jnp.issubdtype(raw.dtype, jnp.floating) and raw.dtype != self.dtype:
            work = jnp.promote_types(raw.dtype, self.dtype)
            tape = jax.tree.map(lambda leaf: leaf.astype(work), self)
            return tape._step(raw.astype(work)).astype(raw.dtype), self.reset()
        return self._step(w), self.reset()

    def _step(self, weights: jax.Array) -> jax.Array:
        raise NotImplementedError


@jax.tree_util.register_pytree_node_class
class Hypergrad(_Tape):
    """Riemannian (Poincaré-ball) gradient tape.

    Args:
      curvature: K ≤ 0 (a leaf: may be an array, vmapped, or traced).
      learning_rate: lr > 0 (a leaf).
      shape: the accumulator / weight shape ``(..., d)``; the last axis is the coordinate
        axis of the ball points.
      dtype: accumulator dtype (default float32).

    ``apply(weights)`` = ``project(expmap(x, −lr · g/λₓ²))`` with x = project(weights), then
    the accumulator resets. See the module docstring for the accumulation rules.
    """

    def __init__(
        self, curvature: Any, learning_rate: Any, shape: Any, *, dtype: Any = jnp.float32
    ) -> None:
        guards.check_curvature(curvature)
        _check_learning_rate(learning_rate)
        self.shape = _check_shape(shape)
        self.dtype = jnp.dtype(dtype)
        if not jnp.issubdtype(self.dtype, jnp.floating):
            raise ValueError(f"dtype={self.dtype} must be a floating dtype")
        self.curvature = jnp.asarray(curvature, self.dtype)
        self.learning_rate = jnp.asarray(learning_rate, self.dtype)
        self.gradient = jnp.zeros(self.shape, self.dtype)

    def _step(self, weights: jax.Array) -> jax.Array:
        return riemannian_sgd_step(
            weights, self.gradient, self.learning_rate, curvature=self.curvature
        )

    def tree_flatten(self):
        return (self.gradient, self.learning_rate, self.curvature), (self.shape, self.dtype)

    @classmethod
    def tree_unflatten(cls, aux, children):
        new = object.__new__(cls)
        new.shape, new.dtype = aux
        new.gradient, new.learning_rate, new.curvature = children
        return new

    def __repr__(self) -> str:
        return (
            f"Hypergrad(curvature={self.curvature}, learning_rate={self.learning_rate}, "
            f"shape={self.shape}, dtype={self.dtype})"
        )


@jax.tree_util.register_pytree_node_class
class Realgrad(_Tape):
    """Euclidean gradient tape: ``apply(w) = w − lr·g`` (no projection), then reset.

    Args:
      learning_rate: lr > 0 (a leaf).
      shape: the accumulator / weight shape.
      dtype: accumulator dtype (default float32).
    """

    def __init__(self, learning_rate: Any, shape: Any, *, dtype: Any = jnp.float32) -> None:
        _check_learning_rate(learning_rate)
        self.shape = _check_shape(shape)
        self.dtype = jnp.dtype(dtype)
        if not jnp.issubdtype(self.dtype, jnp.floating):
            raise ValueError(f"dtype={self.dtype} must be a floating dtype")
        self.learning_rate = jnp.asarray(learning_rate, self.dtype)
        self.gradient = jnp.zeros(self.shape, self.dtype)

    def _step(self, weights: jax.Array) -> jax.Array:
        return weights - self.learning_rate * self.gradient

    def tree_flatten(self):
        return (self.gradient, self.learning_rate), (self.shape, self.dtype)

    @classmethod
    def tree_unflatten(cls, aux, children):
        new = object.__new__(cls)
        new.shape, new.dtype = aux
        new.gradient, new.learning_rate = children
        return new

    def __repr__(self) -> str:
        return (
            f"Realgrad(learning_rate={self.learning_rate}, shape={self.shape}, dtype={self.dtype})"
        )
