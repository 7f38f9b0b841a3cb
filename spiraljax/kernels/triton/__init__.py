"""Rank-K kernels written in Triton (``kernels.py``) and called through ``jax_triton``.

``select.py`` (importable anywhere: it imports triton only when a kernel runs) holds the
filtered Top-K / Bottom-K: launch parameters (``FilterParams``, ``plan_filter``) and the
JAX glue. On a GPU the kernels are compiled by ``triton`` and launched with
``jax_triton.triton_call`` (the ``gpu`` extra); on a CPU they run in Triton's interpreter.
"""

from spiraljax.kernels.triton.select import FilterParams, plan_filter, select_indices

__all__ = ["FilterParams", "plan_filter", "select_indices"]
