"""Hyperbolic graph networks (floor 3: imports only ``spiraljax.geometry``).

* ``hgcn_layer`` — one hyperbolic graph convolution on an edge list (Chami et al. 2019);
  ``hgcn_layer_dense`` — the same from an adjacency matrix (reference);
* ``hgcn`` — a stack of layers with one learnable curvature per layer
  (``hgcn_curvatures``); ``symmetrize`` and ``add_self_loops`` for edge lists.
"""

from spiraljax.nn.hgcn import (
    add_self_loops,
    hgcn,
    hgcn_curvatures,
    hgcn_layer,
    hgcn_layer_dense,
    symmetrize,
)

__all__ = [
    "add_self_loops",
    "hgcn",
    "hgcn_curvatures",
    "hgcn_layer",
    "hgcn_layer_dense",
    "symmetrize",
]
