r"""Poincaré convolution (HNN++, Shimizu et al. 2021, §3.4), 1-D over a sequence axis.

Each output position t β-concatenates the K points of its receptive field
x_{t·s}, x_{t·s+δ}, …, x_{t·s+(K−1)δ} (stride s, dilation δ; zero padding is padding with
the origin) into one point of B^{K·C_in} and applies the Poincaré fully connected layer
(``poincare_linear``) to it:

y_t = F(β-concat(x_{t·s}, …, x_{t·s+(K−1)δ}); Z, r) ∈ B^{C_out}.

Only the 1-D form (sequences ``(..., L, C_in)``) is provided; a 2-D kernel is the same
β-concatenation over a K_h × K_w window.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from spiraljax.geometry import poincare as pm
from spiraljax.geometry.guards import ball_eps
from spiraljax.geometry.layers._common import (
    ArrayLike,
    Layer,
    Params,
    _check_features,
    _check_float_dtype,
    _check_last_axis,
    _check_param_shape,
    _check_params,
    _prepare,
    beta_ratio,
    fused,
)
from spiraljax.geometry.layers.poincare import _poincare_fc_core

__all__ = ["poincare_conv1d"]


def _poincare_conv1d_init(
    key: jax.Array,
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    *,
    curvature: ArrayLike = -1.0,
    dtype: Any = jnp.float32,
) -> Params:
    """``z`` (C_out, K, C_in) ~ N(0, 1/(2·K·C_in·C_out)) and ``r`` (C_out,) = 0 (HNN++'s code)."""
    _check_features(in_channels=in_channels, out_channels=out_channels, kernel_size=kernel_size)
    dtype = _check_float_dtype(dtype)
    del curvature
    shape = (out_channels, kernel_size, in_channels)
    std = float((2 * kernel_size * in_channels * out_channels) ** -0.5)
    return {"z": std * jax.random.normal(key, shape, dtype), "r": jnp.zeros((out_channels,), dtype)}


def _padding(padding: Any, span: int) -> tuple[int, int]:
    if padding == "valid":
        return 0, 0
    if padding == "same":
        return span // 2, span - span // 2
    if isinstance(padding, int | np.integer) and not isinstance(padding, bool) and padding >= 0:
        return int(padding), int(padding)
    if (
        isinstance(padding, tuple | list)
        and len(padding) == 2
        and all(isinstance(p, int | np.integer) and p >= 0 for p in padding)
    ):
        return int(padding[0]), int(padding[1])
    raise ValueError(
        f"padding={padding!r} must be 'valid', 'same', an int ≥ 0 or a pair (left, right)"
    )


def _conv1d_core(x, z, r, c, *, kernel, stride, dilation, pad, length, eps):
    channels = x.shape[-1]
    u = pm._logmap0(x, c) * beta_ratio(kernel * channels, channels)
    widths = [(0, 0)] * (u.ndim - 2) + [pad, (0, 0)]
    u = jnp.pad(u, widths)  # the origin pads: log₀(0) = 0
    stop = (length - 1) * stride + 1
    windows = [u[..., k * dilation : k * dilation + stop : stride, :] for k in range(kernel)]
    v = jnp.concatenate(windows, axis=-1)  # (..., L_out, K·C_in), block k = tap k
    point = pm._expmap0(v, c, eps)
    return _poincare_fc_core(point, z.reshape(z.shape[0], -1), r, c, eps)


def _poincare_conv1d_apply(
    params: Params,
    x: ArrayLike,
    *,
    curvature: ArrayLike = -1.0,
    stride: int = 1,
    padding: str | int | tuple[int, int] = "valid",
    dilation: int = 1,
) -> jax.Array:
    r"""Poincaré 1-D convolution (Shimizu et al. 2021, §3.4; module docstring):

    y_t = poincare_linear(β-concat(x_{t·s + kδ} for k = 0 … K−1)),

    with ``params["z"][:, k, :]`` the weights of tap k. At c = 0 it is a Euclidean
    convolution of the β-scaled inputs (then the factor 2 of ``poincare_linear``).

    Args:
      params: ``{"z": (C_out, K, C_in), "r": (C_out,)}``.
      x: sequences of points ``(..., L, C_in)``.
      stride, dilation: positive ints.
      padding: ``"valid"`` (none), ``"same"`` (δ(K − 1) origin points split left/right, so
        L_out = L at stride 1), an int (both sides) or ``(left, right)``.

    Returns:
      Points ``(..., L_out, C_out)``, L_out = ⌊(L + pads − δ(K − 1) − 1)/s⌋ + 1.
    """
    layer = "poincare_conv1d"
    _check_params(params, ("z", "r"), layer)
    z_shape = tuple(np.shape(params["z"]))
    if len(z_shape) != 3:
        raise ValueError(f"{layer} params['z'] must have shape (C_out, K, C_in), got {z_shape}")
    c_out, kernel, c_in = z_shape
    _check_param_shape(layer, "r", params["r"], (c_out,))
    _check_features(stride=stride, dilation=dilation)
    if np.ndim(x) < 2:
        raise ValueError(f"x must have shape (..., L, C_in), got {np.shape(x)}")
    _check_last_axis(layer, "x", x, c_in, f" input channels (params['z'] has shape {z_shape})")
    span = dilation * (kernel - 1)
    pad = _padding(padding, span)
    seq = int(np.shape(x)[-2])
    length = (seq + sum(pad) - span - 1) // stride + 1
    if length < 1:
        raise ValueError(
            f"x has sequence length {seq}, shorter than the receptive field {span + 1} "
            f"(kernel_size={kernel}, dilation={dilation}, padding={pad})"
        )
    (x, z, r), c, out = _prepare(curvature, ("x", x), ("z", params["z"]), ("r", params["r"]))
    static = (
        ("kernel", kernel),
        ("stride", int(stride)),
        ("dilation", int(dilation)),
        ("pad", pad),
        ("length", length),
        ("eps", ball_eps(out)),
    )
    return fused(_conv1d_core, out, static, x, z, r, c)


#: HNN++ Poincaré convolution over a sequence axis (Shimizu et al. 2021 §3.4).
poincare_conv1d = Layer(_poincare_conv1d_init, _poincare_conv1d_apply)
