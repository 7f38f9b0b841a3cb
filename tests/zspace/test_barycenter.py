"""z_space_barycenter: the closed form against a numerical minimisation of the SPEC objective."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
from hypothesis import given, settings
from hypothesis import strategies as st

from spiraljax.zspace import ZSpaceBarycenter, kl_divergence, z_space_barycenter


def _normalise(p):
    p = np.asarray(p, np.float64)
    return p / p.sum()


def _kl_ref(p, q):
    """Independent float64 KL(p‖q) for strictly positive p, q (each normalised as a whole)."""
    p, q = _normalise(p), _normalise(q)
    return float(np.sum(p * (np.log(p) - np.log(q))))


def _objective_ref(rho, weights, densities, gamma, beta=0.0, coupling=None):
    """SPEC §4 objective F(ρ), written directly from the formula in float64."""
    rho = _normalise(rho)
    kl = sum(w * _kl_ref(rho, d) for w, d in zip(weights, densities, strict=True))
    entropy = -float(np.sum(rho * np.log(rho)))
    coup = 0.0
    if coupling is not None:
        u = len(densities)
        for a in range(u):
            for b in range(u):
                coup += coupling[a][b] * (
                    _kl_ref(densities[a], densities[b]) + _kl_ref(densities[b], densities[a])
                )
        coup *= beta / 2
    return kl - gamma * entropy + coup


def _numerical_minimum(weights, densities, gamma):
    """Minimise F over the simplex with a softmax parametrisation (scipy BFGS)."""
    shape = np.shape(densities[0])
    n = int(np.prod(shape))

    def f(z):
        rho = np.exp(z - z.max())
        rho = rho / rho.sum()
        return _objective_ref(np.maximum(rho, 1e-300).reshape(shape), weights, densities, gamma)

    best = None
    for z0 in (np.zeros(n), np.log(_normalise(np.mean(densities, axis=0))).ravel()):
        res = scipy.optimize.minimize(f, z0, method="BFGS", options={"gtol": 1e-10})
        if best is None or res.fun < best.fun:
            best = res
    return best.fun


RNG = np.random.default_rng(0)


@pytest.mark.parametrize(
    ("u", "shape", "gamma"),
    [(2, (2,), 0.0), (3, (5,), 0.5), (4, (2, 3), -0.3), (1, (6,), 2.0), (3, (4,), 0.0)],
)
def test_closed_form_minimises_objective(u, shape, gamma):
    densities = [RNG.uniform(0.05, 1.0, size=shape) for _ in range(u)]
    weights = RNG.uniform(0.2, 2.0, size=u)
    res = z_space_barycenter(
        jnp.asarray(weights, jnp.float64),
        [jnp.asarray(d, jnp.float64) for d in densities],
        entropy_weight=gamma,
    )
    rho = np.asarray(res.density)
    assert rho.shape == shape
    np.testing.assert_allclose(rho.sum(), 1.0, rtol=1e-12)
    f_star = _objective_ref(rho, weights, densities, gamma)
    np.testing.assert_allclose(float(res.objective), f_star, rtol=1e-10, atol=1e-12)
    f_num = _numerical_minimum(weights, densities, gamma)
    # The closed form is at least as good as the numerical optimum, and they agree.
    assert f_star <= f_num + 1e-10
    np.testing.assert_allclose(f_star, f_num, atol=1e-7)
    # And random points of the simplex are never better.
    for _ in range(20):
        other = RNG.dirichlet(np.ones(rho.size)).reshape(shape)
        assert _objective_ref(np.maximum(other, 1e-300), weights, densities, gamma) >= f_star


def test_energies_match_formulas():
    densities = [RNG.uniform(0.1, 1.0, size=(3, 2)) for _ in range(3)]
    weights = np.array([0.5, 1.0, 1.5])
    coupling = RNG.uniform(0, 1, size=(3, 3))
    gamma, beta = 0.7, 0.4
    res = z_space_barycenter(
        jnp.asarray(weights, jnp.float64),
        jnp.asarray(np.stack(densities), jnp.float64),
        entropy_weight=gamma,
        beta_j=beta,
        coupling=jnp.asarray(coupling, jnp.float64),
    )
    assert isinstance(res, ZSpaceBarycenter)
    rho = np.asarray(res.density)
    kl = sum(w * _kl_ref(rho, d) for w, d in zip(weights, densities, strict=True))
    ent = -np.sum(rho * np.log(rho))
    coup = (
        0.5
        * beta
        * sum(
            coupling[a, b]
            * (_kl_ref(densities[a], densities[b]) + _kl_ref(densities[b], densities[a]))
            for a in range(3)
            for b in range(3)
        )
    )
    np.testing.assert_allclose(float(res.kl_energy), kl, rtol=1e-12)
    np.testing.assert_allclose(float(res.entropy), ent, rtol=1e-12)
    np.testing.assert_allclose(float(res.coupling_energy), coup, rtol=1e-12)
    assert float(res.coupling_energy) > 0
    np.testing.assert_allclose(
        float(res.objective), _objective_ref(rho, weights, densities, gamma, beta, coupling), 1e-12
    )
    np.testing.assert_allclose(float(res.effective_weight), weights.sum() + gamma, rtol=1e-15)
    # Closed form: ρ* ∝ exp(Σ W ln ρ̂ / (ΣW + γ)), each density normalised as a whole.
    logs = sum(w * np.log(_normalise(d)) for w, d in zip(weights, densities, strict=True))
    expect = np.exp(logs / (weights.sum() + gamma))
    np.testing.assert_allclose(rho, expect / expect.sum(), rtol=1e-12)


def test_kl_of_known_pair():
    # KL([1, 0]‖[.5, .5]) = ln 2 (the zero bin of p contributes nothing).
    val = kl_divergence(jnp.array([1.0, 0.0], jnp.float64), jnp.array([0.5, 0.5], jnp.float64))
    np.testing.assert_allclose(float(val), np.log(2), rtol=1e-12)
    same = kl_divergence(jnp.array([2.0, 6.0], jnp.float64), jnp.array([1.0, 3.0], jnp.float64))
    assert abs(float(same)) < 1e-14


@settings(max_examples=25)
@given(
    st.sampled_from([1, 3]),
    st.sampled_from([1, 2, 6]),
    st.floats(-0.9, 5.0),
    st.integers(0, 2**31 - 1),
)
def test_intermediates_non_increasing(u, n, gamma, seed):
    rng = np.random.default_rng(seed)
    densities = rng.uniform(0, 1, size=(u, n)) ** 3 + 1e-9  # includes near-zero bins
    weights = rng.uniform(0.3, 3.0, size=u)
    res = z_space_barycenter(
        jnp.asarray(weights, jnp.float64), jnp.asarray(densities, jnp.float64), entropy_weight=gamma
    )
    objs = np.array([float(s.objective) for s in res.intermediates])
    alphas = [float(s.interpolation) for s in res.intermediates]
    assert alphas == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert np.all(np.isfinite(objs))
    assert np.all(np.diff(objs) <= 1e-9 * (1 + np.abs(objs[:-1])))
    np.testing.assert_allclose(objs[-1], float(res.objective), rtol=1e-14)
    # α = 0 is the weighted arithmetic mean, α = 1 is ρ*.
    mean = (weights[:, None] * densities / densities.sum(1, keepdims=True)).sum(0) / weights.sum()
    np.testing.assert_allclose(np.asarray(res.intermediates[0].density), mean, rtol=1e-9)
    np.testing.assert_allclose(np.asarray(res.intermediates[-1].density), res.density, rtol=1e-12)
    for s in res.intermediates:
        np.testing.assert_allclose(float(np.sum(s.density)), 1.0, rtol=1e-12)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_entropy_only_gives_uniform(dtype):
    densities = jnp.asarray(RNG.uniform(0.01, 1, size=(3, 2, 4)), dtype)
    res = z_space_barycenter(jnp.zeros(3, dtype), densities, entropy_weight=1.5)
    assert res.density.dtype == dtype
    np.testing.assert_allclose(np.asarray(res.density), np.full((2, 4), 1 / 8), rtol=1e-6)
    # The baseline is uniform too (ΣW = 0), so every intermediate is uniform.
    for s in res.intermediates:
        np.testing.assert_allclose(np.asarray(s.density), np.full((2, 4), 1 / 8), rtol=1e-6)
    np.testing.assert_allclose(float(res.entropy), np.log(8), rtol=1e-6)


def test_single_density_is_its_own_barycenter():
    d = RNG.uniform(0.1, 1, size=7)
    res = z_space_barycenter(jnp.array([3.0], jnp.float64), jnp.asarray(d[None], jnp.float64))
    np.testing.assert_allclose(np.asarray(res.density), _normalise(d), rtol=1e-12)
    assert abs(float(res.objective)) < 1e-12


def test_zero_bins_are_finite_and_excluded():
    # A zero bin in a positively weighted density makes ρ* vanish there (up to the floor).
    d = jnp.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]], jnp.float64)
    res = z_space_barycenter(jnp.array([1.0, 1.0], jnp.float64), d)
    assert float(res.density[2]) < 1e-10
    leaves = jax.tree_util.tree_leaves(res)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in leaves)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_jit_vmap_grad(dtype):
    d = jnp.asarray(RNG.uniform(0.1, 1, size=(5, 3, 6)), dtype)  # batch of 5 problems, U = 3
    w = jnp.asarray(RNG.uniform(0.5, 2, size=(5, 3)), dtype)
    batched = jax.jit(jax.vmap(lambda w_, d_: z_space_barycenter(w_, d_, entropy_weight=0.2)))
    res = batched(w, d)
    assert res.density.shape == (5, 6)
    assert res.intermediates[2].density.shape == (5, 6)
    tol = 1e-5 if dtype == jnp.float32 else 1e-12
    for i in range(5):
        single = z_space_barycenter(w[i], d[i], entropy_weight=0.2)
        np.testing.assert_allclose(res.density[i], single.density, rtol=tol)
        np.testing.assert_allclose(res.objective[i], single.objective, rtol=tol, atol=tol)

    def loss(w_, d_, g):
        return z_space_barycenter(w_, d_, entropy_weight=g).objective

    gw, gd, gg = jax.grad(loss, argnums=(0, 1, 2))(w[0], d[0], jnp.asarray(0.2, dtype))
    for g in (gw, gd, gg):
        assert bool(jnp.all(jnp.isfinite(g)))
    # Envelope theorem: dF*/dW_u = KL(ρ*‖ρ̂_u) (ρ* is optimal); check against float64 FD.
    w64, d64 = np.asarray(w[0], np.float64), np.asarray(d[0], np.float64)
    h = 1e-6
    for u in range(3):
        e = np.zeros(3)
        e[u] = h
        fd = (
            float(loss(jnp.asarray(w64 + e), jnp.asarray(d64), 0.2))
            - float(loss(jnp.asarray(w64 - e), jnp.asarray(d64), 0.2))
        ) / (2 * h)
        np.testing.assert_allclose(float(gw[u]), fd, rtol=1e-3 if dtype == jnp.float32 else 1e-6)


def test_low_precision_inputs_cast_back():
    d = jnp.asarray(RNG.uniform(0.1, 1, size=(2, 4)), jnp.bfloat16)
    res = z_space_barycenter(jnp.ones(2, jnp.bfloat16), d)
    assert res.density.dtype == jnp.bfloat16
    assert bool(jnp.all(jnp.isfinite(res.density.astype(jnp.float32))))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"weights": [1.0, 1.0], "entropy_weight": -2.0}, "effective weight"),
        ({"weights": [0.0, 0.0]}, "effective weight"),
        ({"weights": [1.0, -0.5], "entropy_weight": 5.0}, "weights must be non-negative"),
        ({"weights": [1.0, float("nan")]}, "weights must be finite"),
        ({"weights": [1.0]}, "weights has shape"),
        ({"beta_j": -1.0}, "beta_j"),
        ({"entropy_weight": float("inf")}, "entropy_weight"),
        ({"coupling": [[0.0, 1.0]]}, "coupling has shape"),
        ({"coupling": [[0.0, -1.0], [1.0, 0.0]]}, "coupling must be non-negative"),
    ],
)
def test_bad_parameters(kwargs, match):
    kwargs = dict(kwargs)
    weights = jnp.asarray(kwargs.pop("weights", [1.0, 1.0]), jnp.float64)
    if "coupling" in kwargs:
        kwargs["coupling"] = jnp.asarray(kwargs["coupling"], jnp.float64)
    d = jnp.array([[0.5, 0.5], [0.2, 0.8]], jnp.float64)
    with pytest.raises(ValueError, match=match):
        z_space_barycenter(weights, d, **kwargs)


@pytest.mark.parametrize(
    ("densities", "match"),
    [
        ([[0.5, float("nan")], [0.2, 0.8]], "densities must be finite"),
        ([[0.5, float("inf")], [0.2, 0.8]], "densities must be finite"),
        ([[0.5, -0.1], [0.2, 0.8]], "densities must be non-negative"),
        ([[0.0, 0.0], [0.2, 0.8]], r"densities\[0\] sums to"),
        ([], "empty"),
    ],
)
def test_bad_densities(densities, match):
    d = [jnp.asarray(x, jnp.float64) for x in densities]
    with pytest.raises(ValueError, match=match):
        z_space_barycenter(jnp.ones(len(densities), jnp.float64), d)


def test_mismatched_density_shapes():
    with pytest.raises(ValueError, match="one shape"):
        z_space_barycenter(
            jnp.ones(2, jnp.float64), [jnp.ones(3, jnp.float64), jnp.ones(4, jnp.float64)]
        )


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_kl_divergence_jit_vmap_grad(dtype):
    p = jnp.asarray(RNG.uniform(0.1, 1, size=(4, 5)), dtype)
    q = jnp.asarray(RNG.uniform(0.1, 1, size=(4, 5)), dtype)
    vals = jax.jit(jax.vmap(kl_divergence))(p, q)
    tol = 1e-5 if dtype == jnp.float32 else 1e-12
    for i in range(4):
        np.testing.assert_allclose(float(vals[i]), _kl_ref(p[i], q[i]), rtol=tol, atol=tol)
    g = jax.grad(kl_divergence)(p[0], q[0])
    assert bool(jnp.all(jnp.isfinite(g)))
    # Gradient w.r.t. p of KL(p̂‖q̂) with p̂ = p/Σp: (ln p̂ − ln q̂ − KL)/Σp.
    p64, q64 = np.asarray(p[0], np.float64), np.asarray(q[0], np.float64)
    ph, qh = _normalise(p64), _normalise(q64)
    expect = (np.log(ph) - np.log(qh) - _kl_ref(p64, q64)) / p64.sum()
    np.testing.assert_allclose(np.asarray(g), expect, rtol=1e-4 if dtype == jnp.float32 else 1e-10)
    with pytest.raises(ValueError, match="p has shape"):
        kl_divergence(p[0], q[0, :3])
