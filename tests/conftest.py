"""Test-wide settings: float64 available for references, hypothesis without deadlines.

x64 is enabled so float64 paths and references can be tested; every test therefore
creates arrays with an explicit dtype.
"""

import os

import jax
from hypothesis import HealthCheck, settings

jax.config.update("jax_enable_x64", True)

settings.register_profile(
    "spiraljax",
    deadline=None,
    max_examples=int(os.environ.get("SPIRALJAX_HYPOTHESIS_EXAMPLES", "40")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)
settings.load_profile("spiraljax")
