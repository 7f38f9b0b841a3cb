"""The open Cartesian topos: a static guard that repairs or rejects bad values.

See docs/concepts/zspace.md (the topos guard).

An ``OpenCartesianTopos`` is a frozen, hashable configuration with two kinds of rule:

* **rewrite** (repair, element-wise then geometric) — for every entry ``v``::

      NaN                 ->  0
      +Inf, v >  S        -> +S
      -Inf, v < -S        -> -S
      otherwise           ->  v                    (S = saturation)

  i.e. ``clip(nan_to_num(v), -S, S)``, a monotone non-decreasing map (the seed's "porous"
  saturation decayed *below* S for large inputs and was not monotone; this one is). The
  geometric step then re-projects points into the open Poincaré ball of curvature K
  (``geometry.poincare.project``; identity at K = 0). ``OpenCartesianTopos.saturate`` is
  the element-wise part alone, for values that are not ball points (gradients, tangent
  vectors, solver iterates).
* **guard** (reject) — ``size ≤ max_volume`` and every entry finite. Eagerly it raises a
  ``ToposError`` (a ``ValueError``) naming the rule and the offending value; under a
  trace it emits a ``jax.experimental.checkify.check``, so wrap the jitted function in
  ``checkify.checkify`` (``strict=False`` uses ``checkify.debug_check`` instead, which is a
  no-op unless functionalized). The volume rule is always checked at trace time (shapes
  are static).

``tolerance`` is the topos' numerical tolerance floor (used by solvers as the smallest
residual they may claim) and ``max_depth`` bounds recursion/loop depth
(``OpenCartesianTopos.check_depth``); both are carried as configuration.

The configuration is registered as a *static* pytree (no leaves), so a topos can be passed
to, or closed over by, ``jax.jit``-ed functions and used as a static argument.

Reference: SpiralTorch ``st-tensor/src/pure/topos.rs`` (``OpenCartesianTopos``,
``RewriteMonad``), made monotone and curvature-correct here.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify

from spiraljax.geometry import guards, poincare

__all__ = ["OpenCartesianTopos", "RewriteCounts", "ToposError"]

PyTree = Any


class ToposError(ValueError):
    """A value violates a topos rule (non-finite entries, volume or depth exceeded)."""


class RewriteCounts(NamedTuple):
    """Number of entries a rewrite changes, by rule (int32 scalars; a pytree)."""

    nan: jax.Array
    inf: jax.Array
    saturated: jax.Array


def _concrete_float(name: str, value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, jax.errors.ConcretizationTypeError) as err:
        raise ValueError(
            f"{name}={value!r} must be a concrete real number (the topos is a static config)"
        ) from err
    return out


def _concrete_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name}={value!r} must be a positive integer")
    return int(value)


@dataclasses.dataclass(frozen=True)
class OpenCartesianTopos:
    """Static guard configuration (see docs/concepts/zspace.md).

    Args:
      curvature: Gaussian curvature K ≤ 0 of the ball that ``rewrite`` projects into.
      tolerance: numerical tolerance floor, > 0.
      saturation: S > 0; finite values with ``|v| > S`` and ±Inf become ``±S``.
      max_volume: largest allowed number of entries (per array for ``guard``, summed
        over leaves for ``guard_tree``), ≥ 1.
      max_depth: largest allowed depth for ``check_depth``, ≥ 1.

    Raises:
      ValueError: a non-finite or out-of-range field, naming it and its value.
    """

    curvature: float = -1.0
    tolerance: float = 1e-6
    saturation: float = 1e6
    max_volume: int = 2**31 - 1
    max_depth: int = 1024

    def __post_init__(self) -> None:
        k = _concrete_float("curvature", self.curvature)
        tol = _concrete_float("tolerance", self.tolerance)
        sat = _concrete_float("saturation", self.saturation)
        vol = _concrete_int("max_volume", self.max_volume)
        depth = _concrete_int("max_depth", self.max_depth)
        guards.check_curvature(k)
        if not math.isfinite(tol) or tol <= 0:
            raise ValueError(f"tolerance={tol} must be finite and > 0")
        if not math.isfinite(sat) or sat <= 0:
            raise ValueError(f"saturation={sat} must be finite and > 0")
        if vol < 1:
            raise ValueError(f"max_volume={vol} must be ≥ 1")
        if depth < 1:
            raise ValueError(f"max_depth={depth} must be ≥ 1")
        # Normalise to plain Python scalars so equal configs hash equal.
        object.__setattr__(self, "curvature", k)
        object.__setattr__(self, "tolerance", tol)
        object.__setattr__(self, "saturation", sat)
        object.__setattr__(self, "max_volume", vol)
        object.__setattr__(self, "max_depth", depth)

    # ------------------------------------------------------------------ rewrite (repair)

    def _saturation_for(self, dtype: Any) -> float:
        # S may exceed the dtype's range (e.g. 1e6 in float16): clip to the largest finite.
        return min(self.saturation, float(jnp.finfo(dtype).max))

    def saturate(self, x: jax.Array) -> jax.Array:
        """Element-wise rewrite: NaN → 0, ±Inf and ``|v| > S`` → ``±S``; same shape/dtype.

        ``clip(nan_to_num(v), -S, S)``: monotone non-decreasing in ``v``.
        """
        x = jnp.asarray(x)
        if not jnp.issubdtype(x.dtype, jnp.inexact):
            raise ValueError(f"x.dtype={x.dtype} must be a floating dtype")
        if jnp.issubdtype(x.dtype, jnp.complexfloating):
            return jax.lax.complex(self.saturate(x.real), self.saturate(x.imag))
        s = self._saturation_for(x.dtype)
        return jnp.clip(jnp.where(jnp.isnan(x), jnp.zeros((), x.dtype), x), -s, s)

    def count_rewrites(self, x: jax.Array) -> RewriteCounts:
        """Counts of entries ``saturate`` changes: NaN, ±Inf, finite with ``|v| > S``."""
        x = jnp.asarray(x)
        if jnp.issubdtype(x.dtype, jnp.complexfloating):
            re, im = self.count_rewrites(x.real), self.count_rewrites(x.imag)
            return jax.tree_util.tree_map(jnp.add, re, im)
        s = self._saturation_for(x.dtype)
        finite = jnp.isfinite(x)
        return RewriteCounts(
            nan=jnp.sum(jnp.isnan(x), dtype=jnp.int32),
            inf=jnp.sum(jnp.isinf(x), dtype=jnp.int32),
            saturated=jnp.sum(finite & (jnp.abs(x) > s), dtype=jnp.int32),
        )

    def rewrite(self, x: jax.Array) -> jax.Array:
        """Repair points: ``saturate``, then re-project into the ball.

        Args:
          x: points, shape ``(..., d)`` (last axis = coordinates), floating dtype.

        Returns:
          Array of the same shape and dtype, finite and with every row strictly inside the
          ball of radius ``1/√c`` (c = −K; at K = 0 only the element-wise rules apply).
        """
        x = jnp.asarray(x)
        if x.ndim < 1:
            raise ValueError(f"x.shape={x.shape} must have a coordinate axis (ndim ≥ 1)")
        return poincare.project(self.saturate(x), curvature=self.curvature)

    def saturate_tree(self, tree: PyTree) -> PyTree:
        """``saturate`` on every leaf of a pytree."""
        return jax.tree_util.tree_map(self.saturate, tree)

    def rewrite_tree(self, tree: PyTree) -> PyTree:
        """``rewrite`` on every leaf of a pytree (every leaf is a stack of points)."""
        return jax.tree_util.tree_map(self.rewrite, tree)

    def count_rewrites_tree(self, tree: PyTree) -> RewriteCounts:
        """``count_rewrites`` summed over every leaf of a pytree."""
        zero = jnp.zeros((), jnp.int32)
        out = RewriteCounts(zero, zero, zero)
        for leaf in jax.tree_util.tree_leaves(tree):
            out = jax.tree_util.tree_map(jnp.add, out, self.count_rewrites(leaf))
        return out

    # ------------------------------------------------------------------- guard (reject)

    def _check_volume(self, volume: int, what: str) -> None:
        if volume > self.max_volume:
            raise ToposError(f"{what} has volume {volume} > max_volume={self.max_volume}")

    def is_valid(self, x: jax.Array) -> jax.Array:
        """Boolean scalar: every entry finite and ``x.size ≤ max_volume`` (jit-friendly)."""
        x = jnp.asarray(x)
        if x.size > self.max_volume:
            return jnp.asarray(False)
        return jnp.all(jnp.isfinite(x))

    def is_valid_tree(self, tree: PyTree) -> jax.Array:
        """Boolean scalar: ``is_valid`` over a pytree, volume summed over leaves."""
        leaves = [jnp.asarray(v) for v in jax.tree_util.tree_leaves(tree)]
        if sum(v.size for v in leaves) > self.max_volume:
            return jnp.asarray(False)
        ok = jnp.asarray(True)
        for v in leaves:
            ok = ok & jnp.all(jnp.isfinite(v))
        return ok

    def _check_finite(self, x: jax.Array, what: str, strict: bool) -> None:
        bad = jnp.sum(~jnp.isfinite(x))
        if isinstance(bad, jax.core.Tracer):
            check = checkify.check if strict else checkify.debug_check
            check(
                bad == 0,
                f"{what}: {{n}} non-finite entries (topos guard, shape {x.shape})",
                n=bad,
            )
            return
        if int(bad):
            first = tuple(int(i) for i in np.argwhere(~np.isfinite(np.asarray(x)))[0])
            raise ToposError(
                f"{what} has {int(bad)} non-finite entries (first at index {first}: "
                f"{np.asarray(x)[first]})"
            )

    def guard(self, x: jax.Array, *, strict: bool = True) -> jax.Array:
        """Reject ``x`` unless ``x.size ≤ max_volume`` and every entry is finite.

        Args:
          x: any array.
          strict: under a trace, use ``checkify.check`` (True: the caller must functionalize
            with ``checkify.checkify``) or ``checkify.debug_check`` (False: a no-op unless
            functionalized).

        Returns:
          ``x`` unchanged, so guards can be inlined.

        Raises:
          ToposError: eagerly, naming the violated rule, count and first bad index.
        """
        x = jnp.asarray(x)
        self._check_volume(x.size, f"array of shape {x.shape}")
        if jnp.issubdtype(x.dtype, jnp.inexact):
            self._check_finite(x, f"array of shape {x.shape}", strict)
        return x

    def guard_tree(self, tree: PyTree, *, strict: bool = True) -> PyTree:
        """``guard`` over a pytree: total volume over leaves, every leaf finite."""
        leaves_with_path = jax.tree_util.tree_leaves_with_path(tree)
        volume = sum(jnp.size(v) for _, v in leaves_with_path)
        self._check_volume(volume, "pytree")
        for path, v in leaves_with_path:
            v = jnp.asarray(v)
            if jnp.issubdtype(v.dtype, jnp.inexact):
                self._check_finite(v, f"leaf {jax.tree_util.keystr(path)}", strict)
        return tree

    def check_depth(self, depth: int) -> int:
        """Reject a recursion/loop depth above ``max_depth``; returns ``depth``."""
        if depth > self.max_depth:
            raise ToposError(f"depth={depth} exceeds max_depth={self.max_depth}")
        return depth


jax.tree_util.register_static(OpenCartesianTopos)
