"""Z-space outputs feed the Hypergrad tape (SPEC §2 tapes) with the right shapes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from spiraljax.optim import Hypergrad
from spiraljax.zspace import LanguageWaveEncoder, z_space_barycenter


def test_encoded_text_feeds_hypergrad():
    enc = LanguageWaveEncoder(curvature=-1.0, temperature=0.8, dim=16)
    point = enc.encode_z_space("hyperbolic language without tokens")
    tape = Hypergrad(enc.curvature, 0.03, point.shape)
    tape = tape.accumulate_wave(point)
    np.testing.assert_allclose(np.asarray(tape.gradient), np.asarray(point), rtol=1e-7)
    # The complex wave (dim/2,) interleaves into the same (dim,) accumulator.
    wave = enc.encode_wave("hyperbolic language without tokens")
    assert wave.shape == (8,)
    tape2 = Hypergrad(-1.0, 0.03, (16,)).accumulate_wave(wave)
    np.testing.assert_allclose(
        np.asarray(tape2.gradient), np.stack([wave.real, wave.imag], -1).reshape(-1), rtol=1e-7
    )
    new_w, tape = tape.accumulate_pair(point, jnp.zeros(16, jnp.float32)).apply(
        jnp.zeros(16, jnp.float32)
    )
    assert new_w.shape == (16,) and bool(jnp.all(jnp.isfinite(new_w)))
    assert float(jnp.linalg.norm(new_w)) < 1
    assert float(jnp.abs(tape.gradient).max()) == 0.0


def test_encoded_batch_feeds_hypergrad_under_jit():
    enc = LanguageWaveEncoder(dim=8)
    points = enc.encode_batch(["one", "two words", "three little words"])

    @jax.jit
    def step(tape, pts, w):
        return tape.accumulate_wave(pts).apply(w)

    new_w, _ = step(
        Hypergrad(-1.0, 0.1, points.shape), points, jnp.zeros(points.shape, jnp.float32)
    )
    assert new_w.shape == (3, 8)


def test_barycenter_path_feeds_hypergrad():
    rng = np.random.default_rng(0)
    dens = jnp.asarray(rng.uniform(0.1, 1.0, size=(3, 2, 4)), jnp.float32)
    res = z_space_barycenter(jnp.asarray([1.0, 2.0, 0.5], jnp.float32), dens, entropy_weight=0.1)
    assert len(res.intermediates) == 5
    tape = Hypergrad(-1.0, 0.05, res.density.shape).accumulate_barycenter_path(res.intermediates)
    # Default weights: the seed's telescoping composition = the last stage, ρ*.
    np.testing.assert_allclose(np.asarray(tape.gradient), np.asarray(res.density), rtol=1e-6)
    stacked = jnp.stack([s.density for s in res.intermediates])
    avg = Hypergrad(-1.0, 0.05, (2, 4)).accumulate_barycenter_path(
        stacked, weights=jnp.full(5, 0.2)
    )
    np.testing.assert_allclose(np.asarray(avg.gradient), np.asarray(stacked.mean(0)), rtol=1e-6)
