"""Riemannian SGD / Adam on Lorentz leaves and on mixed pytrees (``manifold=``)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from spiraljax.geometry import lorentz as L
from spiraljax.geometry import poincare
from spiraljax.optim import apply_updates, riemannian_adam, riemannian_sgd

_RNG = np.random.default_rng(16)
X0 = np.asarray(L.project(np.c_[np.zeros(4), _RNG.normal(size=(4, 3))]))
TARGET = np.asarray(L.project(np.c_[np.zeros(4), _RNG.normal(size=(4, 3)) * 2]))


def _egrad_np(x):
    # Euclidean gradient of ½‖x − T‖²/10 (a smooth function of the ambient coordinates).
    return (x - TARGET) / 10


def _run(tx, x, steps, curvature=-1.0, loss=None):
    state = tx.init(x)
    for _ in range(steps):
        g = jnp.asarray(_egrad_np(np.asarray(x))) if loss is None else jax.grad(loss)(x)
        updates, state = tx.update(g, state, x)
        x = apply_updates(x, updates, curvature=curvature, manifold="lorentz")
    return x, state


@pytest.mark.parametrize(
    "make",
    [
        lambda c: riemannian_sgd(0.2, curvature=-c, manifold="lorentz"),
        lambda c: riemannian_sgd(0.1, momentum=0.5, curvature=-c, manifold="lorentz"),
        lambda c: riemannian_adam(0.05, curvature=-c, manifold="lorentz"),
        lambda c: riemannian_sgd(0.2, curvature=-c, manifold="lorentz", retraction="first_order"),
    ],
    ids=["sgd", "momentum", "adam", "sgd-first-order"],
)
@pytest.mark.parametrize("c", [1.0, 0.5])
def test_converges_on_distance_objective(make, c):
    target = np.asarray(L.project(TARGET, curvature=-c))
    x0 = np.asarray(L.project(X0, curvature=-c))

    def loss(x):
        return jnp.sum(L.dist(x, target, curvature=-c) ** 2)

    tx = make(c)
    x = jnp.asarray(x0)
    state = tx.init(x)

    @jax.jit
    def step(x, state):
        updates, state = tx.update(jax.grad(loss)(x), state, x)
        return apply_updates(x, updates, curvature=-c, manifold="lorentz"), state

    for _ in range(400):
        x, state = step(x, state)
    np.testing.assert_allclose(L.dist(x, target, curvature=-c), 0, atol=1e-5)
    np.testing.assert_allclose(L.inner(x, x, curvature=-c), -1 / c, rtol=1e-12)


@pytest.mark.parametrize("opt", ["sgd-plain", "sgd", "adam"])
def test_float32_1e5_steps_stay_on_hyperboloid(opt):
    # Noisy gradients that push outward (towards a far point) for 1e5 jitted steps.
    # a far target within the float32 reach (distance ≈ 19 from the origin, the spatial cap)
    far = jnp.asarray(L.expmap0(jnp.array([[0.0, 12.0, 0.0, 0.0]], jnp.float32)))
    x = jnp.asarray(X0[:1], jnp.float32)
    tx = {
        "sgd-plain": riemannian_sgd(0.05, manifold="lorentz"),
        "sgd": riemannian_sgd(0.5, momentum=0.9, manifold="lorentz"),
        "adam": riemannian_adam(0.5, manifold="lorentz"),
    }[opt]

    def loss(x):
        return jnp.sum(L.dist(x, far) ** 2)

    def step(carry, key):
        x, state = carry
        g = jax.grad(loss)(x) + 10 * jax.random.normal(key, x.shape, x.dtype)
        updates, state = tx.update(g, state, x)
        x = apply_updates(x, updates, manifold="lorentz")
        return (x, state), L.dist0(x[0])

    keys = jax.random.split(jax.random.key(0), 100_000)
    (x, state), path = jax.jit(lambda c, k: jax.lax.scan(step, c, k))((x, tx.init(x)), keys)
    # the transported buffers too (they overflowed first, before the point)
    assert all(np.isfinite(np.asarray(leaf)).all() for leaf in jax.tree_util.tree_leaves(state))
    x = np.asarray(x, np.float64)
    assert np.isfinite(x).all() and x[0, 0] > 0
    spatial = x[:, 1:]
    np.testing.assert_allclose(x[:, 0], np.sqrt(1 + np.sum(spatial**2, -1)), rtol=1e-6)
    # It really travelled: ≥ 1% of the steps beyond distance 8 (where float32 transport of the
    # buffers used to break; Adam ~7%, the SGDs ~100%). The SGDs' noisy steps scale with
    # ‖rgrad‖ and pin them near the cap; Adam's normalised steps make a random walk whose end
    # point lies anywhere between the origin and there, so only the SGDs must end far out.
    assert np.mean(np.asarray(path) > 8) > 0.01
    if opt != "adam":
        assert float(L.dist0(x)[0]) > 5


@pytest.mark.parametrize(
    "tx",
    [
        riemannian_sgd(0.1, momentum=0.9, manifold="lorentz"),
        riemannian_adam(0.05, manifold="lorentz"),
    ],
    ids=["momentum", "adam"],
)
def test_float32_momentum_converges_far_from_the_origin(tx):
    # Points at distance 10 (ambient coordinates ~1e4, their float32 spacing ~1e-3 in distance)
    # and targets ~2 away: the transported buffers must stay accurate, not just finite.
    rng = np.random.default_rng(10)
    n = 8
    dirs = rng.normal(size=(n, 3))
    dirs = 10 * dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
    x0 = L.expmap0(jnp.asarray(np.c_[np.zeros(n), dirs], jnp.float32))
    o = L.origin(3, batch_shape=(n,), dtype=jnp.float32)
    step = jnp.asarray(np.c_[np.zeros(n), rng.normal(size=(n, 3))], jnp.float32)
    target = L.expmap(x0, L.transp(o, x0, step))

    def loss(x):
        return jnp.sum(L.dist(x, target) ** 2)

    def body(carry, _):
        x, state = carry
        updates, state = tx.update(jax.grad(loss)(x), state, x)
        return (apply_updates(x, updates, manifold="lorentz"), state), None

    (x, _), _ = jax.jit(lambda c: jax.lax.scan(body, c, None, length=500))((x0, tx.init(x0)))
    assert float(L.dist(x0, target).min()) > 0.5
    assert float(L.dist(x, target).max()) < 1e-2


def test_mixed_pytree_matches_single_manifold_runs():
    ball = poincare.expmap0(jnp.asarray(_RNG.normal(size=(3, 2)) * 0.5))
    hyp = jnp.asarray(X0)
    euc = jnp.asarray(_RNG.normal(size=(5,)))
    params = {"ball": ball, "hyp": hyp, "w": euc}
    tags = {"ball": "poincare", "hyp": "lorentz", "w": "euclidean"}

    def grads_of(p):
        return {"ball": p["ball"] - 0.3, "hyp": p["hyp"] - TARGET, "w": 2 * p["w"]}

    for make in (
        lambda m: riemannian_sgd(0.1, momentum=0.5, manifold=m),
        lambda m: riemannian_adam(0.05, manifold=m),
    ):
        tx = make(tags)
        state = tx.init(params)
        p = params
        singles = {k: (make(tags[k]), params[k]) for k in params}
        single_states = {k: t.init(v) for k, (t, v) in singles.items()}
        single_p = dict(params)
        for _ in range(5):
            updates, state = tx.update(grads_of(p), state, p)
            p = apply_updates(p, updates, manifold=tags)
            g = grads_of(single_p)
            for k, (t, _) in singles.items():
                u, single_states[k] = t.update(g[k], single_states[k], single_p[k])
                single_p[k] = apply_updates(single_p[k], u, manifold=tags[k])
        for k in params:
            np.testing.assert_allclose(p[k], single_p[k], rtol=1e-13, atol=1e-15)
    # the Euclidean leaf is plain SGD/Adam: compare with optax.adam
    ref = optax.adam(0.05)
    s = ref.init(euc)
    w = euc
    for _ in range(5):
        u, s = ref.update(2 * w, s, w)
        w = optax.apply_updates(w, u)
    np.testing.assert_allclose(p["w"], w, rtol=1e-12)
    # a callable spec gives the same tags
    tx = riemannian_sgd(0.1, manifold=lambda ps: {k: tags[k] for k in ps})
    st = tx.init(params)
    u1, _ = tx.update(grads_of(params), st, params)
    u2, _ = riemannian_sgd(0.1, manifold=tags).update(grads_of(params), st, params)
    jax.tree_util.tree_map(np.testing.assert_array_equal, u1, u2)


def test_bad_manifold_raises():
    with pytest.raises(ValueError, match=r"manifold='sphere'"):
        riemannian_sgd(0.1, manifold="sphere")
    with pytest.raises(ValueError, match=r"manifold='hyper'"):
        riemannian_adam(0.1, manifold={"a": "hyper"}).init({"a": jnp.zeros((2, 3))})
    with pytest.raises(ValueError, match=r"coordinate axis of size 1"):
        x = jnp.ones((2, 1))
        tx = riemannian_sgd(0.1, manifold="lorentz")
        tx.update(x, tx.init(x), x)
    with pytest.raises(ValueError, match=r"manifold='bad'"):
        apply_updates(jnp.zeros((2, 3)), jnp.zeros((2, 3)), manifold="bad")


@pytest.mark.anchors
@pytest.mark.parametrize("k", [1.0, 0.25])
@pytest.mark.parametrize("kind", ["sgd", "momentum", "adam"])
def test_matches_geoopt_lorentz(k, kind):
    torch = pytest.importorskip("torch")
    geoopt = pytest.importorskip("geoopt")
    manifold = geoopt.Lorentz(k=k)
    c = 1 / k
    x0 = np.asarray(L.project(X0, curvature=-c))
    p = geoopt.ManifoldParameter(torch.tensor(x0), manifold=manifold)
    if kind == "adam":
        opt = geoopt.optim.RiemannianAdam([p], lr=0.02)
        tx = riemannian_adam(0.02, curvature=-c, manifold="lorentz")
    else:
        mom = 0.5 if kind == "momentum" else 0.0
        opt = geoopt.optim.RiemannianSGD([p], lr=0.01, momentum=mom)
        tx = riemannian_sgd(0.01, momentum=mom, curvature=-c, manifold="lorentz")
        if mom:
            # geoopt seeds the buffer with the Euclidean gradient; spiraljax starts at 0.
            opt.state[p]["momentum_buffer"] = torch.zeros_like(p)
    for _ in range(6):
        p.grad = torch.tensor(_egrad_np(p.detach().numpy()))
        opt.step()
    x, _ = _run(tx, jnp.asarray(x0), 6, curvature=-c)
    theirs = p.detach().numpy()
    assert np.isfinite(theirs).all() and float(L.dist(x0, theirs, curvature=-c).max()) > 1e-3
    rel = np.max(np.abs(np.asarray(x) - theirs)) / np.max(np.abs(theirs))
    assert rel <= 1e-8, rel
