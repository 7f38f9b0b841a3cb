"""Riemannian SGD / Adam optax transforms (SPEC §2) against float64 references and geoopt."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optim_reference as ref
import pytest
from hypothesis import given
from hypothesis import strategies as st

from spiraljax.geometry import poincare
from spiraljax.optim import (
    RiemannianAdamState,
    RiemannianSGDState,
    apply_updates,
    riemannian_adam,
    riemannian_sgd,
)

EPS = {jnp.float32: 1e-5, jnp.float64: 1e-5}  # geometry.ball_eps

# (name, factory kwargs, reference runner, reference kwargs)
CONFIGS = {
    "adam": (riemannian_adam, {}, ref.run_adam, {}),
    "adam-b1-eps": (
        riemannian_adam,
        {"b1": 0.7, "eps": 1e-3},
        ref.run_adam,
        {"b1": 0.7, "eps": 1e-3},
    ),
    "amsgrad": (riemannian_adam, {"amsgrad": True}, ref.run_adam, {"amsgrad": True}),
    "adam-first-order": (
        riemannian_adam,
        {"retraction": "first_order"},
        ref.run_adam,
        {"retraction": "first_order"},
    ),
    "sgd": (riemannian_sgd, {}, ref.run_sgd, {}),
    "sgd-momentum": (riemannian_sgd, {"momentum": 0.9}, ref.run_sgd, {"momentum": 0.9}),
    "sgd-nesterov": (
        riemannian_sgd,
        {"momentum": 0.8, "nesterov": True},
        ref.run_sgd,
        {"momentum": 0.8, "nesterov": True},
    ),
    "sgd-first-order": (
        riemannian_sgd,
        {"momentum": 0.5, "retraction": "first_order"},
        ref.run_sgd,
        {"momentum": 0.5, "retraction": "first_order"},
    ),
}

_RNG = np.random.default_rng(1234)
X0 = _RNG.normal(size=(4, 3)) * 0.3
A = _RNG.normal(size=(4, 3)) * 0.3


def _egrad_np(x):
    # A non-quadratic Euclidean gradient so each step sees a different, point-dependent g.
    return 2 * (x - A) + np.sin(3 * x)


def _egrad_jnp(x):
    return 2 * (x - jnp.asarray(A, x.dtype)) + jnp.sin(3 * x)


def _run(tx, x, n, egrad=_egrad_jnp, curvature=-1.0):
    state = tx.init(x)
    for _ in range(n):
        u, state = tx.update(egrad(x), state, x)
        x = apply_updates(x, u, curvature=curvature)
    return x, state


# ---------------------------------------------------------------------- exactness (float64)


@pytest.mark.parametrize("curvature", [-1.0, -0.4])
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_matches_hand_derived_reference(name, curvature):
    factory, kw, runner, ref_kw = CONFIGS[name]
    lr = 0.05 if factory is riemannian_adam else 0.3
    x, _ = _run(factory(lr, curvature=curvature, **kw), jnp.asarray(X0), 6, curvature=curvature)
    expected = runner(X0, _egrad_np, [lr] * 6, -curvature, **ref_kw)
    np.testing.assert_allclose(np.asarray(x), expected, rtol=0, atol=1e-13)


@pytest.mark.anchors
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_matches_geoopt(name):
    torch = pytest.importorskip("torch")
    geoopt = pytest.importorskip("geoopt")
    factory, kw, _, ref_kw = CONFIGS[name]
    exact = ref_kw.get("retraction", "expmap") == "expmap"
    # geoopt keeps c as a float32 0-d tensor (through a softplus) and computes √c in float32:
    # use a c whose softplus round trip and square root are exact there.
    manifold = geoopt.PoincareBallExact(c=0.25) if exact else geoopt.PoincareBall(c=0.25)
    c = float(manifold.c)
    p = geoopt.ManifoldParameter(torch.tensor(X0), manifold=manifold)
    if factory is riemannian_adam:
        lr = 0.05
        opt = geoopt.optim.RiemannianAdam(
            [p],
            lr=lr,
            betas=(ref_kw.get("b1", 0.9), 0.999),
            eps=ref_kw.get("eps", 1e-8),
            amsgrad=ref_kw.get("amsgrad", False),
        )
    else:
        lr = 0.3
        opt = geoopt.optim.RiemannianSGD(
            [p],
            lr=lr,
            momentum=ref_kw.get("momentum", 0.0),
            nesterov=ref_kw.get("nesterov", False),
        )
        if ref_kw.get("momentum", 0.0) > 0:
            # geoopt seeds the buffer with the Euclidean gradient; spiraljax starts at 0.
            opt.state[p]["momentum_buffer"] = torch.zeros_like(p)
    for _ in range(6):
        p.grad = torch.tensor(_egrad_np(p.detach().numpy()))
        opt.step()
    x, _ = _run(factory(lr, curvature=-c, **kw), jnp.asarray(X0), 6, curvature=-c)
    np.testing.assert_allclose(np.asarray(x), p.detach().numpy(), rtol=0, atol=1e-13)


def test_second_moment_is_one_scalar_per_point():
    tx = riemannian_adam(0.1)
    x = jnp.asarray(X0)
    state = tx.init(x)
    assert isinstance(state, RiemannianAdamState)
    assert state.nu.shape == (4, 1) and state.mu.shape == (4, 3) and state.nu_max is None
    g = jnp.asarray(_egrad_np(X0))
    _, state = tx.update(g, state, x)
    lam = ref.lam(X0, 1.0)
    expected = (1 - 0.999) * np.sum(g**2, -1, keepdims=True) / lam**2  # λ²‖g/λ²‖²
    np.testing.assert_allclose(state.nu, expected, rtol=1e-13)
    assert int(state.count) == 1
    assert riemannian_adam(0.1, amsgrad=True).init(x).nu_max.shape == (4, 1)


# ----------------------------------------------------------------------------- convergence

_TARGET = jnp.array([0.5, 0.5])


@functools.partial(jax.jit, static_argnums=(0, 2))
def _minimise_dist2(tx, x0, steps):
    def loss(x):
        return poincare.dist(x, _TARGET.astype(x.dtype)) ** 2

    def body(carry, _):
        x, state = carry
        u, state = tx.update(jax.grad(lambda v: jnp.sum(loss(v)))(x), state, x)
        return (apply_updates(x, u), state), None

    (x, _), _ = jax.lax.scan(body, (x0, tx.init(x0)), None, length=steps)
    return x, loss(x)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize(
    ("tx", "steps"),
    [
        (riemannian_adam(1e-2), 2000),  # geoopt's test_adam_poincare recipe
        (riemannian_adam(1e-1, amsgrad=True), 2000),
        (riemannian_sgd(0.1), 500),
        (riemannian_sgd(0.05, momentum=0.9, nesterov=True), 500),
    ],
    ids=["adam", "amsgrad", "sgd", "nesterov"],
)
def test_converges_to_fixed_point(tx, steps, dtype):
    # Three random starts as three independent rows (each row is its own point).
    x0 = poincare.expmap0(jax.random.normal(jax.random.key(7), (3, 2), dtype) / 2)
    x, final = _minimise_dist2(tx, x0, steps)
    assert x.dtype == dtype
    np.testing.assert_allclose(np.asarray(x, np.float64), np.full((3, 2), 0.5), atol=1e-5)
    assert np.all(np.asarray(final) <= 1e-5)


# -------------------------------------------------------------------- 10⁵ steps at boundary


@functools.partial(jax.jit, static_argnums=(0, 1, 3))
def _hammer_boundary(tx, curvature, x0, steps):
    """10⁵ steps whose gradients push outwards (plus heavy noise), starting on the sphere."""

    def egrad(x, key):
        outward = -jax.grad(lambda v: jnp.sum(poincare.dist0(v, curvature=curvature)))(x)
        noise = jax.random.normal(key, x.shape, x.dtype) * jnp.asarray(1e3, x.dtype)
        return outward + noise

    def body(carry, key):
        x, state, max_norm, finite = carry
        u, state = tx.update(egrad(x, key), state, x)
        x = apply_updates(x, u, curvature=curvature)
        norm = jnp.max(jnp.linalg.norm(x.astype(jnp.float64), axis=-1))
        finite = finite & jnp.all(jnp.isfinite(x)) & jnp.all(jnp.isfinite(u))
        return (x, state, jnp.maximum(max_norm, norm), finite), None

    keys = jax.random.split(jax.random.key(0), steps)
    init = (x0, tx.init(x0), jnp.zeros((), jnp.float64), jnp.array(True))
    (x, _, max_norm, finite), _ = jax.lax.scan(body, init, keys)
    return x, max_norm, finite


@pytest.mark.slow
@pytest.mark.parametrize(
    ("make", "curvature"),
    [
        (lambda k: riemannian_adam(0.1, curvature=k), -1.0),
        (lambda k: riemannian_sgd(1.0, momentum=0.9, nesterov=True, curvature=k), -1.0),
        (lambda k: riemannian_adam(0.5, amsgrad=True, retraction="first_order", curvature=k), -3.0),
    ],
    ids=["adam", "sgd-nesterov", "amsgrad-first-order-K3"],
)
def test_boundary_1e5_float32_steps(make, curvature):
    dirs = jax.random.normal(jax.random.key(3), (16, 3), jnp.float32)
    radius = 1 / np.sqrt(-curvature)
    x0 = (dirs / jnp.linalg.norm(dirs, axis=-1, keepdims=True) * radius).astype(jnp.float32)
    x, max_norm, finite = _hammer_boundary(make(curvature), curvature, x0, 100_000)
    assert bool(finite)
    assert x.dtype == jnp.float32
    # Every iterate stayed inside the open ball (at most (1 − ε)/√c up to one rounding).
    assert float(max_norm) < radius
    assert float(max_norm) <= (1 - EPS[jnp.float32]) * radius * (1 + 1e-6)


_EXTREME_TXS = (riemannian_adam(0.1), riemannian_sgd(0.5, momentum=0.9))


@functools.partial(jax.jit, static_argnums=0)
def _three_steps(tx_index, x, g):
    tx = _EXTREME_TXS[tx_index]
    state = tx.init(x)
    out = []
    for _ in range(3):
        u, state = tx.update(g, state, x)
        x = apply_updates(x, u)
        out.append(x)
    return jnp.stack(out)


@given(
    scale=st.sampled_from([1e-15, 1e-6, 1.0, 1e3, 1e6, 1e30]),
    radius=st.sampled_from([0.0, 1e-8, 0.5, 0.999, 1.0, 2.0]),
    seed=st.integers(0, 2**16),
)
def test_extreme_gradients_and_points_no_nan(scale, radius, seed):
    rng = np.random.default_rng(seed)
    d = rng.normal(size=(3, 4))
    x = jnp.asarray(d / np.linalg.norm(d, axis=-1, keepdims=True) * radius, jnp.float32)
    g = jnp.asarray(rng.normal(size=(3, 4)) * scale, jnp.float32)
    for i in range(len(_EXTREME_TXS)):
        xs = np.asarray(_three_steps(i, x, g), np.float64)
        assert np.all(np.isfinite(xs))
        assert np.all(np.linalg.norm(xs, axis=-1) < 1)


# ------------------------------------------------------------ composition with optax tools


@pytest.mark.parametrize("factory", [riemannian_adam, riemannian_sgd])
def test_jit_and_scan_match_eager(factory):
    tx = factory(0.05, momentum=0.9) if factory is riemannian_sgd else factory(0.05)
    x0 = jnp.asarray(X0)
    eager, _ = _run(tx, x0, 5)

    def body(carry, _):
        x, state = carry
        u, state = tx.update(_egrad_jnp(x), state, x)
        return (apply_updates(x, u), state), None

    (scanned, _), _ = jax.jit(lambda x: jax.lax.scan(body, (x, tx.init(x)), None, length=5))(x0)
    np.testing.assert_allclose(scanned, eager, rtol=0, atol=1e-14)


def test_chain_with_clip():
    clip = 0.5
    tx = optax.chain(optax.clip_by_global_norm(clip), riemannian_adam(0.05))
    plain = riemannian_adam(0.05)
    x = jnp.asarray(X0)
    s_chain, s_plain = tx.init(x), plain.init(x)
    y_chain, y_plain = x, x
    for _ in range(4):
        g = _egrad_jnp(y_chain)
        g_clipped = g * jnp.minimum(1.0, clip / jnp.linalg.norm(g))
        u1, s_chain = jax.jit(tx.update)(g, s_chain, y_chain)
        u2, s_plain = plain.update(g_clipped, s_plain, y_plain)
        y_chain, y_plain = apply_updates(y_chain, u1), apply_updates(y_plain, u2)
        np.testing.assert_allclose(y_chain, y_plain, rtol=0, atol=1e-14)


@pytest.mark.parametrize("factory", [riemannian_adam, riemannian_sgd])
def test_schedule_learning_rate(factory):
    sched = optax.exponential_decay(0.2, transition_steps=1, decay_rate=0.5)
    # optax evaluates the schedule at the int32 step count (a float32 learning rate).
    lrs = [float(sched(jnp.int32(t))) for t in range(5)]
    x, _ = _run(factory(sched), jnp.asarray(X0), 5)
    runner = ref.run_adam if factory is riemannian_adam else ref.run_sgd
    np.testing.assert_allclose(x, runner(X0, _egrad_np, lrs, 1.0), rtol=0, atol=1e-13)
    # And through inject_hyperparams (learning rate in the state, a warm-up from 0 allowed).
    warm = optax.linear_schedule(0.0, 0.2, transition_steps=3)
    tx = optax.inject_hyperparams(factory)(learning_rate=warm)
    x1, state = _run(tx, jnp.asarray(X0), 5)
    ref_lrs = [float(warm(jnp.int32(t))) for t in range(5)]
    np.testing.assert_allclose(x1, runner(X0, _egrad_np, ref_lrs, 1.0), rtol=0, atol=1e-13)
    assert float(state.hyperparams["learning_rate"]) == pytest.approx(0.2)


def test_partition_mixed_ball_and_euclidean():
    params = {
        "emb": jnp.asarray(X0),  # ball points
        "w": jnp.asarray(A),  # Euclidean weights
        "bias": jnp.asarray(0.3),  # Euclidean scalar
    }

    def label_fn(tree):
        return {"emb": "ball", "w": "euclid", "bias": "euclid"}

    def is_ball(tree):
        return {"emb": True, "w": False, "bias": False}

    tx = optax.partition({"ball": riemannian_adam(0.05), "euclid": optax.adam(0.05)}, label_fn)

    def grads(p):
        return {"emb": _egrad_jnp(p["emb"]), "w": 2 * p["w"], "bias": 2 * p["bias"]}

    state = tx.init(params)
    p = params
    step = jax.jit(lambda g, s, p: tx.update(g, s, p))
    for _ in range(4):
        u, state = step(grads(p), state, p)
        p = apply_updates(p, u, mask=is_ball)
    emb_ref = ref.run_adam(X0, _egrad_np, [0.05] * 4, 1.0)
    np.testing.assert_allclose(p["emb"], emb_ref, rtol=0, atol=1e-13)
    adam, pe = optax.adam(0.05), {"w": params["w"], "bias": params["bias"]}
    se = adam.init(pe)
    for _ in range(4):
        ue, se = adam.update({"w": 2 * pe["w"], "bias": 2 * pe["bias"]}, se, pe)
        pe = optax.apply_updates(pe, ue)
    np.testing.assert_allclose(p["w"], pe["w"], rtol=1e-14)
    np.testing.assert_allclose(p["bias"], pe["bias"], rtol=1e-14)


def test_vmap_over_independent_problems():
    tx = riemannian_adam(0.05)
    xs = jnp.asarray(_RNG.normal(size=(5, 4, 3)) * 0.3)
    gs = jnp.asarray(_RNG.normal(size=(5, 4, 3)))
    states = jax.vmap(tx.init)(xs)
    us, new_states = jax.vmap(tx.update)(gs, states, xs)
    for i in range(5):
        u, s = tx.update(gs[i], tx.init(xs[i]), xs[i])
        np.testing.assert_allclose(us[i], u, rtol=0, atol=1e-15)
        np.testing.assert_allclose(new_states.mu[i], s.mu, rtol=0, atol=1e-15)


def test_grad_through_unrolled_steps_matches_finite_differences():
    tx = riemannian_sgd(0.2, momentum=0.5)

    def final_loss(x0, lr_scale):
        x, state = x0, tx.init(x0)
        for _ in range(3):
            u, state = tx.update(lr_scale * _egrad_jnp(x), state, x)
            x = apply_updates(x, u)
        return jnp.sum(poincare.dist0(x) ** 2)

    final_loss = jax.jit(final_loss)
    x0, s = jnp.asarray(X0), jnp.float64(1.0)
    gx, gs = jax.jit(jax.grad(final_loss, argnums=(0, 1)))(x0, s)
    assert np.all(np.isfinite(gx)) and np.isfinite(gs)
    h = 1e-6
    fd = (final_loss(x0, s + h) - final_loss(x0, s - h)) / (2 * h)
    np.testing.assert_allclose(gs, fd, rtol=1e-6)
    e = jnp.zeros_like(x0).at[1, 2].set(h)
    fdx = (final_loss(x0 + e, s) - final_loss(x0 - e, s)) / (2 * h)
    np.testing.assert_allclose(gx[1, 2], fdx, rtol=1e-6)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64, jnp.bfloat16])
@pytest.mark.parametrize("factory", [riemannian_adam, riemannian_sgd])
def test_dtypes_preserved(factory, dtype):
    tx = factory(0.05, momentum=0.9) if factory is riemannian_sgd else factory(0.05)
    x = jnp.asarray(X0, dtype)
    x1, state = _run(tx, x, 3)
    assert x1.dtype == dtype
    work = jnp.float32 if dtype == jnp.bfloat16 else dtype  # state kept in the compute dtype
    for leaf in jax.tree_util.tree_leaves(state)[1:]:
        assert leaf.dtype == work
    expected = (ref.run_adam if factory is riemannian_adam else ref.run_sgd)(
        np.asarray(x, np.float64),
        _egrad_np,
        [0.05] * 3,
        1.0,
        **({} if factory is riemannian_adam else {"momentum": 0.9}),
    )
    tol = {jnp.float32: 1e-5, jnp.float64: 1e-13, jnp.bfloat16: 5e-2}[dtype]
    np.testing.assert_allclose(np.asarray(x1, np.float64), expected, atol=tol)


def test_sgd_state_layout():
    x = jnp.asarray(X0)
    s = riemannian_sgd(0.1).init(x)
    assert isinstance(s, RiemannianSGDState) and s.momentum is None
    s = riemannian_sgd(0.1, momentum=0.9).init(x)
    assert s.momentum.shape == x.shape


# --------------------------------------------------------------------------- apply_updates


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_apply_updates_rule(dtype):
    p = jnp.array([[0.5, 0.0], [0.9, 0.0]], dtype)
    u = jnp.array([[0.1, 0.2], [0.5, 0.0]], dtype)
    out = apply_updates(p, u, curvature=-1.0)
    assert out.dtype == dtype
    np.testing.assert_allclose(out[0], [0.6, 0.2], rtol=1e-6)
    np.testing.assert_allclose(out[1], [1 - EPS[dtype], 0.0], rtol=1e-6)  # 1.4 → boundary
    out = apply_updates(p, u, curvature=-4.0)  # radius 1/2
    np.testing.assert_allclose(np.linalg.norm(out, axis=-1), [(1 - EPS[dtype]) / 2] * 2, rtol=1e-6)
    # Jittable, and masks select the ball leaves (prefix or callable).
    tree = {"ball": p, "flat": u * 10}
    upd = {"ball": u, "flat": u}
    out = jax.jit(lambda a, b: apply_updates(a, b, mask={"ball": True, "flat": False}))(tree, upd)
    np.testing.assert_allclose(out["flat"], np.asarray(u * 11), rtol=1e-6)
    assert np.all(np.linalg.norm(np.asarray(out["ball"]), axis=-1) < 1)
    out2 = apply_updates(tree, upd, mask=lambda t: {"ball": True, "flat": False})
    np.testing.assert_array_equal(out2["flat"], out["flat"])


def test_apply_updates_rounding_stays_inside():
    # Points at the projection bound plus tiny outward displacements.
    e = EPS[jnp.float32]
    x = jnp.array([[1 - e, 0.0], [0.0, -(1 - e)]], jnp.float32)
    u = jnp.array([[1e-7, 0.0], [0.0, -1e-7]], jnp.float32)
    out = apply_updates(x, u)
    assert np.all(np.linalg.norm(np.asarray(out, np.float64), axis=-1) <= 1 - e + 1e-7)


# ------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("factory", [riemannian_adam, riemannian_sgd])
def test_bad_arguments(factory):
    with pytest.raises(ValueError, match="curvature=0.5"):
        factory(0.1, curvature=0.5)
    for lr in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="learning_rate="):
            factory(lr)
    with pytest.raises(ValueError, match="learning_rate="):
        factory(jnp.float32(-0.1))
    with pytest.raises(ValueError, match="retraction='cayley'"):
        factory(0.1, retraction="cayley")
    tx = factory(0.1)
    x = jnp.asarray(X0)
    with pytest.raises(ValueError, match="params=None"):
        tx.update(x, tx.init(x))
    with pytest.raises(ValueError, match=r"shape \(\) has no coordinate axis"):
        tx.init({"a": x, "s": jnp.float64(1.0)})
    with pytest.raises(ValueError, match="curvature"):
        apply_updates(x, x, curvature=1.0)


def test_bad_hyperparameters():
    with pytest.raises(ValueError, match="nesterov=True requires momentum > 0"):
        riemannian_sgd(0.1, nesterov=True)
    with pytest.raises(ValueError, match=r"momentum=1.0 must lie in \[0, 1\)"):
        riemannian_sgd(0.1, momentum=1.0)
    with pytest.raises(ValueError, match="momentum=-0.1"):
        riemannian_sgd(0.1, momentum=-0.1)
    with pytest.raises(ValueError, match="b1=1.0"):
        riemannian_adam(0.1, b1=1.0)
    with pytest.raises(ValueError, match="b2=-0.5"):
        riemannian_adam(0.1, b2=-0.5)
    with pytest.raises(ValueError, match="eps=-1"):
        riemannian_adam(0.1, eps=-1.0)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_inject_hyperparams_momentum(momentum):
    # momentum arrives as a concrete array in init and a traced one in update.
    tx = optax.inject_hyperparams(riemannian_sgd)(learning_rate=0.3, momentum=momentum)
    x = jnp.asarray(X0)
    state = tx.init(x)
    step = jax.jit(tx.update)
    for _ in range(4):
        u, state = step(_egrad_jnp(x), state, x)
        x = apply_updates(x, u)
    expected = ref.run_sgd(X0, _egrad_np, [0.3] * 4, 1.0, momentum=momentum)
    np.testing.assert_allclose(x, expected, rtol=0, atol=1e-13)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_gradient_through_a_step_finite_at_origin_and_boundary(dtype):
    # Rows: the origin, a tiny point, a point on the boundary sphere, one beyond it.
    x0 = jnp.array([[0.0, 0.0], [1e-15, 0.0], [0.6, 0.8], [3.0, 4.0]], dtype)

    def loss(x):
        tx = riemannian_adam(0.1)
        u, _ = tx.update(2 * x + 1.0, tx.init(x), x)
        y = apply_updates(x, u)
        tx2 = riemannian_sgd(0.5, momentum=0.9)
        u2, _ = tx2.update(2 * y - 1.0, tx2.init(y), y)
        return jnp.sum(poincare.dist0(apply_updates(y, u2)))

    value, grad = jax.jit(jax.value_and_grad(loss))(x0)
    assert np.isfinite(value) and np.all(np.isfinite(grad))


def test_riemannian_sgd_step_function():
    from spiraljax.optim import riemannian_sgd_step

    x, g = jnp.asarray(X0), jnp.asarray(_egrad_np(X0))
    for retraction in ("expmap", "first_order"):
        y = jax.jit(riemannian_sgd_step, static_argnames="retraction")(
            x, g, 0.3, retraction=retraction
        )
        expected = ref.run_sgd(X0, _egrad_np, [0.3], 1.0, retraction=retraction)
        np.testing.assert_allclose(y, expected, rtol=0, atol=1e-14)
    with pytest.raises(ValueError, match="retraction='exp'"):
        riemannian_sgd_step(x, g, 0.3, retraction="exp")
    with pytest.raises(ValueError, match="learning_rate=-0.3"):
        riemannian_sgd_step(x, g, -0.3)
