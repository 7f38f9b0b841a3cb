"""HNN layers: mobius_linear, poincare_mlr, hyperbolic_cross_entropy (Ganea et al. 2018)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from geo_utils import assert_close, assert_finite, ball_points, tangents
from scipy.optimize import minimize

import spiraljax.geometry as G

F64 = jnp.float64


def _mlr_params(rng, k, n_cls=4, d=3, dtype=F64):
    return {
        "p": ball_points(rng, (n_cls, d), k, dtype, max_frac=0.6),
        "a": tangents(rng, (n_cls, d), dtype),
    }


@pytest.mark.parametrize("dtype", [jnp.float32, F64])
@pytest.mark.parametrize("k", [-1.0, -0.4])
def test_mobius_linear_definition(k, dtype):
    rng = np.random.default_rng(0)
    params = G.mobius_linear.init(jax.random.key(0), 3, 5, curvature=k, dtype=dtype)
    assert params["weight"].shape == (5, 3) and params["bias"].shape == (5,)
    assert params["weight"].dtype == dtype and params["bias"].dtype == dtype
    assert np.linalg.norm(params["bias"]) * np.sqrt(-k) < 1
    params["bias"] = ball_points(rng, (5,), k, dtype, max_frac=0.3)
    x = ball_points(rng, (7, 3), k, dtype)
    y = G.mobius_linear.apply(params, x, curvature=k)
    expected = G.mobius_add(
        G.expmap0(G.logmap0(x, curvature=k) @ params["weight"].T, curvature=k),
        params["bias"],
        curvature=k,
    )
    assert y.shape == (7, 5) and y.dtype == dtype
    assert_close(y, expected, dtype, 10)
    assert_close(G.mobius_linear(params, x, curvature=k), y, dtype)  # calling = apply
    # Euclidean limit: W x + b.
    assert_close(
        G.mobius_linear.apply(params, x, curvature=0.0),
        x @ params["weight"].T + params["bias"],
        dtype,
    )


def test_mobius_linear_jit_vmap_grad_bf16():
    k = -1.0
    rng = np.random.default_rng(1)
    params = G.mobius_linear.init(jax.random.key(1), 4, 2, dtype=F64)
    x = ball_points(rng, (6, 4), k, F64)
    f = lambda p, x, kk: G.mobius_linear.apply(p, x, curvature=kk)  # noqa: E731
    assert_close(jax.jit(f)(params, x, k), f(params, x, k), F64)
    assert_close(jax.vmap(f, (None, 0, None))(params, x, k), f(params, x, k), F64)
    g = jax.grad(lambda p, kk: jnp.sum(f(p, x, kk) ** 2), argnums=(0, 1))(params, k)
    assert_finite(g)
    # Finite-difference check of one weight entry and of the curvature.
    h = 1e-6
    bumped = {**params, "weight": params["weight"].at[1, 2].add(h)}
    fd = (jnp.sum(f(bumped, x, k) ** 2) - jnp.sum(f(params, x, k) ** 2)) / h
    np.testing.assert_allclose(g[0]["weight"][1, 2], fd, rtol=1e-4)
    fdk = (jnp.sum(f(params, x, k + h) ** 2) - jnp.sum(f(params, x, k - h) ** 2)) / (2 * h)
    np.testing.assert_allclose(g[1], fdk, rtol=1e-5)
    low = f(jax.tree.map(lambda a: a.astype(jnp.bfloat16), params), x.astype(jnp.bfloat16), k)
    assert low.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(low, np.float64), f(params, x, k), atol=3e-2)


@pytest.mark.parametrize("k", [-1.0, -2.5])
def test_mlr_matches_direct_formula(k):
    """Against eq. 25 evaluated literally with Möbius addition over (batch, K, d)."""
    rng = np.random.default_rng(2)
    c = -k
    params = _mlr_params(rng, k)
    x = ball_points(rng, (6, 3), k, F64, max_frac=0.95)
    p = params["p"]
    a = params["a"] * (1 - c * jnp.sum(p * p, -1, keepdims=True))
    s = G.mobius_add(-p[None], x[:, None], curvature=k)
    lam = G.conformal_factor(p, curvature=k)
    an = jnp.linalg.norm(a, axis=-1)
    arg = 2 * np.sqrt(c) * jnp.sum(s * a, -1) / ((1 - c * jnp.sum(s * s, -1)) * an)
    expected = lam * an / np.sqrt(c) * jnp.arcsinh(arg)
    logits = G.poincare_mlr.apply(params, x, curvature=k)
    assert logits.shape == (6, 4)
    assert_close(logits, expected, F64, 100)
    # Euclidean limit 4⟨x − p, a⟩ (λ = 2 at c = 0).
    assert_close(
        G.poincare_mlr.apply(params, x, curvature=0.0),
        4 * jnp.sum((x[:, None] - p[None]) * params["a"][None], -1),
        F64,
    )


def test_mlr_logit_is_scaled_distance_to_gyroplane():
    """|ζ_k(x)| = λ_p‖a‖ · d(x, H_{a,p}), with H = {p ⊕ v : ⟨v, a⟩ = 0} (Ganea et al. Thm 5)."""
    k, c = -1.0, 1.0
    rng = np.random.default_rng(3)
    params = _mlr_params(rng, k, n_cls=1)
    p, a0 = np.asarray(params["p"][0]), np.asarray(params["a"][0])
    a = a0 * (1 - c * p @ p)
    basis = np.linalg.svd(a[None])[2][1:]  # orthonormal basis of a^⊥
    dist_to = jax.jit(
        lambda coords, x: G.dist(
            G.mobius_add(p, G.project(coords @ basis, curvature=k), curvature=k), x, curvature=k
        )
    )
    lam = 2 / (1 - c * p @ p)
    for x in ball_points(rng, (4, 3), k, F64, max_frac=0.8):
        best = min(
            minimize(
                lambda z: float(dist_to(jnp.asarray(z), x)),
                z0,
                method="Nelder-Mead",
                options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 4000},
            ).fun
            for z0 in (np.zeros(2), rng.normal(size=2) * 0.3)
        )
        logit = float(G.poincare_mlr.apply(params, x, curvature=k)[0])
        np.testing.assert_allclose(abs(logit) / (lam * np.linalg.norm(a)), best, rtol=1e-6)
        s = G.mobius_add(-p, x, curvature=k)
        assert np.sign(logit) == np.sign(float(s @ a))


def test_mlr_init_jit_vmap_grad_and_zero_normal():
    k = -1.0
    params = G.poincare_mlr.init(jax.random.key(4), 3, 5, dtype=jnp.float32)
    assert params["p"].shape == (5, 3) and params["a"].shape == (5, 3)
    assert params["a"].dtype == jnp.float32
    x = ball_points(np.random.default_rng(4), (8, 3), k, jnp.float32)
    f = lambda prm, x: G.poincare_mlr.apply(prm, x, curvature=k)  # noqa: E731
    assert_close(jax.jit(f)(params, x), f(params, x), jnp.float32)
    assert_close(jax.vmap(f, (None, 0))(params, x), f(params, x), jnp.float32)
    # A zero normal vector gives zero logits and finite gradients.
    zero = {**params, "a": params["a"].at[0].set(0.0)}
    assert np.all(f(zero, x)[:, 0] == 0)
    g = jax.grad(lambda prm: jnp.sum(f(prm, x)))(zero)
    assert_finite(g)
    # Boundary points and the origin give finite logits and gradients in float32.
    edge = jnp.concatenate([G.project(x * 100, curvature=k), jnp.zeros((1, 3), jnp.float32)])
    assert_finite(f(params, edge))
    assert_finite(jax.grad(lambda xx: jnp.sum(f(params, xx)))(edge))


def test_cross_entropy_semantics():
    k = -1.0
    rng = np.random.default_rng(5)
    params = _mlr_params(rng, k)
    x = ball_points(rng, (6, 3), k, F64)
    labels = jnp.asarray([0, 1, 2, 3, 0, 1])
    logits = G.poincare_mlr.apply(params, x, curvature=k)
    per = -jax.nn.log_softmax(logits)[jnp.arange(6), labels]
    ce = G.hyperbolic_cross_entropy
    assert_close(ce(params, x, labels, curvature=k), jnp.mean(per), F64)
    assert_close(ce(logits, None, labels), jnp.mean(per), F64)
    assert_close(ce.apply(params, x, labels, curvature=k, reduction="sum"), jnp.sum(per), F64)
    assert_close(ce(params, x, labels, curvature=k, reduction="none"), per, F64)
    onehot = jax.nn.one_hot(labels, 4, dtype=F64)
    assert_close(ce(params, x, onehot, curvature=k), jnp.mean(per), F64)
    assert ce.init is G.poincare_mlr.init
    g = jax.jit(jax.grad(lambda prm: ce(prm, x, labels, curvature=k)))(params)
    assert_finite(g)


@pytest.mark.parametrize(
    ("args", "kwargs", "pattern"),
    [
        ((jnp.zeros((2, 3)), None, jnp.asarray([0, 3])), {}, r"labels must lie in \[0, 3\)"),
        ((jnp.zeros((2, 3)), None, jnp.asarray([0, -1])), {}, r"got values in \[-1, 0\]"),
        ((jnp.zeros((2, 3)), None, jnp.asarray([0])), {}, r"labels of shape \(1,\)"),
        ((jnp.zeros((2, 3)), None, jnp.asarray([0, 1])), {"reduction": "avg"}, "reduction='avg'"),
        ((jnp.zeros((2, 3)), None, jnp.zeros((2, 2))), {}, r"probability labels of shape \(2, 2\)"),
        (({"p": jnp.zeros((3, 2)), "a": jnp.ones((3, 2))}, None, jnp.asarray([0])), {}, "x=None"),
        ((jnp.zeros((2, 3), jnp.int32), None, jnp.asarray([0, 1])), {}, "logits has non-floating"),
    ],
)
def test_cross_entropy_errors(args, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        G.hyperbolic_cross_entropy(*args, **kwargs)


def test_layer_errors():
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="in_features=0 must be a positive int"):
        G.mobius_linear.init(key, 0, 3)
    with pytest.raises(ValueError, match="num_classes=2.5 must be a positive int"):
        G.poincare_mlr.init(key, 3, 2.5)
    with pytest.raises(ValueError, match="dtype=int32 must be a floating dtype"):
        G.mobius_linear.init(key, 2, 3, dtype=jnp.int32)
    params = G.poincare_mlr.init(key, 3, 2)
    with pytest.raises(ValueError, match="x has coordinate axis of size 4, but the MLR expects 3"):
        G.poincare_mlr.apply(params, jnp.zeros((5, 4)))
    with pytest.raises(ValueError, match=r"keys \('p', 'a'\)"):
        G.poincare_mlr.apply({"p": params["p"]}, jnp.zeros((5, 3)))
    lin = G.mobius_linear.init(key, 3, 2)
    with pytest.raises(ValueError, match="x has coordinate axis of size 4, but m expects 3"):
        G.mobius_linear.apply(lin, jnp.zeros((5, 4), jnp.float32))
    with pytest.raises(ValueError, match=r"curvature=1\.0 > 0"):
        G.mobius_linear.apply(lin, jnp.zeros((5, 3), jnp.float32), curvature=1.0)


def test_hyperbolic_classifier_learns():
    """A real classifier: Riemannian SGD on p (ball) and SGD on a separate two clusters."""
    k = -1.0
    rng = np.random.default_rng(6)
    centers = jnp.asarray([[0.5, 0.3], [-0.4, -0.5], [0.1, -0.6]], F64)
    labels = jnp.asarray(np.repeat(np.arange(3), 30))
    noise = jnp.asarray(rng.normal(size=(90, 2)) * 0.08, F64)
    x = G.expmap(centers[labels], noise, curvature=k)
    params = G.poincare_mlr.init(jax.random.key(6), 2, 3, dtype=F64)

    @jax.jit
    def step(prm):
        loss, g = jax.value_and_grad(lambda q: G.hyperbolic_cross_entropy(q, x, labels))(prm)
        p = G.expmap(prm["p"], -0.5 * G.egrad2rgrad(prm["p"], g["p"]))
        return {"p": p, "a": prm["a"] - 0.5 * g["a"]}, loss

    losses = []
    for _ in range(150):
        params, loss = step(params)
        losses.append(float(loss))
    assert losses[-1] < 0.2 * losses[0]
    pred = jnp.argmax(G.poincare_mlr.apply(params, x), -1)
    assert float(jnp.mean(pred == labels)) == 1.0
