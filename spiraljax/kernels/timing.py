"""The measuring rig for Rank-K kernel variants: timing, reference checks, parallel
compilation (used by ``tuner.py``, ``spiraljax tune`` and ``benchmarks/rankk.py``).

Method: every call gets a fresh input from a rotation of pre-generated buffers (so a
buffer larger than L2 is never re-read from cache), calls are dispatched ``batch`` at a
time and synchronised once (so host dispatch overlaps device work), and the per-call time
is the median over ``reps`` batches. ``check`` is called on one output of every batch.
"""

from __future__ import annotations

import functools
import math
import os
import time
from collections.abc import Callable, Sequence

import numpy as np

from spiraljax.kernels.choice import Choice

__all__ = [
    "COMPILE_SECONDS",
    "MismatchError",
    "Timer",
    "compile_variants",
    "random_inputs",
    "reference_check",
    "time_calls",
    "time_interleaved",
    "time_variants",
]

Timer = Callable[..., list]


class MismatchError(AssertionError):
    """A kernel variant's output differs from the XLA path."""


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
    entries = {"fn": (fn, inputs, check, sync)}
    return time_interleaved(entries, reps=reps, batch=batch, warmup=warmup)["fn"]


def time_interleaved(
    entries: dict, *, reps: int = 15, batch: int = 5, warmup: int = 2
) -> dict[str, float]:
    """``time_calls`` of several functions side by side, their batches interleaved.

    ``entries`` maps a name to ``(fn, inputs, check, sync)`` (``check`` / ``sync`` may be
    None, as in ``time_calls``). Each of the ``reps`` rounds times one batch of every
    function, starting one further along the names each round, so clock or memory drift
    during the run (a function timed right after a compile, or last) falls on all alike.
    Returns the median ms per call of each name.
    """
    names = list(entries)
    counts = dict.fromkeys(names, 0)
    times = {name: [] for name in names}

    def one_batch(name, size):
        fn, inputs, check, sync = entries[name]
        sync = sync or _block
        c = counts[name]
        t0 = time.perf_counter()
        for _ in range(size):
            out = fn(inputs[c % len(inputs)])
            c += 1
        sync(out)
        dt = (time.perf_counter() - t0) / size
        counts[name] = c
        if check is not None:
            check(out, (c - 1) % len(inputs))
        return dt

    for name in names:
        for _ in range(warmup):
            one_batch(name, 1)
    for rep in range(reps):
        for j in range(len(names)):
            name = names[(rep + j) % len(names)]
            times[name].append(one_batch(name, batch))
    return {name: float(np.median(times[name]) * 1e3) for name in names}


def random_inputs(rows, cols, dtype, count, seed):
    """``count`` random (rows, cols) arrays of ``dtype`` (uniform integers over the dtype's
    range, or standard normal floats), seeded."""
    import jax.numpy as jnp

    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype) if dtype != "bfloat16" else jnp.bfloat16
    out = []
    for _ in range(count):
        if np.issubdtype(np.dtype(dt), np.integer):
            info = np.iinfo(np.dtype(dt))
            a = rng.integers(info.min, info.max, size=(rows, cols), dtype=np.int64).astype(dt)
        else:
            a = rng.standard_normal((rows, cols)).astype(np.float32)
        out.append(jnp.asarray(a, dtype=dt))
    return out


def reference_check(kind, inputs, k):
    """``check(out, i)`` comparing a kernel output with the XLA path, bit for bit."""
    import jax

    from spiraljax.kernels import rank

    op = {"top": rank.topk, "bottom": rank.bottomk, "mid": rank.midk}[kind]
    ref = jax.jit(lambda x: op(x, k, implementation="xla"))
    refs = []
    for x in inputs:
        v, i = ref(x)
        refs.append((np.asarray(i), np.ascontiguousarray(np.asarray(v)).view(np.uint8)))

    def check(out, i):
        v, idx = out
        ri, rv = refs[i]
        if not np.array_equal(np.asarray(idx), ri) or not np.array_equal(
            np.ascontiguousarray(np.asarray(v)).view(np.uint8), rv
        ):
            raise MismatchError(f"{kind}-k output differs from the XLA path (input {i})")

    return check


@functools.cache
def _kernel_fn(kind: str, k: int, choice: Choice):
    import jax

    from spiraljax.kernels import rank

    op = {"top": rank.topk, "bottom": rank.bottomk, "mid": rank.midk}[kind]
    return jax.jit(lambda x: op(x, k, implementation="pallas", choice=choice))


#: seconds spent compiling each (kind, k, choice, input shape, dtype), filled by
#: ``compile_variants``; ``tune`` logs their sum per shape.
COMPILE_SECONDS: dict = {}
_COMPILED: dict = {}


def _compile_workers() -> int:
    return max(1, min(16, (os.cpu_count() or 2) - 1))


def compile_variants(
    kind: str, x, k: int, choices: Sequence[Choice], *, workers: int | None = None
) -> dict:
    """Ahead-of-time compile the Pallas Rank-K path of every ``Choice`` for inputs shaped
    like ``x``, ``workers`` at a time; returns ``{choice: compiled function or exception}``.

    Compiled functions are kept per (kind, k, choice, shape, dtype), so a later sweep or
    A/B trial of the same plan does not compile again (failures are not kept). Lowering
    (Python) runs in this thread; the compilations run in a thread pool — XLA releases the
    GIL while it compiles, and on a GPU host most of a variant's compile time is its Triton
    kernels', so ``workers`` variants compile side by side (default: the CPU count − 1, at
    most 16).
    """
    from concurrent.futures import ThreadPoolExecutor

    workers = _compile_workers() if workers is None else workers
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers={workers!r} must be an integer ≥ 1")
    where = (tuple(x.shape), str(x.dtype))
    todo, out = [], {}
    for ch in dict.fromkeys(choices):
        key = (kind, k, ch, *where)
        if key in _COMPILED:
            out[ch] = _COMPILED[key]
            continue
        try:
            todo.append((ch, key, _kernel_fn(kind, k, ch).lower(x)))
        except Exception as err:  # a variant that does not lower must not end the sweep
            out[ch] = err

    def build(lowered):
        t0 = time.perf_counter()
        try:
            return lowered.compile(), time.perf_counter() - t0
        except Exception as err:
            return err, time.perf_counter() - t0

    if todo:
        with ThreadPoolExecutor(max_workers=min(workers, len(todo))) as pool:
            built = list(pool.map(build, [low for _, _, low in todo]))
        for (ch, key, _), (fn, secs) in zip(todo, built, strict=True):
            out[ch] = fn
            if not isinstance(fn, Exception):  # failures are not kept: tried again next time
                _COMPILED[key] = fn
                COMPILE_SECONDS[key] = secs
    return out


def time_variants(
    kind: str,
    inputs: Sequence,
    k: int,
    choices: Sequence[Choice],
    *,
    workers: int | None = None,
    **kw,
) -> list:
    """``timing.time_calls`` of every ``Choice`` on the same inputs, after compiling the
    variants side by side (``compile_variants``; compiled functions are reused across
    calls — A/B trials time the same two plans many times).

    Returns ``[(choice, ms, error)]`` sorted by time; a variant that fails to lower,
    compile or run gets ``inf`` and its error.
    """
    fns = compile_variants(kind, inputs[0], k, choices, workers=workers)
    out = []
    for ch in choices:
        fn = fns[ch]
        try:
            if isinstance(fn, Exception):
                raise fn
            out.append((ch, time_calls(fn, inputs, **kw), None))
        except Exception as err:  # a variant the compiler rejects must not end the trial
            out.append((ch, math.inf, f"{type(err).__name__}: {err}"[:300]))
    return sorted(out, key=lambda t: t[1])
