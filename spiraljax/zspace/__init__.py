"""Z-space: token-free text → Poincaré ball, projector, and barycenters.

See docs/concepts/zspace.md.

* ``LanguageWaveEncoder`` — code points → the seed's signal → FFT → fixed-width
  spectrum → ``expmap0`` (``encode_wave``, ``encode_z_space``, ``encode_batch``, and the
  jit/vmap-able core ``z_space_from_codes`` on padded code points + lengths).
* ``ZSpaceProjector`` — x + σ(exp₀(x) − x).
* ``z_space_barycenter`` — exact entropic KL barycenter of densities, with energies and
  5 loss-monotone intermediates; ``hyperbolic_barycenter`` — Fréchet mean /
  gyro-midpoint of points in the ball (e.g. encoded texts).
"""

from spiraljax.zspace.barycenter import (
    INTERPOLATIONS,
    BarycenterIntermediate,
    ZSpaceBarycenter,
    hyperbolic_barycenter,
    kl_divergence,
    z_space_barycenter,
)
from spiraljax.zspace.encoder import (
    LanguageWaveEncoder,
    TextInputError,
    bucket_length,
    pad_codes,
    text_to_codes,
    wave_from_codes,
    z_space_from_codes,
)
from spiraljax.zspace.projector import ZSpaceProjector, zspace_project

__all__ = [
    "INTERPOLATIONS",
    "BarycenterIntermediate",
    "LanguageWaveEncoder",
    "TextInputError",
    "ZSpaceBarycenter",
    "ZSpaceProjector",
    "bucket_length",
    "hyperbolic_barycenter",
    "kl_divergence",
    "pad_codes",
    "text_to_codes",
    "wave_from_codes",
    "z_space_barycenter",
    "z_space_from_codes",
    "zspace_project",
]
