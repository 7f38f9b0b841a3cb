"""Independent numpy reference for the Rank-K total order (no spiraljax code), and a
jaxpr walker listing the pallas_calls a function launches."""

import numpy as np


def order_columns(x):
    """lexsort keys (primary last) ranking x ascending in the total order, ties by index."""
    x = np.asarray(x)
    idx = np.broadcast_to(np.arange(x.shape[-1]), x.shape)
    if np.issubdtype(x.dtype, np.integer):
        return (idx, x.astype(np.int64))
    xf = x.astype(np.float64)
    nan = np.isnan(xf)
    sign = np.signbit(xf)
    cls = np.where(nan, np.where(sign, 0, 2), 1)
    val = np.where(nan, 0.0, xf)
    zero_order = np.where(sign, 0, 1)  # −0.0 before +0.0
    return (idx, zero_order, val, cls)


def ref_indices(x, k, kind):
    """Reference indices along the last axis."""
    keys = order_columns(x)
    n = np.shape(x)[-1]
    if kind == "top":
        idx = keys[0]
        neg = tuple(-np.asarray(c, dtype=np.float64) for c in keys[1:])
        order = np.lexsort((idx, *neg), axis=-1)
        return order[..., :k]
    order = np.lexsort(keys, axis=-1)
    s = (n - k) // 2 if kind == "mid" else 0
    return order[..., s : s + k]


SPECIALS = np.array([np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0], np.float64)


def random_input(rng, shape, dtype, ties=False):
    dtype = np.dtype(dtype)
    if dtype == np.int32:
        hi = 5 if ties else 2**31 - 1
        return rng.integers(-hi - 1 if not ties else -hi, hi, size=shape, dtype=np.int64).astype(
            np.int32
        )
    if dtype == np.uint32:
        hi = 5 if ties else 2**32 - 1
        return rng.integers(0, hi, size=shape, dtype=np.uint64).astype(np.uint32)
    x = rng.standard_normal(shape)
    if ties:
        x = np.round(x * 2) / 2
    mask = rng.random(shape) < 0.15
    x = np.where(mask, rng.choice(SPECIALS, size=shape), x)
    return x.astype(dtype)


def pallas_grids(fn, x):
    """(grid, output shape) of every pallas_call in fn's jaxpr, nested jaxprs included."""
    import jax

    out = []

    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            if eqn.primitive.name == "pallas_call":
                gm = eqn.params["grid_mapping"]
                out.append((tuple(gm.grid), tuple(eqn.params["out_avals"][0].shape)))
            for p in eqn.params.values():
                for j in p if isinstance(p, (tuple, list)) else (p,):
                    inner = getattr(j, "jaxpr", None)
                    if inner is not None and hasattr(inner, "eqns"):
                        walk(inner)
                    elif hasattr(j, "eqns"):
                        walk(j)

    walk(jax.make_jaxpr(fn)(x).jaxpr)
    return out
