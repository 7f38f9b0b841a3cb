"""Fully hyperbolic layers on the hyperboloid: the Lorentz linear layer (Chen et al. 2022,
§3.2), space-part normalisation and activation — against float64 references, on the
manifold, jit / vmap / grad, float32 extremes and bad input (d vs d+1, K ≥ 0)."""

import jax
import jax.numpy as jnp
import layers_reference as ref
import numpy as np
import pytest
from geo_utils import assert_close, assert_finite

import spiraljax.geometry as G
from spiraljax.geometry import lorentz as lz

F32, F64 = jnp.float32, jnp.float64


def _points(rng, shape, k, dtype=F64, scale=1.0):
    s = rng.normal(size=shape) * scale
    return lz.project(
        jnp.asarray(np.concatenate([np.zeros((*shape[:-1], 1)), s], -1), dtype), curvature=k
    )


def _linear_params(rng, d_in, d_out, dtype=F64):
    return {
        "weight": jnp.asarray(rng.normal(size=(d_out + 1, d_in + 1)) * 0.7, dtype),
        "bias": jnp.asarray(rng.normal(size=d_out + 1) * 0.3, dtype),
        "log_scale": jnp.asarray(0.8, dtype),
    }


def _on_hyperboloid(y, k, dtype):
    inner = np.asarray(lz.inner(y, y), np.float64)
    np.testing.assert_allclose(inner * -k, -1.0, rtol=1e-10 if dtype == F64 else 1e-4)


@pytest.mark.parametrize("k", [-1.0, -0.4])
def test_lorentz_linear_matches_chen_et_al(k):
    c = -k
    rng = np.random.default_rng(0)
    prm = _linear_params(rng, 3, 4)
    x = _points(rng, (5, 3), k)
    y = G.lorentz_linear.apply(prm, x, curvature=k)
    assert y.shape == (5, 5)
    assert_close(y, ref.lorentz_linear(prm, x, c), F64, 10)
    _on_hyperboloid(y, k, F64)
    # Only the spatial part of x is read: a wrong time coordinate changes nothing.
    assert_close(G.lorentz_linear.apply(prm, x.at[:, 0].set(7.0), curvature=k), y, F64)
    # At c = 1, eps = 0.1 this is the authors' code: time = exp(s)·σ(h₀) + 1.1.
    if k == -1.0:
        h0 = np.asarray(x) @ np.asarray(prm["weight"][0]) + float(prm["bias"][0])
        t = np.exp(0.8) / (1 + np.exp(-h0)) + 1.1
        np.testing.assert_allclose(y[:, 0], t, rtol=1e-12)
    y2 = G.lorentz_linear.apply(prm, x, curvature=k, eps=0.5)
    assert_close(y2, ref.lorentz_linear(prm, x, c, eps=0.5), F64, 10)
    init = G.lorentz_linear.init(jax.random.key(0), 3, 4)
    assert init["weight"].shape == (5, 4) and init["bias"].shape == (5,)
    assert init["weight"].dtype == F32
    np.testing.assert_allclose(np.exp(init["log_scale"]), 10.0, rtol=1e-6)


@pytest.mark.parametrize("k", [-1.0, -3.0])
def test_norm_and_activation_match_the_space_part_rule(k):
    c = -k
    rng = np.random.default_rng(1)
    x = _points(rng, (6, 3), k, scale=2.0)
    prm = {
        "gamma": jnp.asarray(rng.normal(size=3) + 1, F64),
        "beta": jnp.asarray(rng.normal(size=3) * 0.5, F64),
    }
    y = G.lorentz_norm.apply(prm, x, curvature=k)
    assert_close(y, ref.lorentz_norm(prm, x, c), F64, 10)
    _on_hyperboloid(y, k, F64)
    init = G.lorentz_norm.init(jax.random.key(0), 3)
    assert_close(init["gamma"], np.ones(3), F32) and assert_close(init["beta"], np.zeros(3), F32)
    for fn in (jax.nn.relu, jnp.tanh):
        a = G.lorentz_activation(x, fn, curvature=k)
        assert_close(a, ref.lorentz_from_space(np.asarray(fn(x[..., 1:])), c), F64)
        _on_hyperboloid(a, k, F64)
    # relu keeps the point where its spatial part is already non-negative.
    pos = x.at[:, 1:].set(jnp.abs(x[:, 1:]))
    assert_close(G.lorentz_activation(pos, curvature=k), pos, F64)


def _layers():
    rng = np.random.default_rng(2)
    lin = _linear_params(rng, 3, 2, F32)
    norm = {"gamma": jnp.ones(3, F32) * 1.5, "beta": jnp.full(3, 0.1, F32)}
    return {
        "lorentz_linear": (lambda p, x, k: G.lorentz_linear.apply(p, x, curvature=k), lin),
        "lorentz_norm": (lambda p, x, k: G.lorentz_norm.apply(p, x, curvature=k), norm),
        "lorentz_activation": (lambda p, x, k: G.lorentz_activation(x, curvature=k), {}),
    }


@pytest.mark.parametrize("name", ["lorentz_activation", "lorentz_linear", "lorentz_norm"])
def test_jit_vmap_grad_and_float32_extremes(name):
    f, params = _layers()[name]
    k = -1.0
    rng = np.random.default_rng(3)
    s = rng.normal(size=(2, 5, 3))
    s /= np.linalg.norm(s, axis=-1, keepdims=True)
    # Spatial norms 1e-15, 0, 1e7 (near the float32 cap 1e8), 1e-30, and a regular one.
    s[1] *= np.array([1e-15, 0.0, 1e7, 1e-30, 1.0])[:, None]
    x = lz.project(jnp.asarray(np.concatenate([np.zeros((2, 5, 1)), s], -1), F32))

    def loss(p, x, k):
        y = jax.vmap(f, (None, 0, None))(p, x, k)
        return jnp.sum(jnp.tanh(y[..., 1:])), y

    (_, y), grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True))(params, x, k)
    assert_close(y, f(params, x, k), F32)
    assert_finite(y, name)
    assert_finite(grads, name)


def test_gradients_match_finite_differences_including_curvature():
    rng = np.random.default_rng(4)
    prm = _linear_params(rng, 3, 3)
    x = _points(rng, (4, 3), -1.0)
    norm = {"gamma": jnp.asarray(rng.normal(size=3) + 1), "beta": jnp.zeros(3)}

    def loss(p, k):
        y = G.lorentz_linear.apply(p, x, curvature=k)
        return jnp.sum(jnp.sin(G.lorentz_norm.apply(norm, y, curvature=k)))

    loss = jax.jit(loss)
    gp, gk = jax.grad(loss, argnums=(0, 1))(prm, -0.7)
    h = 1e-6
    np.testing.assert_allclose(gk, (loss(prm, -0.7 + h) - loss(prm, -0.7 - h)) / (2 * h), rtol=1e-6)
    hi = {**prm, "log_scale": prm["log_scale"] + h}
    lo = {**prm, "log_scale": prm["log_scale"] - h}
    fd = (loss(hi, -0.7) - loss(lo, -0.7)) / (2 * h)
    np.testing.assert_allclose(gp["log_scale"], fd, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (
            lambda lin, x: G.lorentz_linear.apply(lin, x[..., 1:]),
            r"x has coordinate axis of size 3, but lorentz_linear expects 4 \(points of the "
            r"3-dimensional hyperboloid have d\+1 = 4",
        ),
        (
            lambda lin, x: G.lorentz_norm.apply(G.lorentz_norm.init(jax.random.key(0), 4), x),
            "x has coordinate axis of size 4, but lorentz_norm expects 5",
        ),
        (lambda lin, x: G.lorentz_linear.apply(lin, x, curvature=0.5), r"curvature=0\.5 > 0"),
        (lambda lin, x: G.lorentz_linear.apply(lin, x, curvature=0.0), r"curvature=0\.0: the Lo"),
        (lambda lin, x: G.lorentz_activation(x, curvature=2.0), r"curvature=2\.0 > 0"),
        (lambda lin, x: G.lorentz_activation(x[..., :1]), "coordinate axis of size 1"),
        (lambda lin, x: G.lorentz_activation(x, "relu"), "fn='relu' must be callable"),
        (
            lambda lin, x: G.lorentz_linear.apply({**lin, "bias": jnp.zeros(4)}, x),
            r"params\['bias'\] has shape \(4,\), expected \(3,\)",
        ),
        (lambda lin, x: G.lorentz_linear.apply(lin, x, eps=0.0), "eps=0.0 must be > 0"),
        (lambda lin, x: G.lorentz_linear.init(jax.random.key(0), 0, 2), "in_dim=0"),
        (
            lambda lin, x: G.lorentz_norm.apply({"gamma": jnp.ones(3), "beta": jnp.ones(2)}, x),
            r"params\['beta'\] has shape \(2,\), expected \(3,\)",
        ),
    ],
)
def test_bad_input(call, pattern):
    lin = G.lorentz_linear.init(jax.random.key(0), 3, 2)
    x = lz.origin(3, batch_shape=(2,), dtype=F32)
    with pytest.raises(ValueError, match=pattern):
        call(lin, x)
