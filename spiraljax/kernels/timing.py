"""Timing helpers for Rank-K kernel variants (used by ``benchmarks/rankk.py`` and by a
``spiraljax tune`` that measures ``Choice`` candidates on the current device).

Method: every call gets a fresh input from a rotation of pre-generated buffers (so a
buffer larger than L2 is never re-read from cache), calls are dispatched ``batch`` at a
time and synchronised once (so host dispatch overlaps device work), and the per-call time
is the median over ``reps`` batches. ``check`` is called on one output of every batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np


def _block(out):
    import jax

    jax.block_until_ready(out)


def time_calls(
    fn: Callable,
    inputs: Sequence,
    *,
    reps: int = 15,
    batch: int = 5,
    warmup: int = 2,
    check: Callable | None = None,
    sync: Callable | None = None,
) -> float:
    """Median milliseconds per ``fn(x)`` call over ``reps`` batches of ``batch`` calls.

    Args:
      fn: the (jitted) function of one input.
      inputs: buffers rotated through, call after call.
      check: ``check(out, i)`` verifies one output per batch (``i`` indexes ``inputs``).
      sync: synchroniser for non-JAX outputs (default ``jax.block_until_ready``).
    """
    sync = sync or _block
    m = len(inputs)
    for w in range(warmup):
        out = fn(inputs[w % m])
        sync(out)
        if check is not None:
            check(out, w % m)
    times = []
    c = 0
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(batch):
            out = fn(inputs[c % m])
            c += 1
        sync(out)
        times.append((time.perf_counter() - t0) / batch)
        if check is not None:
            check(out, (c - 1) % m)
    return float(np.median(times) * 1e3)


def time_choices(kind: str, inputs: Sequence, k: int, choices: Sequence, **kw) -> list:
    """Time the Pallas Rank-K path for each ``Choice`` on the same inputs.

    Returns ``[(choice, ms, error), ...]`` sorted by time; a choice that fails to compile
    or run is reported with ``ms = inf`` (and its error) rather than aborting the sweep.
    The same as ``tuner.time_variants`` (variants compiled side by side and kept).
    """
    from spiraljax.kernels.tuner import time_variants

    return time_variants(kind, inputs, k, choices, **kw)
