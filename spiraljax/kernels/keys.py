"""Order-preserving integer keys for the Rank-K total order.

The Rank-K total order (docs/concepts/rank-k.md) is

    −NaN < −Inf < … < −0.0 < +0.0 < … < +Inf < NaN,

ties broken by the lower index. ``signed_key`` maps every supported dtype to an int32
array whose *signed* integer order is exactly that order (with all NaNs of one sign
collapsed onto one key, so NaNs tie and fall back to the index). For IEEE floats this is
the classic sign-magnitude flip used by radix sorts (and by XLA's u64 TopK packing):

    b = bits(x) as signed int;  key = b            if b ≥ 0
                                key = b ^ 0x7F…F   if b < 0   (flip the magnitude bits)

Negative floats then count down from −0.0 (key −1) to −Inf, positive floats count up
from +0.0 (key 0). int32 keys are the values themselves; uint32 keys are ``x ^ 0x8000_0000``
read as int32. 16-bit floats keep 16-bit keys (sign-extended into int32), so a radix
select needs only 16 bits for them.

``~key`` (bitwise not, i.e. ``−key − 1``) reverses the order exactly and stays in range,
which is how Bottom-K and Mid-K are built — never by negating the input, which is wrong
for integers (−INT_MIN overflows) and for NaN (−NaN is still NaN).

Every function here uses only element-wise ``lax`` ops (bitcasts, shifts, xor, select),
so the same code runs in the XLA path and inside the Pallas kernels.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax

INT32_MIN = np.int32(-(2**31))
INT32_MAX = np.int32(2**31 - 1)

#: dtypes accepted by the Rank-K ops (float64 only where x64 is enabled; CPU/XLA path).
SUPPORTED_DTYPES = tuple(
    np.dtype(d)
    for d in (jnp.float32, jnp.bfloat16, jnp.float16, jnp.float64, jnp.int32, jnp.uint32)
)


def key_bits(dtype) -> int:
    """Number of significant key bits for ``dtype`` (16, 32 or 64)."""
    dtype = np.dtype(dtype)
    if dtype == np.float64:
        return 64
    return 16 if dtype.itemsize == 2 else 32


def key_range(dtype) -> tuple[int, int]:
    """Inclusive (min, max) of ``signed_key`` values for ``dtype``."""
    b = key_bits(dtype)
    return -(2 ** (b - 1)), 2 ** (b - 1) - 1


def signed_key(x):
    """Signed integer key of ``x`` whose integer order is the Rank-K total order.

    Args:
      x: array of a supported dtype (see ``SUPPORTED_DTYPES``).

    Returns:
      int32 array (int64 for float64 inputs) of the same shape. NaNs map to the extreme
      keys (``+NaN`` → max, ``−NaN`` → min) whatever their payload.
    """
    dtype = np.dtype(x.dtype)
    if dtype == np.int32:
        return x
    if dtype == np.uint32:
        return lax.bitcast_convert_type(x ^ np.uint32(0x80000000), jnp.int32)
    if dtype == np.float64:
        b = lax.bitcast_convert_type(x, jnp.int64)
        mag = np.int64(2**63 - 1)
        lo, hi = np.int64(-(2**63)), np.int64(2**63 - 1)
    elif dtype == np.float32:
        b = lax.bitcast_convert_type(x, jnp.int32)
        mag, lo, hi = INT32_MAX, INT32_MIN, INT32_MAX
    elif dtype in (np.dtype(jnp.bfloat16), np.dtype(jnp.float16)):
        b = lax.bitcast_convert_type(x, jnp.int16).astype(jnp.int32)  # sign-extends
        mag, lo, hi = np.int32(0x7FFF), np.int32(-(2**15)), np.int32(2**15 - 1)
    else:
        raise ValueError(f"dtype={dtype} is not supported by Rank-K")
    key = jnp.where(b < 0, b ^ mag, b)
    # x != x is the NaN test that lowers everywhere (also inside Triton kernels).
    nan = x != x
    return jnp.where(nan, jnp.where(b < 0, lo, hi), key)


def kind_key(x, kind: str):
    """``signed_key`` oriented so that larger keys are *selected first* for ``kind``.

    ``"top"`` keeps the order; ``"bottom"`` and ``"mid"`` (whose output is ascending)
    flip it with ``~key``.
    """
    key = signed_key(x)
    return key if kind == "top" else ~key


def float32_carrier(key):
    """float32 whose IEEE *total order* equals the int32 order of ``key``.

    The map is its own inverse (``signed_key`` of the result is ``key`` again, NaN bit
    patterns included). It lets the XLA CPU TopK runtime — which compares float32 by
    total-order integer keys with ties to the lower index — select on arbitrary int32
    keys at float32 speed (``lax.top_k`` on int32 falls back to a full sort on CPU).
    """
    b = jnp.where(key < 0, key ^ INT32_MAX, key)
    return lax.bitcast_convert_type(b, jnp.float32)
