"""Hypergrad / Realgrad tapes (SPEC §2): accumulation rules, exact steps, pytree behaviour."""

import jax
import jax.numpy as jnp
import numpy as np
import optim_reference as ref
import pytest

from spiraljax.optim import Hypergrad, Realgrad, apply_updates, riemannian_sgd

_RNG = np.random.default_rng(99)
W = _RNG.normal(size=(3, 4)) * 0.25
P = _RNG.normal(size=(3, 4))
T = _RNG.normal(size=(3, 4))
WAVE = _RNG.normal(size=(3, 4))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("curvature", [-1.0, -0.3])
def test_hypergrad_apply_is_exact_rsgd_step(dtype, curvature):
    tape = Hypergrad(curvature, 0.7, (3, 4), dtype=dtype)
    tape = tape.accumulate_pair(P, T).accumulate_wave(WAVE)
    g = (P - T) + WAVE
    np.testing.assert_allclose(tape.gradient, g, atol=float(10 * jnp.finfo(dtype).eps))
    new_w, tape2 = tape.apply(jnp.asarray(W, dtype))
    assert new_w.dtype == dtype and new_w.shape == (3, 4)
    c = -curvature
    # float64 reference from the values the tape actually holds.
    g64 = np.asarray(tape.gradient, np.float64)
    w64 = np.asarray(jnp.asarray(W, dtype), np.float64)
    expected = ref.expmap(w64, -0.7 * g64 / ref.lam(w64, c) ** 2, c)
    tol = 1e-6 if dtype == jnp.float32 else 1e-13
    np.testing.assert_allclose(np.asarray(new_w, np.float64), expected, atol=tol)
    # The accumulator resets; configuration is kept.
    np.testing.assert_array_equal(tape2.gradient, np.zeros((3, 4)))
    assert tape2.shape == (3, 4) and float(tape2.learning_rate) == pytest.approx(0.7)
    # Same step as riemannian_sgd without momentum.
    tx = riemannian_sgd(0.7, curvature=curvature)
    w = jnp.asarray(W, dtype)
    u, _ = tx.update(jnp.asarray(g, dtype), tx.init(w), w)
    np.testing.assert_allclose(
        apply_updates(w, u, curvature=curvature), new_w, atol=10 * float(jnp.finfo(dtype).eps)
    )


def test_hypergrad_apply_stays_in_ball_from_outside():
    tape = Hypergrad(-1.0, 10.0, (2, 2), dtype=jnp.float32).accumulate_wave(
        jnp.full((2, 2), -1e6, jnp.float32)
    )
    new_w, _ = tape.apply(jnp.array([[3.0, 4.0], [0.0, 1.0]], jnp.float32))
    assert np.all(np.isfinite(new_w))
    assert np.all(np.linalg.norm(np.asarray(new_w, np.float64), axis=-1) < 1)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_realgrad_is_euclidean_step(dtype):
    tape = Realgrad(0.1, (3,), dtype=dtype).accumulate_pair([1.0, -2.0, 0.5], [0.0, 0.0, 0.0])
    new_w, tape2 = tape.apply(jnp.zeros(3, dtype))
    # The seed's pinned example: lr 0.1, g = [1, −2, .5] → W = [−.1, .2, −.05].
    np.testing.assert_allclose(new_w, [-0.1, 0.2, -0.05], rtol=1e-6)
    np.testing.assert_array_equal(tape2.gradient, np.zeros(3))
    # No projection: weights far outside any ball stay where the step puts them.
    far, _ = Realgrad(1.0, (2,), dtype=dtype).accumulate_wave([-5.0, 0.0]).apply([10.0, 0.0])
    np.testing.assert_allclose(far, [15.0, 0.0])


def test_accumulation_rules():
    tape = Hypergrad(-1.0, 0.1, (2, 3), dtype=jnp.float64)
    a, b = _RNG.normal(size=(2, 3)), _RNG.normal(size=(2, 3))
    t1 = tape.accumulate_pair(a, b)
    np.testing.assert_allclose(t1.gradient, a - b)
    t2 = t1.accumulate_pair(b, a)
    np.testing.assert_allclose(t2.gradient, np.zeros((2, 3)), atol=1e-15)
    assert tape.gradient is not t1.gradient  # functional: the original is untouched
    np.testing.assert_array_equal(tape.gradient, np.zeros((2, 3)))
    # Complex wave: re/im interleaved along the last axis.
    z = np.array([[1 + 2j], [3 - 4j]])
    t3 = Hypergrad(-1.0, 0.1, (2, 2), dtype=jnp.float64).accumulate_wave(z)
    np.testing.assert_array_equal(t3.gradient, [[1.0, 2.0], [3.0, -4.0]])
    z3 = np.array([1 + 2j, 3 - 4j, 5j])
    t4 = Realgrad(0.1, (6,), dtype=jnp.float64).accumulate_wave(z3)
    np.testing.assert_array_equal(t4.gradient, [1, 2, 3, -4, 0, 5])


def test_barycenter_path():
    tape = Realgrad(0.1, (4,), dtype=jnp.float64)
    stages = _RNG.random(size=(5, 4))
    # Default: the seed's wave(ρ₀) + Σ pair(ρₖ, ρₖ₋₁) composition.
    seed_way = tape.accumulate_wave(stages[0])
    for k in range(1, 5):
        seed_way = seed_way.accumulate_pair(stages[k], stages[k - 1])
    got = tape.accumulate_barycenter_path(stages)
    np.testing.assert_allclose(got.gradient, seed_way.gradient, atol=1e-15)
    np.testing.assert_allclose(got.gradient, stages[-1])
    # A sequence, or objects with .density, give the same.
    seq = tape.accumulate_barycenter_path(list(stages))
    np.testing.assert_array_equal(seq.gradient, got.gradient)

    class Stage:
        def __init__(self, density):
            self.density = density

    objs = tape.accumulate_barycenter_path([Stage(s) for s in stages])
    np.testing.assert_array_equal(objs.gradient, got.gradient)
    # Weighted: the path average.
    avg = tape.accumulate_barycenter_path(stages, weights=jnp.full(5, 0.2))
    np.testing.assert_allclose(avg.gradient, stages.mean(axis=0), rtol=1e-14)
    one = tape.accumulate_barycenter_path(stages[:1])
    np.testing.assert_array_equal(one.gradient, stages[0])


def test_bad_inputs():
    with pytest.raises(ValueError, match="curvature=0.5"):
        Hypergrad(0.5, 0.1, (3,))
    for lr in (0.0, -0.1, float("inf")):
        with pytest.raises(ValueError, match="learning_rate="):
            Hypergrad(-1.0, lr, (3,))
        with pytest.raises(ValueError, match="learning_rate="):
            Realgrad(lr, (3,))
    for shape in ((), (0, 3), (-1,), "ab", (2.5,), None):
        with pytest.raises(ValueError, match="shape="):
            Realgrad(0.1, shape)
    with pytest.raises(ValueError, match="dtype=int32"):
        Realgrad(0.1, (3,), dtype=jnp.int32)
    tape = Hypergrad(-1.0, 0.1, (2, 3))
    with pytest.raises(ValueError, match=r"prediction has shape \(3, 2\), but the tape shape"):
        tape.accumulate_pair(np.zeros((3, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"target has shape \(3,\)"):
        tape.accumulate_pair(np.zeros((2, 3)), np.zeros(3))
    with pytest.raises(ValueError, match=r"wave has shape \(2, 4\)"):
        tape.accumulate_wave(np.zeros((2, 2), np.complex64))
    with pytest.raises(ValueError, match=r"weights has shape \(3, 2\)"):
        tape.apply(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="densities is empty"):
        tape.accumulate_barycenter_path([])
    with pytest.raises(ValueError, match=r"densities has shape \(5, 3\)"):
        tape.accumulate_barycenter_path(np.zeros((5, 3)))
    with pytest.raises(ValueError, match=r"densities\[1\] has shape \(3,\)"):
        tape.accumulate_barycenter_path([np.zeros((2, 3)), np.zeros(3)])
    with pytest.raises(ValueError, match=r"weights has shape \(3,\); expected \(2,\)"):
        tape.accumulate_barycenter_path(np.zeros((2, 2, 3)), weights=np.ones(3))
    with pytest.raises(ValueError, match="real array"):
        tape.accumulate_pair(np.zeros((2, 3), np.complex64), np.zeros((2, 3)))


def _train(tape, w, preds, targets):
    def body(carry, pt):
        tape, w = carry
        tape = tape.accumulate_pair(*pt)
        w, tape = tape.apply(w)
        return (tape, w), None

    (tape, w), _ = jax.lax.scan(body, (tape, w), (preds, targets))
    return tape, w


@pytest.mark.parametrize("kind", ["hyper", "real"])
def test_jit_scan_vmap(kind):
    def make(lr):
        if kind == "hyper":
            return Hypergrad(-1.0, lr, (3, 4), dtype=jnp.float64)
        return Realgrad(lr, (3, 4), dtype=jnp.float64)

    preds = jnp.asarray(_RNG.normal(size=(4, 3, 4)))
    targets = jnp.zeros((4, 3, 4))
    w0 = jnp.asarray(W)
    tape, w = jax.jit(_train)(make(0.1), w0, preds, targets)
    # Eager reference, one step at a time.
    t_e, w_e = make(0.1), w0
    for p, t in zip(preds, targets, strict=True):
        w_e, t_e = t_e.accumulate_pair(p, t).apply(w_e)
    np.testing.assert_allclose(w, w_e, rtol=1e-13)
    np.testing.assert_array_equal(tape.gradient, np.zeros((3, 4)))
    # vmap over a batch of tapes with different learning rates.
    lrs = jnp.array([0.05, 0.1, 0.2])
    tapes = jax.vmap(make)(lrs)
    assert tapes.gradient.shape == (3, 3, 4) and tapes.shape == (3, 4)
    _, ws = jax.vmap(_train, in_axes=(0, None, None, None))(tapes, w0, preds, targets)
    np.testing.assert_allclose(ws[1], w, rtol=1e-13)
    # vmap of the methods themselves over a batch of inputs (the per-example shape is checked).
    acc = jax.vmap(lambda p: make(0.1).accumulate_wave(p).gradient)(preds)
    np.testing.assert_array_equal(acc, preds)


def test_grad_through_apply():
    def loss(lr, w):
        tape = Hypergrad(-1.0, lr, (3, 4), dtype=jnp.float64).accumulate_pair(P, T)
        new_w, _ = tape.apply(w)
        return jnp.sum(new_w**2)

    g_lr, g_w = jax.grad(loss, argnums=(0, 1))(jnp.float64(0.3), jnp.asarray(W))
    assert np.isfinite(g_lr) and np.all(np.isfinite(g_w))
    h = 1e-6
    fd = (loss(0.3 + h, jnp.asarray(W)) - loss(0.3 - h, jnp.asarray(W))) / (2 * h)
    np.testing.assert_allclose(g_lr, fd, rtol=1e-6)


def test_pytree_roundtrip_and_repr():
    tape = Hypergrad(-2.0, 0.1, (2,), dtype=jnp.float64).accumulate_wave([1.0, 2.0])
    leaves, treedef = jax.tree_util.tree_flatten(tape)
    assert len(leaves) == 3
    back = jax.tree_util.tree_unflatten(treedef, leaves)
    assert isinstance(back, Hypergrad) and back.shape == (2,)
    np.testing.assert_array_equal(back.gradient, [1.0, 2.0])
    assert float(back.curvature) == -2.0
    assert "Hypergrad(" in repr(tape) and "Realgrad(" in repr(Realgrad(0.1, 3))
    assert Realgrad(0.1, 3).shape == (3,)
