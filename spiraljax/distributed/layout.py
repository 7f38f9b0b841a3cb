"""PyFlame's mesh vocabulary mapped onto JAX shardings (see docs/concepts/distributed.md).

``MeshLayout.grid(r, c)`` and friends return a ``jax.sharding.NamedSharding`` over a
``jax.sharding.Mesh`` — the objects JAX itself distributes with — so the result goes
straight into ``jax.device_put``, ``jax.jit(in_shardings=...)`` or ``shard_map``.
``place`` adds the checks users want before a placement (divisibility, rank) and
``memory_report`` reads the per-device footprint from a compiled executable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = ["MemoryReport", "MeshLayout", "memory_report", "place"]

ROWS = "rows"
COLS = "cols"


def _devices(n: int | None, devices: Sequence[Any] | None) -> list[Any]:
    pool = list(jax.devices() if devices is None else devices)
    if n is None:
        return pool
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n={n!r} must be a positive integer number of devices")
    if n > len(pool):
        raise ValueError(f"n={n} exceeds the {len(pool)} available devices")
    return pool[:n]


def _mesh(shape: tuple[int, ...], names: tuple[str, ...], devices: list[Any]) -> Mesh:
    return Mesh(np.asarray(devices, dtype=object).reshape(shape), names)


class MeshLayout:
    """Constructors of ``NamedSharding`` s in PyFlame's vocabulary.

    * ``grid(r, c)``: an r×c device mesh with axes ``("rows", "cols")``; a 2-D array is
      split into r row blocks × c column blocks.
    * ``row_partition(n)``: n devices on axis ``"rows"``; the leading axis is split.
    * ``col_partition(n)``: n devices on axis ``"cols"``; the last axis is split.
    * ``replicated(n)``: every device holds the whole array.

    ``n=None`` uses every visible device; ``devices=`` picks them explicitly.
    """

    @staticmethod
    def grid(r: int, c: int, *, devices: Sequence[Any] | None = None) -> NamedSharding:
        for name, value in (("r", r), ("c", c)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} must be a positive integer")
        pool = _devices(None, devices)
        if r * c > len(pool):
            raise ValueError(f"grid {r}x{c} needs {r * c} devices, only {len(pool)} available")
        mesh = _mesh((r, c), (ROWS, COLS), pool[: r * c])
        return NamedSharding(mesh, PartitionSpec(ROWS, COLS))

    @staticmethod
    def row_partition(
        n: int | None = None, *, devices: Sequence[Any] | None = None
    ) -> NamedSharding:
        pool = _devices(n, devices)
        return NamedSharding(_mesh((len(pool),), (ROWS,), pool), PartitionSpec(ROWS))

    @staticmethod
    def col_partition(
        n: int | None = None, *, devices: Sequence[Any] | None = None
    ) -> NamedSharding:
        pool = _devices(n, devices)
        # P(None, ..., "cols") would need the rank; splitting the *last* axis is spelt
        # at placement time by ``place`` (see ``_spec_for``).
        return NamedSharding(_mesh((len(pool),), (COLS,), pool), PartitionSpec(None, COLS))

    @staticmethod
    def replicated(n: int | None = None, *, devices: Sequence[Any] | None = None) -> NamedSharding:
        pool = _devices(n, devices)
        return NamedSharding(_mesh((len(pool),), (ROWS,), pool), PartitionSpec())


def _spec_for(sharding: NamedSharding, ndim: int) -> PartitionSpec:
    """The spec of ``sharding`` fitted to an array of rank ``ndim``.

    ``col_partition`` splits the last axis whatever the rank; other specs must not name
    more axes than the array has.
    """
    spec = tuple(sharding.spec)
    if spec == (None, COLS):
        if ndim < 1:
            raise ValueError("col_partition needs an array of rank >= 1, got a scalar")
        return PartitionSpec(*([None] * (ndim - 1)), COLS)
    if len(spec) > ndim:
        raise ValueError(
            f"sharding spec {sharding.spec} names {len(spec)} axes but the array has rank {ndim}"
        )
    return PartitionSpec(*spec)


def place(x: Any, sharding: NamedSharding) -> Any:
    """``jax.device_put`` every leaf of ``x`` with ``sharding``, after checking it fits.

    Raises:
      ValueError: when an axis length is not divisible by the number of devices along the
        mesh axis that splits it, or the spec has more axes than a leaf's rank.
    """

    def put(leaf: Any) -> Any:
        leaf = jax.numpy.asarray(leaf)
        spec = _spec_for(sharding, leaf.ndim)
        for axis, names in enumerate(spec):
            if names is None:
                continue
            names = names if isinstance(names, tuple) else (names,)
            parts = int(np.prod([sharding.mesh.shape[name] for name in names]))
            if leaf.shape[axis] % parts:
                raise ValueError(
                    f"axis {axis} of length {leaf.shape[axis]} does not divide into {parts} "
                    f"shards (mesh axes {names})"
                )
        return jax.device_put(leaf, NamedSharding(sharding.mesh, spec))

    return jax.tree.map(put, x)


class MemoryReport(NamedTuple):
    """Bytes per device of a compiled executable (from XLA's memory analysis)."""

    argument_bytes: int
    output_bytes: int
    temp_bytes: int
    alias_bytes: int
    generated_code_bytes: int

    @property
    def peak_bytes(self) -> int:
        """Arguments + outputs + temporaries − aliased bytes: the device high-water mark."""
        return self.argument_bytes + self.output_bytes + self.temp_bytes - self.alias_bytes


def memory_report(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> MemoryReport:
    """Compile ``jax.jit(fn)(*args, **kwargs)`` and report its per-device memory.

    The figures are XLA's ``compiled.memory_analysis()``; for SPMD programs they are per
    device (each device runs the same partitioned program).
    """
    compiled = jax.jit(fn).lower(*args, **kwargs).compile()
    stats = compiled.memory_analysis()
    if stats is None:
        raise RuntimeError("this backend reports no memory analysis for compiled programs")
    return MemoryReport(
        argument_bytes=int(stats.argument_size_in_bytes),
        output_bytes=int(stats.output_size_in_bytes),
        temp_bytes=int(stats.temp_size_in_bytes),
        alias_bytes=int(stats.alias_size_in_bytes),
        generated_code_bytes=int(stats.generated_code_size_in_bytes),
    )
