"""Which GPU kernel family runs a planned ``Choice``.

``select_indices_gpu`` routes on the ``Choice``: the filtered Triton kernels
(``triton/select.py``) when ``choice.family == 1`` and they plan for the problem; else the
sampled single-read path
(``pallas/sample.py``) when ``choice.sample`` is set and applies to the problem, with
the radix select (``pallas/radix.py``) as its fallback and as the path for everything
else. Another kernel family plugs in as one more branch here. Kernel modules are
imported on first use, so planning and ``import spiraljax`` load no Pallas code.
"""

from __future__ import annotations

import dataclasses
import functools


def select_indices_gpu(x2d, k: int, kind: str, choice, *, interpret: bool):
    """Ordered indices of the selected entries of each row of ``x2d`` (rows, n).

    Contract of ``xla.select_indices`` (Top-K descending, Bottom-K / Mid-K ascending,
    ties by increasing index); ``0 < k < n`` (the caller handles the rest).
    """
    from spiraljax.kernels.pallas import radix

    n = x2d.shape[1]
    if choice.family == 1:
        from spiraljax.kernels.triton import select as filtered

        if kind == "mid" and filtered.plan_mid(n, k) is not None:
            return filtered.select_mid_indices(x2d, k, interpret=interpret)
        if kind != "mid" and filtered.plan_filter(n, k) is not None:
            return filtered.select_indices(x2d, k, kind, interpret=interpret)
    if choice.sample:
        from spiraljax.kernels.pallas import sample

        if sample.applicable(n, k, kind, choice.sample):
            fallback = functools.partial(
                radix.select_indices_radix,
                k=k,
                kind=kind,
                choice=dataclasses.replace(choice, sample=0),
                interpret=interpret,
            )
            return sample.select_indices_sampled(
                x2d, k, kind, choice, interpret=interpret, fallback=fallback
            )
    return radix.select_indices_radix(x2d, k, kind, choice, interpret=interpret)
