"""Z-space: token-free text → Poincaré ball, and barycenters (SPEC §4)."""

from spiraljax.zspace.barycenter import (
    BarycenterIntermediate,
    ZSpaceBarycenter,
    kl_divergence,
    z_space_barycenter,
)

__all__ = [
    "BarycenterIntermediate",
    "ZSpaceBarycenter",
    "kl_divergence",
    "z_space_barycenter",
]
