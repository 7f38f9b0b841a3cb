"""roundtable: band partition by |g| (Rank-K) and per-band scaling."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from spiraljax.optim.roundtable import RoundtableState, roundtable


def _bands_ref(g, kt, kb):
    """0 top / 1 middle / 2 bottom from a stable numpy ordering of −|g| (NaN largest)."""
    flat = np.abs(np.asarray(g, np.float64).ravel())
    key = np.where(np.isnan(flat), np.inf, flat)
    nan_first = np.isnan(flat)
    order = np.lexsort((np.arange(flat.size), -key, ~nan_first))
    band = np.ones(flat.size, int)
    band[order[:kt]] = 0
    kb = min(kb, flat.size - kt)
    if kb:
        band[order[flat.size - kb :]] = 2
    return band.reshape(np.shape(g))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_bands_and_weights(dtype):
    rng = np.random.default_rng(0)
    grads = {
        "w": jnp.asarray(np.round(rng.standard_normal((5, 6)), 1), dtype),  # ties
        "b": jnp.asarray(rng.standard_normal(4), dtype),
    }
    tx = roundtable(3, 2, (2.0, 1.0, 0.0))
    state = tx.init(grads)
    assert isinstance(state, RoundtableState)
    upd, state = jax.jit(tx.update)(grads, state)
    for name, g in grads.items():
        band = _bands_ref(g, 3, 2)
        w = np.array([2.0, 1.0, 0.0])[band]
        np.testing.assert_array_equal(np.asarray(upd[name]), w * np.asarray(g))
    assert int(state.count) == 1
    total = sum(float(jnp.sum(jnp.abs(g))) for g in grads.values())
    np.testing.assert_allclose(float(jnp.sum(state.band_energy)), total, rtol=1e-6)


def test_fractions_overlap_and_chain():
    g = {"x": jnp.asarray([3.0, -1.0, 2.0, 2.0, -5.0, 0.5], jnp.float32)}
    tx = roundtable(0.5, 0.9, (1.0, 7.0, -1.0))  # top 3, bottom capped to the other 3
    upd, _ = tx.update(g, tx.init(g))
    np.testing.assert_array_equal(
        np.asarray(upd["x"]), [3.0, 1.0, 2.0, -2.0, -5.0, -0.5]
    )  # |g| order: 5(4), 3(0), 2(2), 2(3), 1(1), .5(5) → top {4,0,2}, bottom {3,1,5}
    opt = optax.chain(roundtable(1, 1, (1.0, 0.5, 0.0)), optax.sgd(0.1))
    params = {"x": jnp.zeros(6, jnp.float32)}
    u, _ = opt.update(g, opt.init(params), params)
    np.testing.assert_allclose(np.asarray(u["x"]), -0.1 * np.array([1.5, -0.5, 1, 1, -5, 0]))


def test_vmap_over_batched_leaves_and_errors():
    tx = roundtable(1, 1, (1.0, 0.0, 1.0))
    g = jnp.asarray([[1.0, 4.0, 2.0], [9.0, 0.0, 3.0]], jnp.float32)
    out = jax.vmap(lambda r: tx.update({"g": r}, tx.init(None))[0]["g"])(g)
    np.testing.assert_array_equal(np.asarray(out), [[1.0, 4.0, 0.0], [9.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match="weights="):
        roundtable(1, 1, (1.0, 2.0))
    with pytest.raises(ValueError, match="top_k=1.5"):
        roundtable(1.5, 1)
    with pytest.raises(ValueError, match="bottom_k=-2"):
        roundtable(1, -2)
