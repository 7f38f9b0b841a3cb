"""Exact, differentiable Top-K / Bottom-K / Mid-K with per-backend kernels.

See docs/concepts/rank-k.md.

Semantics, identical for every kind, dtype and backend:

* total order −NaN < −Inf < … < −0.0 < +0.0 < … < +Inf < NaN, ties to the lower index;
* ``topk``: the k largest, descending; ``bottomk``: the k smallest, ascending;
  ``midk``: the ascending window of k ranks starting at rank ⌊(n − k)/2⌋ (the centred
  band; an odd surplus leans low);
* values are the input entries themselves (``x[..., idx]``), indices int32.

Backends: ``"xla"`` (``xla.py``, the CPU path), ``"pallas"`` and ``"triton"`` (the kernels
chosen by ``dispatch.py``: the radix select of ``pallas/radix.py`` or the sampled select
of ``pallas/sample.py``, lowered by Pallas' Triton backend on CUDA/ROCm and run
with ``interpret=True`` elsewhere, so CPU tests execute the same kernel logic).
``"auto"`` follows the default backend: where it is CUDA or ROCm, the selection is
registered per platform with ``lax.platform_dependent`` (the GPU lowers the Pallas/Triton
kernel planned by ``plan_rank``, arrays on other platforms take XLA); elsewhere it is the
XLA path alone, so GPU planning (and a heuristic program illegal for a GPU) never affects
a CPU-only run. Force a backend with ``implementation=``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from spiraljax.kernels.choice import Choice, DeviceCaps
from spiraljax.kernels.dispatch import select_indices_gpu
from spiraljax.kernels.keys import SUPPORTED_DTYPES
from spiraljax.kernels.plan import plan_rank
from spiraljax.kernels.xla import select_indices as _xla_indices

IMPLEMENTATIONS = ("auto", "xla", "pallas", "triton")
_GPU_PLATFORMS = ("gpu", "cuda", "rocm")


def _check(x, k, axis, implementation):
    x = jnp.asarray(x)
    dtype = np.dtype(x.dtype)
    if dtype not in SUPPORTED_DTYPES:
        raise ValueError(
            f"dtype={dtype} is not supported; use one of "
            + ", ".join(str(d) for d in SUPPORTED_DTYPES)
        )
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation={implementation!r} is not one of {IMPLEMENTATIONS}")
    if dtype == np.float64 and implementation in ("pallas", "triton"):
        raise ValueError(f"dtype={dtype} is only supported by implementation='xla'")
    if x.ndim == 0:
        raise ValueError("x must have at least one axis, got a scalar")
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise ValueError(f"axis={axis!r} must be an integer")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis={axis} is out of range for an array of ndim={x.ndim}")
    axis = int(axis) % x.ndim
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ValueError(f"k={k!r} must be a Python integer")
    k = int(k)
    n = x.shape[axis]
    if k < 0:
        raise ValueError(f"k={k} must be ≥ 0")
    if k > n:
        raise ValueError(f"k={k} exceeds axis size {n}")
    return x, k, axis


def _rank(kind, x, k, axis, implementation, choice):
    x, k, axis = _check(x, k, axis, implementation)
    if choice is not None:
        if not isinstance(choice, Choice):
            raise ValueError(f"choice={choice!r} must be a Choice")
        choice.validate(None, k)
    else:
        choice = _planned_choice(kind, x, k, axis, implementation)
    return _compiled(kind, k, axis, implementation, choice)(x)


def _planned_choice(kind, x, k, axis, implementation):
    """The kernel ``Choice`` for this call, or None where the XLA path runs anyway.

    Planning happens here, in Python before tracing, so a jit-compiled selection is keyed
    by its plan: a changed heuristic (environment, heur file) yields a new compilation
    instead of being frozen into a cached one.
    """
    n = x.shape[axis]
    rows = int(np.prod(x.shape, dtype=np.int64)) // max(n, 1)
    if k == 0 or rows == 0 or k == n or implementation == "xla":
        return None
    if np.dtype(x.dtype) == np.float64:
        return None
    if implementation == "auto":
        if jax.default_backend() not in _GPU_PLATFORMS:
            return None  # "auto" takes the XLA path here; no kernel to plan
        return plan_rank(kind, rows, n, k, DeviceCaps.detect()).choice
    return plan_rank(kind, rows, n, k).choice


@functools.lru_cache(maxsize=512)
def _compiled(kind, k, axis, implementation, choice):
    """jit of one selection: eager calls pay one dispatch, not one per primitive."""
    return jax.jit(
        functools.partial(
            _rank_traced, kind=kind, k=k, axis=axis, implementation=implementation, choice=choice
        )
    )


def _rank_traced(x, *, kind, k, axis, implementation, choice):
    xm = jnp.moveaxis(x, axis, -1)
    lead, n = xm.shape[:-1], xm.shape[-1]
    rows = int(np.prod(lead, dtype=np.int64))
    x2d = xm.reshape(rows, n)
    vals, idx = _select2d(x2d, k, kind, implementation, choice)
    vals = jnp.moveaxis(vals.reshape(*lead, k), -1, axis)
    idx = jnp.moveaxis(idx.reshape(*lead, k), -1, axis)
    return vals, idx


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2, 3, 4))
def _select2d(x2d, k, kind, implementation, choice):
    idx = _indices2d(x2d, k, kind, implementation, choice)
    return jnp.take_along_axis(x2d, idx, axis=-1), idx


@_select2d.defjvp
def _select2d_jvp(k, kind, implementation, choice, primals, tangents):
    (x2d,), (t,) = primals, tangents
    vals, idx = _select2d(x2d, k, kind, implementation, choice)
    if jnp.issubdtype(x2d.dtype, jnp.inexact):
        tv = jnp.take_along_axis(t, idx, axis=-1)
    else:
        tv = np.zeros(vals.shape, jax.dtypes.float0)
    return (vals, idx), (tv, np.zeros(idx.shape, jax.dtypes.float0))


def _indices2d(x2d, k, kind, implementation, choice):
    rows, n = x2d.shape
    if k == 0 or rows == 0:
        return jnp.zeros((rows, k), jnp.int32)
    if k == n or implementation == "xla":
        # k == n is a full sort on every backend (no selection left to do).
        return _xla_indices(x2d, k, kind)
    if implementation == "auto":
        if choice is None:  # float64, or a platform without the kernel (see _planned_choice)
            return _xla_indices(x2d, k, kind)
        gpu = functools.partial(_pallas_call, k=k, kind=kind, choice=choice, interpret=False)
        return lax.platform_dependent(
            x2d,
            cuda=gpu,
            rocm=gpu,
            default=functools.partial(_xla_indices, k=k, kind=kind),
        )
    # "pallas" and "triton" run the same kernels (Pallas' Triton backend); without a GPU
    # they run through interpret=True, which is how CPU tests exercise the kernel logic.
    interpret = jax.default_backend() not in _GPU_PLATFORMS
    return _pallas_call(x2d, k=k, kind=kind, choice=choice, interpret=interpret)


def _pallas_call(x2d, *, k, kind, choice, interpret):
    return _batched_pallas(k, kind, choice, interpret)(x2d)


@functools.cache
def _batched_pallas(k, kind, choice, interpret):
    """The GPU kernel selection with a vmap rule that folds the batch into rows."""

    @jax.custom_batching.custom_vmap
    def run(x2d):
        return select_indices_gpu(x2d, k, kind, choice, interpret=interpret)

    @run.def_vmap
    def _rule(axis_size, in_batched, x):
        del in_batched
        b, rows, n = x.shape
        out = run(x.reshape(b * rows, n))
        return out.reshape(b, rows, k), True

    return run


def topk(x, k, *, axis=-1, implementation="auto", choice=None):
    """The k largest entries along ``axis``, descending, ties to the lower index.

    Args:
      x: array of dtype float32, bfloat16, float16, float64 (XLA path), int32 or uint32;
        any shape with at least one axis.
      k: Python integer, ``0 ≤ k ≤ x.shape[axis]``.
      axis: selection axis.
      implementation: ``"auto"`` (per platform), ``"xla"``, ``"pallas"`` or ``"triton"``.
      choice: optional ``Choice`` forcing the kernel variant and launch parameters of the
        Pallas path (default: ``plan_rank``).

    Returns:
      ``(values, indices)``: ``x.shape`` with ``axis`` of length k; ``values`` has
      ``x.dtype``, ``indices`` int32 with ``values == take_along_axis(x, indices, axis)``.
      Order: −NaN < −Inf < … < −0.0 < +0.0 < … < +Inf < NaN. The JVP gathers the
      tangent at the selected indices.

    Raises:
      ValueError: unsupported dtype, k not an integer, ``k > n``, bad axis or
        implementation.
    """
    return _rank("top", x, k, axis, implementation, choice)


def bottomk(x, k, *, axis=-1, implementation="auto", choice=None):
    """The k smallest entries along ``axis``, ascending, ties to the lower index.

    Computed on the complemented order key (``~key``), never by negating ``x``. Arguments
    and returns as in ``topk``.
    """
    return _rank("bottom", x, k, axis, implementation, choice)


def midk(x, k, *, axis=-1, implementation="auto", choice=None):
    """The centred band: ascending ranks ``s … s + k − 1`` with ``s = ⌊(n − k)/2⌋``.

    Ranks count from 0 in the ascending total order (ties by index), so for n = 6, k = 3
    the band is ranks 1, 2, 3. Arguments and returns as in ``topk``.
    """
    return _rank("mid", x, k, axis, implementation, choice)


_DEVICES = {"auto": "auto", "cpu": "xla", "gpu": "triton", "cuda": "triton", "rocm": "triton"}


def topk2d(x, k, device="auto"):
    """Top-K of each row of a 2-D array (the seed's ``st.topk2d``).

    Args:
      x: (rows, cols) array-like (numpy accepted).
      k: ``0 ≤ k ≤ cols``.
      device: ``"auto"`` (per platform), ``"cpu"`` (XLA), ``"gpu"`` / ``"cuda"`` /
        ``"rocm"`` (the Triton kernel; needs that device).

    Returns:
      ``(values (rows, k), indices (rows, k) int32)``, as ``topk(x, k, axis=-1)``.
    """
    if device not in _DEVICES:
        raise ValueError(f"device={device!r} is not one of {tuple(_DEVICES)}")
    x = jnp.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"x must be 2-D (rows, cols), got shape {x.shape}")
    if device == "cpu":
        x = jax.device_put(x, jax.devices("cpu")[0])
    elif device != "auto":
        try:
            devs = jax.devices(device if device == "rocm" else "gpu")
        except RuntimeError as err:
            raise ValueError(f"device={device!r} is not available: {err}") from None
        x = jax.device_put(x, devs[0])
    return topk(x, k, implementation=_DEVICES[device])
