"""Test-wide settings: float64 available for references, hypothesis without deadlines.

x64 is enabled so float64 paths and references can be tested; every test therefore
creates arrays with an explicit dtype. Module-level random generators are rewound before
every test (order-independent inputs).
"""

import copy
import os

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, settings

jax.config.update("jax_enable_x64", True)

# Without a GPU the filtered Triton Rank-K kernels run in Triton's interpreter, which
# needs this set before anything imports triton.
if "TRITON_INTERPRET" not in os.environ and jax.default_backend() == "cpu":
    os.environ["TRITON_INTERPRET"] = "1"

settings.register_profile(
    "spiraljax",
    deadline=None,
    max_examples=int(os.environ.get("SPIRALJAX_HYPOTHESIS_EXAMPLES", "40")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)
settings.load_profile("spiraljax")


_RNG_STATES: dict = {}


@pytest.fixture(autouse=True)
def _module_generators_start_fresh(request):
    """A module-level ``RNG`` / ``rng`` generator is rewound before each of its tests, so a
    test's inputs do not depend on which tests ran before it in the same process
    (pytest-xdist hands tests to workers in a different order every run)."""
    module = getattr(request, "module", None)
    for name in ("RNG", "rng"):
        gen = getattr(module, name, None)
        if isinstance(gen, np.random.Generator):
            key = (module.__name__, name)
            state = _RNG_STATES.setdefault(key, copy.deepcopy(gen.bit_generator.state))
            gen.bit_generator.state = copy.deepcopy(state)
    yield
