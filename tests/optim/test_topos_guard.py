"""topos_guard (SPEC §2, §5): rewrite non-finite / oversized updates, observable counts."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from spiraljax.optim import ToposGuardState, apply_updates, riemannian_adam, topos_guard
from spiraljax.topos import OpenCartesianTopos

TOPOS = OpenCartesianTopos(curvature=-1.0, saturation=100.0)


def _counts(c):
    return int(c.nan), int(c.inf), int(c.saturated)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_rewrites_and_counts(dtype):
    tx = topos_guard(TOPOS)
    updates = {
        "a": jnp.array([[np.nan, 1.0], [np.inf, -1e9]], dtype),
        "b": jnp.array([-np.inf, 100.0, -100.0, 100.5, np.nan, 3.0], dtype),
    }
    state = tx.init(updates)
    assert isinstance(state, ToposGuardState)
    assert _counts(state.last) == (0, 0, 0) and _counts(state.total) == (0, 0, 0)
    out, state = jax.jit(tx.update)(updates, state)
    np.testing.assert_array_equal(out["a"], np.array([[0, 1], [100, -100]], dtype))
    np.testing.assert_array_equal(out["b"], np.array([-100, 100, -100, 100, 0, 3], dtype))
    assert out["a"].dtype == dtype
    # NaN: 2; ±Inf: 2; finite |v| > S: −1e9 and 100.5 (exactly ±S is not rewritten).
    assert _counts(state.last) == (2, 2, 2)
    assert _counts(state.total) == (2, 2, 2)
    clean = jax.tree_util.tree_map(jnp.zeros_like, updates)
    out2, state = tx.update(clean, state)
    assert _counts(state.last) == (0, 0, 0) and _counts(state.total) == (2, 2, 2)
    _, state = tx.update(updates, state)
    assert _counts(state.total) == (4, 4, 4) and int(state.total.nan + state.total.inf) == 8
    np.testing.assert_array_equal(out2["b"], np.zeros(6, dtype))


def test_finite_updates_untouched():
    tx = topos_guard(TOPOS)
    u = jnp.asarray(np.random.default_rng(0).normal(size=(7, 3)) * 30, jnp.float32)
    u = jnp.clip(u, -100, 100)
    out, state = tx.update(u, tx.init(u))
    np.testing.assert_array_equal(out, u)
    assert _counts(state.last) == (0, 0, 0)


def test_chain_guard_then_riemannian_adam_survives_nan_gradients():
    tx = optax.chain(topos_guard(TOPOS), riemannian_adam(0.05))
    x = jnp.array([[0.1, 0.2], [0.5, -0.5]], jnp.float32)
    state = tx.init(x)
    grads = [
        jnp.array([[np.nan, 1.0], [np.inf, -np.inf]], jnp.float32),
        jnp.array([[1.0, 1.0], [1.0, 1.0]], jnp.float32),
        jnp.array([[1e30, np.nan], [0.0, 0.0]], jnp.float32),
    ]
    step = jax.jit(tx.update)
    for g in grads:
        u, state = step(g, state, x)
        x = apply_updates(x, u)
        assert np.all(np.isfinite(x))
        assert np.all(np.linalg.norm(np.asarray(x, np.float64), axis=-1) < 1)
    guard_state = state[0]
    assert _counts(guard_state.total) == (2, 2, 1)
    # Without the guard the same gradients poison the parameters.
    bare = riemannian_adam(0.05)
    y = jnp.array([[0.1, 0.2], [0.5, -0.5]], jnp.float32)
    u, _ = bare.update(grads[0], bare.init(y), y)
    assert not np.all(np.isfinite(u))


def test_partition_masked_leaves_and_vmap():
    params = {"ball": jnp.zeros((2, 2), jnp.float32), "w": jnp.zeros(3, jnp.float32)}
    tx = optax.partition(
        {"g": topos_guard(TOPOS), "id": optax.identity()},
        lambda p: {"ball": "g", "w": "id"},
    )
    grads = {
        "ball": jnp.array([[np.nan, 1e4], [0.0, 0.0]], jnp.float32),
        "w": jnp.array([np.nan, 1.0, 2.0], jnp.float32),
    }
    out, state = tx.update(grads, tx.init(params), params)
    np.testing.assert_array_equal(out["ball"], [[0.0, 100.0], [0.0, 0.0]])
    assert np.isnan(out["w"][0])  # not routed through the guard
    guard_state = state.inner_states["g"].inner_state
    assert _counts(guard_state.last) == (1, 0, 1)
    # vmap over a batch of updates: per-example counts.
    batch = jnp.array([[np.nan, 0.0], [np.inf, 1e3]], jnp.float32)
    g = topos_guard(TOPOS)
    outs, states = jax.vmap(g.update, in_axes=(0, None))(batch, g.init(batch[0]))
    np.testing.assert_array_equal(states.last.nan, [1, 0])
    np.testing.assert_array_equal(states.last.inf, [0, 1])
    np.testing.assert_array_equal(states.last.saturated, [0, 1])
    np.testing.assert_array_equal(outs, [[0.0, 0.0], [100.0, 100.0]])


def test_bad_topos():
    with pytest.raises(ValueError, match="must be an OpenCartesianTopos"):
        topos_guard({"saturation": 1.0})
