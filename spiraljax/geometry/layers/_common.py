"""What every layer module shares: the ``Layer`` pair, argument checks, β-function ratios."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from spiraljax.geometry.guards import as_float, curvature_to_c, is_concrete

ArrayLike = Any
Params = dict[str, jax.Array]

#: Precision of every matrix product in the layers: full float32 products on GPU/TPU too
#: (TF32 / bf16 passes would wreck the cancellations the formulas rely on).
HIGHEST = jax.lax.Precision.HIGHEST


class Layer(NamedTuple):
    """A layer as two pure functions; calling the layer calls ``apply``."""

    init: Callable[..., Any]
    apply: Callable[..., Any]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.apply(*args, **kwargs)


def _check_features(**sizes: int) -> None:
    for name, n in sizes.items():
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"{name}={n!r} must be a positive int")


def _check_float_dtype(dtype: Any) -> jnp.dtype:
    dtype = jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(f"dtype={dtype} must be a floating dtype")
    return dtype


def _check_params(params: Any, keys: tuple[str, ...], layer: str) -> None:
    if not isinstance(params, dict) or not all(k in params for k in keys):
        got = sorted(params) if isinstance(params, dict) else type(params).__name__
        raise ValueError(f"{layer} params must be a dict with keys {keys}, got {got}")


def _check_param_shape(layer: str, name: str, value: Any, shape: tuple[int, ...]) -> None:
    if tuple(np.shape(value)) != tuple(shape):
        raise ValueError(
            f"{layer} params[{name!r}] has shape {tuple(np.shape(value))}, expected {tuple(shape)}"
        )


def _check_last_axis(layer: str, name: str, value: Any, size: int, what: str = "") -> None:
    """The coordinate axis of ``value`` must have ``size`` entries (``what`` explains it)."""
    shape = np.shape(value)
    got = shape[-1] if shape else None
    if got != size:
        raise ValueError(
            f"{name} has coordinate axis of size {got}, but {layer} expects {size}{what}"
        )


def _prepare(curvature: ArrayLike, *named: tuple[str, Any]):
    """Cast ``(name, value)`` pairs to one working float dtype; returns (arrays, c, out)."""
    arrays, out, work = as_float(*named)
    return arrays, curvature_to_c(curvature, work), out


def _concrete_positive(name: str, value: Any) -> None:
    if is_concrete(value) and np.any(np.asarray(value, dtype=np.float64) <= 0):
        raise ValueError(f"{name}={np.asarray(value)} must be > 0")


def log_beta_half(n: int) -> float:
    """log B(n/2, 1/2) = log Γ(n/2) + log Γ(1/2) − log Γ((n+1)/2)."""
    return math.lgamma(n / 2) + math.lgamma(0.5) - math.lgamma((n + 1) / 2)


def beta_ratio(n: int, n_i: int) -> float:
    """β_n / β_{n_i} with β_m = B(m/2, 1/2): the β-concatenation scale of an n_i-block in an
    n-vector (Shimizu et al. 2021, §3.3); its inverse is the β-split scale."""
    return math.exp(log_beta_half(n) - log_beta_half(n_i))


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def fused(core: Callable[..., Any], out: Any, static: tuple, *arrays: Any) -> Any:
    """Run a layer's math core as one jitted computation; cast every output to ``out``.

    Eager calls (and eager gradients) then compile once per shape instead of dispatching
    dozens of small kernels; inside a user's jit it simply inlines. ``static`` holds the
    hashable ``(name, value)`` keyword arguments of ``core``.
    """
    return jax.tree.map(lambda a: a.astype(out), core(*arrays, **dict(static)))
