"""Tape dtypes follow the weights (item 10) and apply_updates names mismatched shapes (item 5)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spiraljax import optim
from spiraljax.geometry import poincare as pm


@pytest.mark.parametrize("tape", ["Hypergrad", "Realgrad"])
def test_float64_weights_on_a_default_tape_stay_float64(tape):
    with jax.enable_x64(True):
        t = (
            optim.Hypergrad(-1.0, 0.1, (3, 2))
            if tape == "Hypergrad"
            else optim.Realgrad(0.1, (3, 2))
        )
        w = jnp.full((3, 2), 0.1, jnp.float64) + 1e-12  # a digit float32 cannot hold
        t = t.accumulate_pair(jnp.full((3, 2), 0.3), jnp.zeros((3, 2)))
        new, _ = t.apply(w)
        assert new.dtype == jnp.float64
        t64 = (
            optim.Hypergrad(-1.0, 0.1, (3, 2), dtype=jnp.float64)
            if tape == "Hypergrad"
            else optim.Realgrad(0.1, (3, 2), dtype=jnp.float64)
        )
        want, _ = t64.accumulate_pair(jnp.full((3, 2), 0.3), jnp.zeros((3, 2))).apply(w)
        np.testing.assert_allclose(np.asarray(new), np.asarray(want), rtol=1e-7)


def test_float32_weights_keep_float32():
    new, _ = optim.Hypergrad(-1.0, 0.1, (2,)).apply(jnp.array([0.1, 0.2], jnp.float32))
    assert new.dtype == jnp.float32


def test_apply_updates_names_mismatched_shapes():
    with pytest.raises(ValueError, match="updates has coordinate axis of size 3"):
        optim.apply_updates(jnp.zeros((3, 2)), jnp.zeros((3, 3)))
    with pytest.raises(ValueError, match="updates of shape"):
        optim.apply_updates(jnp.zeros((3, 2)), jnp.zeros((4, 2)))


def test_frechet_mean_rejects_negative_or_zero_weights():
    xs = jnp.asarray(np.random.default_rng(0).uniform(-0.2, 0.2, (3, 2)), jnp.float32)
    with pytest.raises(ValueError, match="weights=.* must be finite and >= 0"):
        pm.frechet_mean(xs, jnp.array([-1.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match="positive sum"):
        pm.frechet_mean(xs, jnp.zeros(3))
    assert np.isfinite(np.asarray(pm.frechet_mean(xs, jnp.array([1.0, 0.0, 2.0])))).all()
