"""spiraljax: hyperbolic (Z-space) geometry, Riemannian optax optimizers, implicit
hypergradients and exact Rank-K selection for JAX.

Subpackages load on first attribute access, so ``import spiraljax`` stays light and
never imports GPU-only modules:

* ``spiraljax.geometry`` / ``spiraljax.poincare`` / ``spiraljax.lorentz`` — Poincaré-ball and
  Lorentz (hyperboloid) math, layers.
* ``spiraljax.nn`` — hyperbolic network layers: the geometry layers and HGCN graph convolutions.
* ``spiraljax.optim`` — Riemannian optax transforms, tapes, the topos guard transform.
* ``spiraljax.implicit`` / ``spiraljax.solvers`` — implicit and unrolled hypergradients.
* ``spiraljax.zspace`` — token-free text encoder and Z-space barycenters.
* ``spiraljax.kernels`` — exact TopK / BottomK / MidK with per-backend kernels.
* ``spiraljax.spiralk`` — the SpiralK heuristics language and self-rewrite store.
* ``spiraljax.topos`` — the open Cartesian topos guard.
* ``spiraljax.distributed`` — mesh layouts, sharded Rank-K, gossip training.
* ``spiraljax.interop`` — zero-copy DLPack exchange with PyTorch.
* ``spiraljax.embedding`` / ``spiraljax.data`` — Poincaré embeddings of hierarchies, WordNet data.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0.dev0"

_SUBMODULES = {
    "geometry": "spiraljax.geometry",
    "poincare": "spiraljax.geometry.poincare",
    "lorentz": "spiraljax.geometry.lorentz",
    "nn": "spiraljax.nn",
    "optim": "spiraljax.optim",
    "implicit": "spiraljax.implicit",
    "solvers": "spiraljax.implicit.solvers",
    "zspace": "spiraljax.zspace",
    "kernels": "spiraljax.kernels",
    "spiralk": "spiraljax.spiralk",
    "topos": "spiraljax.topos",
    "distributed": "spiraljax.distributed",
    "interop": "spiraljax.interop",
    "embedding": "spiraljax.embedding",
    "data": "spiraljax.data",
}

# Rank-K ops re-exported at the top level (see docs/concepts/rank-k.md), resolved lazily.
_KERNEL_NAMES = {"topk", "bottomk", "midk", "topk2d", "plan_rank", "DeviceCaps", "Choice"}

__all__ = [*sorted(_SUBMODULES), *sorted(_KERNEL_NAMES), "__version__"]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        module = importlib.import_module(_SUBMODULES[name])
        globals()[name] = module
        return module
    if name in _KERNEL_NAMES:
        value = getattr(importlib.import_module("spiraljax.kernels"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'spiraljax' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
