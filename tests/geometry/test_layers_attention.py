"""Poincaré multi-head attention (HNN++ §3.5 with Gulcehre et al.'s distance scores) against
a float64 loop reference, its invariances, masks, batching, jit / vmap / grad and bad input."""

import jax
import jax.numpy as jnp
import layers_reference as ref
import numpy as np
import pytest
from geo_utils import assert_close, assert_finite, ball_points

import spiraljax.geometry as G

F32, F64 = jnp.float32, jnp.float64
K = -0.8


def _params(dtype=F64, embed=4, heads=2, context_dim=None, seed=0):
    """Random params of ``poincare_attention.init``'s structure (numpy, no compile)."""
    rng = np.random.default_rng(seed)
    dims = {"q": embed, "k": context_dim or embed, "v": context_dim or embed, "o": embed}
    p = {
        name: {
            "z": jnp.asarray(rng.normal(size=(embed, d)) * 3 / np.sqrt(2 * d * embed), dtype),
            "r": jnp.asarray(rng.normal(size=embed) * 0.2, dtype),
        }
        for name, d in dims.items()
    }
    p["tau"] = jnp.asarray([1.5, 0.7][:heads], dtype)
    return p


def _apply(p, x, ctx=None, mask=None, k=K):
    return G.poincare_attention.apply(p, x, ctx, curvature=k, mask=mask, return_weights=True)


def _causal_with_empty_row(n):
    m = np.tril(np.ones((n, n), bool))
    m[0, 0] = False  # a query with nothing to attend to
    return m


def test_self_attention_matches_the_reference():
    rng = np.random.default_rng(1)
    p = _params()
    x = ball_points(rng, (2, 4, 4), K, F64)
    # Batch 0 masked causally (with one empty row), batch 1 unmasked: one compiled call.
    mask = np.stack([_causal_with_empty_row(4), np.ones((4, 4), bool)])[:, None]
    y, alpha = _apply(p, x, mask=jnp.asarray(mask))
    assert y.shape == (2, 4, 4) and alpha.shape == (2, 2, 4, 4)
    for b in range(2):
        want, want_alpha = ref.attention(p, np.asarray(x[b]), np.asarray(x[b]), -K, mask[b])
        assert_close(alpha[b], want_alpha, F64, 10)
        assert_close(y[b], want, F64, 100)
    assert np.all(np.asarray(alpha)[0, :, 0] == 0)  # the empty row attends to nothing
    np.testing.assert_allclose(np.sum(alpha, -1)[1], 1.0, rtol=1e-12)


def test_cross_attention_reference_invariances_masks_and_broadcast():
    rng = np.random.default_rng(2)
    p = _params(context_dim=3, seed=2)
    # Leading axes broadcast: queries (2, 1, ...) against contexts (3, ...) → batch (2, 3).
    x = ball_points(rng, (2, 1, 4, 4), K, F64)
    ctx = ball_points(rng, (3, 5, 3), K, F64)
    # A key-padding mask for context 0 (keys 1 and 4 off), none for the others.
    keep = np.ones((3, 5), bool)
    keep[0, [1, 4]] = False
    mask = jnp.asarray(keep[:, None, None, :])
    y, alpha = _apply(p, x, ctx, mask=mask)
    assert y.shape == (2, 3, 4, 4) and alpha.shape == (2, 3, 2, 4, 5)
    for a, b in ((0, 0), (1, 0), (1, 2)):
        want, want_alpha = ref.attention(p, np.asarray(x[a, 0]), np.asarray(ctx[b]), -K, keep[b])
        assert_close(alpha[a, b], want_alpha, F64, 10)
        assert_close(y[a, b], want, F64, 100)
    assert np.all(np.asarray(alpha)[:, 0][..., ~keep[0]] == 0)
    np.testing.assert_allclose(np.sum(alpha, -1), 1.0, rtol=1e-12)
    # Keys/values permuted together (with their mask): same output; queries permuted:
    # outputs permuted; what a masked key holds does not matter.
    perm = np.array([3, 0, 4, 2, 1])
    assert_close(_apply(p, x, ctx[:, perm], mask=mask[..., perm])[0], y, F64, 10)
    assert_close(_apply(p, x[:, :, ::-1], ctx, mask=mask)[0], y[:, :, ::-1], F64, 10)
    moved = ctx.at[0, 1].set(ctx[0, 1] * -0.5).at[0, 4].set(ctx[1, 0])
    assert_close(_apply(p, x, moved, mask=mask)[0], y, F64, 10)


def test_jit_vmap_grad_and_float32_extremes():
    rng = np.random.default_rng(4)
    p = _params(F32)
    x = np.array(ball_points(rng, (2, 5, 4), K, F32))
    unit = x[1] / np.linalg.norm(x[1], axis=-1, keepdims=True)
    x[1, :4] = np.stack(
        [unit[0] * 1e-15, 0 * unit[1], G.project(unit[2] * 5.0, curvature=K), unit[3] / np.sqrt(-K)]
    )
    x = jnp.asarray(x)
    mask = _causal_with_empty_row(5)

    def f(p, x, k):
        return G.poincare_attention.apply(p, x, curvature=k, mask=jnp.asarray(mask))

    def loss(p, x, k):  # vmapped over the batch; returns the outputs as aux
        y = jax.vmap(f, (None, 0, None))(p, x, k)
        return jnp.sum(jnp.sin(3 * y)), y

    # One compiled function covers jit, vmap and grad (compiles dominate this file's time).
    (_, y), grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True))(p, x, K)
    assert_finite(y)
    want = ref.attention(p, np.asarray(x[0]), np.asarray(x[0]), -K, mask)[0]
    assert_close(y[0], want, F32, 10)
    assert_finite(grads)
    assert float(jnp.abs(grads[2])) > 0  # the curvature is learnable: it moves the loss


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"x": jnp.zeros((3, 5))}, "x has coordinate axis of size 5, but poincare_attention"),
        ({"context": jnp.zeros((6, 3))}, "context has coordinate axis of size 3"),
        ({"x": jnp.zeros(4)}, r"x must have shape \(\.\.\., L, d\)"),
        ({"mask": jnp.ones((3, 3))}, "mask has dtype float"),
        ({"mask": jnp.ones((3, 2), bool)}, r"mask of shape \(3, 2\) does not broadcast"),
        ({"context": jnp.zeros((2, 6, 4)), "x": jnp.zeros((3, 3, 4))}, "do not broadcast"),
        ({"curvature": 1.0}, r"curvature=1\.0 > 0"),
    ],
)
def test_bad_input(kwargs, pattern):
    p = _params(F32)
    args = {"x": jnp.zeros((3, 4)), "context": None, **kwargs}
    x, ctx = args.pop("x"), args.pop("context")
    with pytest.raises(ValueError, match=pattern):
        G.poincare_attention.apply(p, x, ctx, **args)


def test_init_and_bad_params():
    key = jax.random.key(0)
    p = G.poincare_attention.init(key, 4, 2, context_dim=3)
    shapes = jax.tree.map(jnp.shape, p)
    assert shapes["q"] == {"z": (4, 4), "r": (4,)} and shapes["k"]["z"] == (4, 3)
    assert shapes["v"]["z"] == (4, 3) and shapes["o"]["z"] == (4, 4) and shapes["tau"] == (2,)
    assert p["tau"].dtype == F32
    with pytest.raises(ValueError, match="num_heads=3 must divide embed_dim=4"):
        G.poincare_attention.init(key, 4, 3)
    p = G.poincare_attention.init(key, 4, 2)
    with pytest.raises(ValueError, match=r"keys \('q', 'k', 'v', 'o', 'tau'\)"):
        G.poincare_attention.apply({k: v for k, v in p.items() if k != "tau"}, jnp.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"params\['tau'\] must have shape \(H,\)"):
        G.poincare_attention.apply({**p, "tau": jnp.ones(3)}, jnp.zeros((3, 4)))
