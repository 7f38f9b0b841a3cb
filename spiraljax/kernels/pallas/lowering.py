"""Lowering helpers shared by the Pallas Rank-K kernels (``radix.py``, ``sample.py``).

Masked loads and stores of one row, the signed view of unsigned key bits, and the Triton
compiler parameters of a ``Choice``. ``jax.experimental.pallas.triton`` is GPU-only and is
imported inside the helpers that need it (the kernels also trace under
``interpret=True`` on CPU machines).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.experimental import pallas as pl

from spiraljax.kernels.keys import INT32_MIN

I32 = jnp.int32

__all__ = ["I32", "compiler_params", "masked_load", "masked_store", "to_signed"]


def to_signed(u, nbits: int):
    """Unsigned key bits ``u`` (an int32 bit pattern) as the signed key of ``nbits`` bits:
    ``u ^ INT32_MIN`` for 32-bit keys, ``u − 2^(nbits−1)`` for 16-bit ones."""
    if nbits == 32:
        return u ^ INT32_MIN
    return u - np.int32(2 ** (nbits - 1))


def compiler_params(choice, interpret: bool) -> dict:
    """``pallas_call`` keyword arguments for ``choice``'s warps and stages (none when
    interpreting)."""
    if interpret:
        return {}
    from jax.experimental.pallas import triton as plt  # GPU-only, imported lazily

    return {"compiler_params": plt.CompilerParams(num_warps=choice.warps, num_stages=choice.stages)}


def masked_load(ref, row, start, size, n):
    """Masked load of ``size`` elements of one row from column ``start``."""
    from jax.experimental.pallas import triton as plt

    cols = start + lax.broadcasted_iota(I32, (size,), 0)
    mask = cols < n
    v = plt.load(ref.at[row, pl.ds(start, size)], mask=mask, other=0)
    return v, cols, mask


def masked_store(o_ref, row, pos, vals, mask):
    """Store ``vals`` at columns ``pos`` of one row where ``mask`` holds."""
    from jax.experimental.pallas import triton as plt

    plt.store(o_ref.at[row, pos], vals, mask=mask)
