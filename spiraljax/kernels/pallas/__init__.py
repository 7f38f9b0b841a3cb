"""Pallas Rank-K kernels: radix select (``radix.py``) and sampled select (``sample.py``)
on order-preserving keys, with their shared lowering helpers (``lowering.py``).

Only ``jax.experimental.pallas`` is imported here; it imports on CPU machines too, where
the kernels run through ``interpret=True``. The Triton compiler parameters are imported
lazily when a kernel is lowered for a GPU. ``spiraljax.kernels.dispatch`` chooses the
kernel for a ``Choice``.
"""
