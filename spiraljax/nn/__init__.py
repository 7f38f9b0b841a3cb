"""Hyperbolic networks (floor 3: imports only ``spiraljax.geometry``).

* every layer of ``spiraljax.geometry.layers`` (``mobius_linear``, ``poincare_mlr``, …),
  re-exported, so ``spiraljax.nn`` is the one place to find layers;
* ``hgcn_layer`` — one hyperbolic graph convolution on an edge list (Chami et al. 2019);
  ``hgcn_layer_dense`` — the same from an adjacency matrix (reference);
* ``hgcn`` — a stack of layers with one learnable curvature per layer
  (``hgcn_curvatures``); ``symmetrize`` and ``add_self_loops`` for edge lists.
"""

from spiraljax.geometry import layers as _layers
from spiraljax.geometry.layers import *  # noqa: F403 - re-exported as listed in its __all__
from spiraljax.nn.hgcn import (
    add_self_loops,
    hgcn,
    hgcn_curvatures,
    hgcn_layer,
    hgcn_layer_dense,
    symmetrize,
)

__all__ = [
    *_layers.__all__,
    "add_self_loops",
    "hgcn",
    "hgcn_curvatures",
    "hgcn_layer",
    "hgcn_layer_dense",
    "symmetrize",
]
