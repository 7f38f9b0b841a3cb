"""Pallas Rank-K kernels (radix select on order-preserving keys).

Only ``jax.experimental.pallas`` is imported here; it imports on CPU machines too, where
the kernels run through ``interpret=True``. The Triton compiler parameters are imported
lazily when a kernel is lowered for a GPU.
"""

from spiraljax.kernels.pallas.radix import select_indices_pallas

__all__ = ["select_indices_pallas"]
