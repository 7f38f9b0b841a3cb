"""Hyperbolic network layers as pure ``init`` / ``apply`` pairs (``Layer``).

Each layer is ``init(key, ...) -> params`` (a dict of arrays) plus a pure
``apply(params, x, *, curvature)``, jit / vmap / grad-able, with ``curvature`` traced and
learnable. Parameterless maps (``beta_concat``, ``beta_split``, ``lorentz_activation``)
are plain functions.

* Poincaré ball, HNN (Ganea et al. 2018; ``layers.poincare``): ``mobius_linear``,
  ``poincare_mlr``, ``hyperbolic_cross_entropy``.
* Poincaré ball, HNN++ (Shimizu et al. 2021): ``unidirectional_mlr``, ``poincare_linear``,
  ``beta_concat``, ``beta_split`` (``layers.poincare``), ``poincare_conv1d``
  (``layers.conv``), ``poincare_attention`` (``layers.attention``).
* Hyperboloid (``layers.lorentz``): ``lorentz_linear`` (Chen et al. 2022), ``lorentz_norm``,
  ``lorentz_activation``.
"""

from spiraljax.geometry.layers._common import Layer
from spiraljax.geometry.layers.attention import poincare_attention
from spiraljax.geometry.layers.conv import poincare_conv1d
from spiraljax.geometry.layers.lorentz import lorentz_activation, lorentz_linear, lorentz_norm
from spiraljax.geometry.layers.poincare import (
    beta_concat,
    beta_split,
    hyperbolic_cross_entropy,
    mobius_linear,
    poincare_linear,
    poincare_mlr,
    unidirectional_mlr,
)

__all__ = [
    "Layer",
    "beta_concat",
    "beta_split",
    "hyperbolic_cross_entropy",
    "lorentz_activation",
    "lorentz_linear",
    "lorentz_norm",
    "mobius_linear",
    "poincare_attention",
    "poincare_conv1d",
    "poincare_linear",
    "poincare_mlr",
    "unidirectional_mlr",
]
