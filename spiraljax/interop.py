"""Zero-copy array exchange with PyTorch through DLPack (see docs/concepts/interop.md).

``from_torch(t)`` and ``to_torch(x)`` share memory whenever both libraries can describe
the buffer; the cases where a copy cannot be avoided are listed below, and ``copy=False``
turns each of them into an error instead of a silent copy.

When a copy happens (``copy=None``, the default, allows it):

* the torch tensor is a strided view that is not a permutation of a compact buffer
  (e.g. ``t[:, 1:]``): JAX only imports compact buffers, so the view is made contiguous
  first;
* the buffer's start is not aligned as XLA requires on the CPU (e.g. ``t[1:]`` of a small
  tensor): JAX copies on import;
* ``copy=True`` asks for one.

Always refused (``ValueError``), because data would be lost or changed silently:

* 64-bit dtypes (float64, int64, uint64, complex128) while ``jax_enable_x64`` is off —
  JAX would narrow them to 32 bits;
* tensors that require grad (detach them first: gradients do not cross libraries);
* dtypes JAX has no counterpart for.

torch is an optional dependency, imported only when these functions are called.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

__all__ = ["from_torch", "to_torch"]

_WIDE_DTYPES = ("float64", "int64", "uint64", "complex128")


def _torch():
    try:
        import torch
    except ImportError as err:  # pragma: no cover - exercised only without torch
        raise ImportError(
            "spiraljax.interop needs PyTorch: pip install torch (it is an optional dependency)"
        ) from err
    return torch


def _check_copy(copy: bool | None) -> None:
    if copy not in (None, True, False):
        raise ValueError(f"copy={copy!r} must be None, True or False")


def _dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


def from_torch(t: Any, *, copy: bool | None = None) -> jax.Array:
    """Return a ``jax.Array`` viewing the memory of the torch tensor ``t``.

    Args:
      t: a ``torch.Tensor`` on the CPU or a CUDA device; any rank, any dtype both libraries
        support (bool, int8…int64, uint8…uint64, float16, bfloat16, float32, float64,
        complex64, complex128).
      copy: ``None`` shares memory when possible and copies otherwise (see the module
        docstring); ``False`` raises ``ValueError`` where a copy would be needed; ``True``
        always copies.

    Returns:
      A ``jax.Array`` on the device matching ``t.device``, with ``t``'s shape and dtype.
      When memory is shared, writes to ``t`` are visible through the result: do not mutate
      ``t`` while the array is in use.
    """
    torch = _torch()
    _check_copy(copy)
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"t must be a torch.Tensor, got {type(t).__name__}")
    if t.requires_grad:
        raise ValueError(
            "t requires grad; call t.detach() first (autograd graphs do not cross libraries)"
        )
    name = _dtype_name(t.dtype)
    if name in _WIDE_DTYPES and not jax.config.jax_enable_x64:
        raise ValueError(
            f"t has dtype {name} but jax_enable_x64 is off, so JAX would narrow it to 32 bits; "
            "enable x64 (jax.config.update('jax_enable_x64', True)) or convert t first"
        )
    if copy is True:
        t = t.clone(memory_format=torch.contiguous_format)
    elif not _is_compact(t):
        if copy is False:
            raise ValueError(
                f"t has strides {tuple(t.stride())} for shape {tuple(t.shape)}, which JAX cannot "
                "import without a copy; pass copy=None to allow one or call t.contiguous()"
            )
        t = t.contiguous()
    try:
        x = jax.dlpack.from_dlpack(t)
    except (TypeError, RuntimeError, BufferError) as err:
        raise ValueError(f"t with dtype {name} cannot be exchanged through DLPack: {err}") from err
    if copy is False and t.numel() > 0 and x.unsafe_buffer_pointer() != t.data_ptr():
        raise ValueError(
            f"importing t (dtype {name}, shape {tuple(t.shape)}) needed a copy, probably because "
            "its start is not aligned as XLA requires; pass copy=None to allow it"
        )
    return x


def to_torch(x: Any, *, copy: bool | None = None) -> Any:
    """Return a ``torch.Tensor`` viewing the memory of the ``jax.Array`` ``x``.

    Args:
      x: a ``jax.Array`` on one device (CPU or CUDA); a NumPy array is accepted and goes
        through ``jax.numpy.asarray`` first (that step copies).
      copy: ``None`` or ``False`` share memory (JAX arrays are always compact, so exporting
        never needs a copy); ``True`` returns an independent copy.

    Returns:
      A ``torch.Tensor`` with ``x``'s shape and dtype on the matching device. JAX arrays
      are immutable: do not write into a tensor that shares memory with one.
    """
    torch = _torch()
    _check_copy(copy)
    if isinstance(x, np.ndarray):
        x = jax.numpy.asarray(x)
    if not isinstance(x, jax.Array):
        raise ValueError(f"x must be a jax.Array, got {type(x).__name__}")
    if len(x.devices()) != 1:
        raise ValueError(
            f"x is sharded over {len(x.devices())} devices; DLPack exchanges one buffer — "
            "gather it first (e.g. jax.device_get or a replicated sharding)"
        )
    t = torch.from_dlpack(x)
    return t.clone() if copy else t


def _is_compact(t: Any) -> bool:
    """True when ``t``'s strides describe a permutation of a dense row-major buffer."""
    if t.numel() <= 1:
        return True
    dims = sorted((s, n) for s, n in zip(t.stride(), t.shape, strict=True) if n != 1)
    expected = 1
    for stride, size in dims:
        if stride != expected:
            return False
        expected *= size
    return True
