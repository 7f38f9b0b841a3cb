import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import Mesh

from spiraljax.distributed import gossip


def _least_squares(seed=0, n=64, d=3):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, d))
    # very different shards: the local minimisers disagree
    b = a @ np.array([1.0, -2.0, 0.5]) + np.repeat(np.linspace(-3, 3, 8), n // 8)
    return jnp.asarray(a), jnp.asarray(b)


def _loss(w, shard):
    a, b = shard
    return 0.5 * jnp.mean((a @ w - b) ** 2)


def test_ring_gossip_with_tracking_reaches_the_centralised_minimiser():
    a, b = _least_squares()
    w_star = np.linalg.lstsq(np.asarray(a), np.asarray(b), rcond=None)[0]
    res = gossip(
        _loss,
        jnp.zeros(3, jnp.float64),
        (a, b),
        optax.sgd(0.1),
        damping=0.5,
        tolerance=1e-9,
        max_rounds=5000,
    )
    assert bool(res.converged)
    assert res.params.shape == (8, 3)
    np.testing.assert_allclose(np.asarray(res.consensus), w_star, atol=1e-7)
    for row in np.asarray(res.params):
        np.testing.assert_allclose(row, w_star, atol=1e-7)


def test_disagreement_decays_with_rounds():
    a, b = _least_squares(1)
    dis = []
    for rounds in (2, 20, 200):
        res = gossip(
            _loss, jnp.zeros(3), (a, b), optax.sgd(0.05), tolerance=1e-12, max_rounds=rounds
        )
        assert int(res.rounds) == rounds
        dis.append(float(res.disagreement))
    assert dis[0] > dis[1] > dis[2]


def test_torus_and_no_tracking_variants():
    a, b = _least_squares(2)
    w_star = np.linalg.lstsq(np.asarray(a), np.asarray(b), rcond=None)[0]
    mesh = Mesh(np.asarray(jax.devices(), dtype=object).reshape(2, 4), ("a", "b"))
    res = gossip(
        _loss,
        jnp.zeros(3),
        (a, b),
        optax.sgd(0.1),
        mesh=mesh,
        topology="torus",
        tolerance=1e-9,
        max_rounds=5000,
    )
    np.testing.assert_allclose(np.asarray(res.consensus), w_star, atol=1e-6)
    # without tracking a constant step leaves a small bias, but devices still agree closely
    plain = gossip(
        _loss,
        jnp.zeros(3),
        (a, b),
        optax.sgd(0.01),
        tracking=False,
        tolerance=1e-10,
        max_rounds=3000,
    )
    assert float(plain.disagreement) < 0.2
    np.testing.assert_allclose(np.asarray(plain.consensus), w_star, atol=0.1)


def test_gossip_rejects_bad_arguments():
    a, b = _least_squares()
    with pytest.raises(ValueError, match="damping"):
        gossip(_loss, jnp.zeros(3), (a, b), optax.sgd(0.1), damping=1.5)
    with pytest.raises(ValueError, match="divisible"):
        gossip(_loss, jnp.zeros(3), (a[:63], b[:63]), optax.sgd(0.1))
    with pytest.raises(ValueError, match="topology"):
        gossip(_loss, jnp.zeros(3), (a, b), optax.sgd(0.1), topology="star")
    with pytest.raises(ValueError, match="2-D mesh"):
        gossip(_loss, jnp.zeros(3), (a, b), optax.sgd(0.1), topology="torus")


def test_gossip_on_the_poincare_ball_mixes_by_gyro_midpoint():
    from spiraljax.geometry import poincare
    from spiraljax.optim import riemannian_sgd

    rng = np.random.default_rng(4)
    targets = jnp.asarray(poincare.project(jnp.asarray(rng.normal(size=(16, 2)) * 0.3)))

    def loss(p, shard):
        return jnp.mean(poincare.dist(p, shard) ** 2)

    # centralised Fréchet mean of all targets: the minimiser of the global loss
    w_star = poincare.frechet_mean(targets, axis=0, maxiter=500)
    res = gossip(
        loss,
        jnp.zeros(2, jnp.float64),
        targets,
        riemannian_sgd(0.005),
        curvature=-1.0,
        damping=0.5,
        tolerance=1e-7,
        max_rounds=4000,
    )
    # constant steps without tracking leave an O(lr) disagreement and bias
    assert np.all(np.linalg.norm(np.asarray(res.params), axis=-1) < 1.0)
    assert float(res.disagreement) < 0.05
    assert float(poincare.dist(res.consensus, w_star)) < 0.05
    with pytest.raises(ValueError, match="tracking"):
        gossip(loss, jnp.zeros(2), targets, riemannian_sgd(0.05), curvature=-1.0, tracking=True)
