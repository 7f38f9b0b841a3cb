"""HGCN (Chami et al. 2019): the layer against the paper's formulas in float64 NumPy, the
sparse edge-list form against the dense adjacency form, transforms, gradients, bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spiraljax.geometry import lorentz
from spiraljax.nn import (
    add_self_loops,
    hgcn,
    hgcn_curvatures,
    hgcn_layer,
    hgcn_layer_dense,
    symmetrize,
)

RNG = np.random.default_rng(20)
# D_IN = D_OUT: fewer distinct shapes, so the layer's jitted pieces compile fewer times.
N, D_IN, D_OUT = 7, 4, 4
# A small directed multigraph: a duplicate edge (2 → 5 twice), a self-loop (4 → 4) and
# node 6 with no incoming edge.
SENDERS = np.array([0, 1, 2, 3, 4, 5, 0, 2, 2, 4, 6, 1])
RECEIVERS = np.array([1, 0, 1, 2, 3, 3, 5, 5, 5, 4, 0, 2])


def _adjacency(senders, receivers, n):
    a = np.zeros((n, n))
    np.add.at(a, (receivers, senders), 1.0)
    return a


ADJ = _adjacency(SENDERS, RECEIVERS, N)


def _points(n, d, k, scale=0.8, dtype=np.float64, rng=RNG):
    v = scale * rng.standard_normal((n, d))
    return lorentz.expmap0(np.concatenate([np.zeros((n, 1)), v], 1).astype(dtype), curvature=k)


def _params(attention=True, bias=True, dtype=jnp.float64, seed=0):
    p = hgcn_layer.init(
        jax.random.key(seed), D_IN, D_OUT, attention=attention, use_bias=bias, dtype=dtype
    )
    rng = np.random.default_rng(seed + 1)
    if bias:
        p["bias"] = jnp.asarray(0.4 * rng.standard_normal(D_OUT), dtype)
    if attention:
        p["attention"] = jnp.asarray(rng.standard_normal((2, D_OUT)), dtype)
    return p


# --------------------------------------------------------------------------------------
# An independent float64 reference: the paper's formulas on the hyperboloid, in NumPy
# --------------------------------------------------------------------------------------


def _mink(u, v):
    return -u[..., 0] * v[..., 0] + np.sum(u[..., 1:] * v[..., 1:], axis=-1)


def _ref_origin(d, c):
    o = np.zeros(d + 1)
    o[0] = 1 / np.sqrt(c)
    return o


def _ref_expmap(x, u, c):
    n = np.sqrt(max(_mink(u, u), 0.0))
    if n == 0:
        return x
    r = np.sqrt(c) * n
    return np.cosh(r) * x + np.sinh(r) / r * u


def _ref_logmap(x, y, c):
    a = -c * _mink(x, y)
    if a <= 1 or np.array_equal(x, y):  # the self-loop message log_x(x) = 0
        return np.zeros_like(x)
    d = np.arccosh(a) / np.sqrt(c)
    w = y + c * _mink(x, y) * x
    return d * w / np.sqrt(_mink(w, w))


def _ref_transp0(y, v, c):
    o = _ref_origin(len(y) - 1, c)
    return v + c * _mink(y, v) / (1 - c * _mink(o, y)) * (o + y)


def _leaky(t):
    return t if t >= 0 else 0.2 * t


def ref_layer(params, x, senders, receivers, k_in, k_out, act, aggregation):
    """Chami et al. 2019 §4: h = (W ⊗ x) ⊕ b, y = AGG(h), x' = σ^{⊗K_in,K_out}(y)."""
    c, c2 = -k_in, -k_out
    w = np.asarray(params["weight"], np.float64)
    d_out = w.shape[0]
    o = _ref_origin(d_out, c)
    h = []
    for xi in np.asarray(x, np.float64):
        u = _ref_logmap(_ref_origin(len(xi) - 1, c), xi, c)
        m = _ref_expmap(o, np.r_[0.0, w @ u[1:]], c)
        if "bias" in params:
            b = np.r_[0.0, np.asarray(params["bias"], np.float64)]
            m = _ref_expmap(m, _ref_transp0(m, b, c), c)
        h.append(m)
    h = np.array(h)
    z = np.array([_ref_logmap(o, hi, c) for hi in h])
    out = []
    for i in range(len(h)):
        edges = [e for e in range(len(senders)) if receivers[e] == i]
        if "attention" in params:
            a = np.asarray(params["attention"], np.float64)
            s = np.array([_leaky(a[0] @ z[i, 1:] + a[1] @ z[senders[e], 1:]) for e in edges])
            wts = np.exp(s - s.max()) / np.exp(s - s.max()).sum() if edges else s
        else:
            wts = np.full(len(edges), 1.0 / max(len(edges), 1))
        if aggregation == "local":
            msgs = [
                wt * _ref_logmap(h[i], h[senders[e]], c) for wt, e in zip(wts, edges, strict=True)
            ]
            t = sum(msgs, np.zeros(d_out + 1))
            y = _ref_expmap(h[i], t, c)
        else:
            t = sum(
                (wt * z[senders[e]] for wt, e in zip(wts, edges, strict=True)), np.zeros(d_out + 1)
            )
            y = _ref_expmap(o, t, c)
        u = act(_ref_logmap(o, y, c)[1:])
        out.append(_ref_expmap(_ref_origin(d_out, c2), np.r_[0.0, u], c2))
    return np.array(out)


RELU = jax.nn.relu


def _np_relu(u):
    return np.maximum(u, 0)


# Points within ~2 of the origin, where the textbook formulas of the reference (arcosh of
# −c⟨x, y⟩_L, Minkowski norms of ambient vectors) keep ~1e-12 accuracy; far from it they
# cancel, and the reference, not the layer, would set the tolerance.
@pytest.mark.parametrize("aggregation", ["local", "origin"])
@pytest.mark.parametrize(("attention", "bias"), [(True, True), (False, True), (True, False)])
def test_layer_matches_the_papers_formulas(aggregation, attention, bias):
    k_in, k_out = -0.7, -1.6
    params = _params(attention, bias)
    x = _points(N, D_IN, k_in)
    got = hgcn_layer(
        params, x, SENDERS, RECEIVERS, curvature_in=k_in, curvature_out=k_out,
        aggregation=aggregation,
    )  # fmt: skip
    want = ref_layer(params, x, SENDERS, RECEIVERS, k_in, k_out, _np_relu, aggregation)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-10, atol=1e-10)


def test_dense_reference_equals_sparse_on_random_graphs():
    apply, dense = hgcn_layer.apply, hgcn_layer_dense
    params = _params()
    for trial in range(3):
        rng = np.random.default_rng(100 + trial)
        s = rng.integers(0, N, len(SENDERS))
        r = rng.integers(0, N, len(SENDERS))
        x = _points(N, D_IN, -1.2, scale=1.5, rng=rng)
        for agg in ("local", "origin"):
            kw = dict(curvature_in=-1.2, curvature_out=-0.5, aggregation=agg)
            a = np.asarray(apply(params, x, s, r, **kw))
            b = np.asarray(dense(params, x, _adjacency(s, r, N), **kw))
            # The same sums in another order: equal to ~1e-9 of each point's coordinate
            # size (points here reach ~10 from the origin, coordinates ~10³). The local
            # aggregation's exp/log maps at far points amplify the reordering: 3.8e-10
            # measured since lorentz.expmap reads ‖u‖_L in the origin frame (3.5e-12 before).
            scale = np.maximum(np.abs(b).max(axis=1, keepdims=True), 1.0)
            assert np.all(np.abs(a - b) <= 1e-9 * scale), np.abs(a - b).max()


def test_outputs_lie_on_the_output_hyperboloid():
    params = _params()
    y = hgcn_layer(params, _points(N, D_IN, -0.3), SENDERS, RECEIVERS,
                   curvature_in=-0.3, curvature_out=-2.5)  # fmt: skip
    np.testing.assert_allclose(np.asarray(lorentz.inner(y, y)) * 2.5, -1.0, rtol=1e-12)
    assert np.all(np.asarray(y[:, 0]) > 0)


def test_node_without_incoming_edges_keeps_its_transformed_point():
    # Node 6 receives nothing: y_6 = h_6 (local aggregation). Compare with a graph whose
    # only edge into 6 is a self-loop, log_{h_6}(h_6) = 0.
    params = _params()
    x = _points(N, D_IN, -1.0)
    a = hgcn_layer(params, x, SENDERS, RECEIVERS)
    b = hgcn_layer(params, x, np.r_[SENDERS, 6], np.r_[RECEIVERS, 6])
    np.testing.assert_allclose(np.asarray(a[6]), np.asarray(b[6]), atol=1e-12)


def test_node_relabelling_permutes_the_output():
    params = _params()
    x = _points(N, D_IN, -1.0)
    perm = RNG.permutation(N)
    inv = np.argsort(perm)  # new id of old node i is inv[i]
    y = hgcn_layer(params, x, SENDERS, RECEIVERS)
    yp = hgcn_layer(params, x[perm], inv[SENDERS], inv[RECEIVERS])
    np.testing.assert_allclose(np.asarray(yp), np.asarray(y[perm]), atol=1e-12)


def test_attention_weights_are_a_softmax_over_each_receivers_neighbours():
    # Two senders into node 0 at the same point give the same message; any attention then
    # equals the mean. Scale the attention by 50: the output must not change.
    params = _params()
    x = np.array(_points(N, D_IN, -1.0))
    x[2] = x[1]
    s, r = np.array([1, 2, 3]), np.array([0, 0, 4])
    y1 = hgcn_layer(params, x, s, r)
    params["attention"] = 50 * params["attention"]
    y2 = hgcn_layer(params, x, s, r)
    no_att = {k: v for k, v in params.items() if k != "attention"}
    y3 = hgcn_layer(no_att, x, s, r)
    np.testing.assert_allclose(np.asarray(y1[0]), np.asarray(y2[0]), atol=1e-12)
    np.testing.assert_allclose(np.asarray(y1[0]), np.asarray(y3[0]), atol=1e-12)


# --------------------------------------------------------------------------------------
# Transforms and dtypes
# --------------------------------------------------------------------------------------


def test_jit_vmap_over_points_and_curvatures_with_traced_indices():
    params = _params()
    xs = jnp.stack([_points(N, D_IN, -1.0) for _ in range(3)])
    ks = jnp.array([-0.5, -1.0, -2.0])

    def f(x, k, s, r):  # under jit the indices are traced: not range-checked, still used
        return hgcn_layer(params, x, s, r, curvature_in=-1.0, curvature_out=k)

    batched = jax.jit(jax.vmap(f, in_axes=(0, 0, None, None)))(xs, ks, SENDERS, RECEIVERS)
    for i in range(3):
        np.testing.assert_allclose(
            np.asarray(batched[i]),
            np.asarray(f(xs[i], ks[i], SENDERS, RECEIVERS)),
            # jit+vmap fuses in another order; lorentz.expmap's origin-frame norm amplifies
            # that to ~4e-11 here (was < 1e-12 before it): float64 rounding, not a bug.
            rtol=1e-10,
            atol=1e-10,
        )


def _loss(p, x, k_in, k_out):
    """Squared distances between consecutive outputs (dist0 of exp_o^{K_out}(u) would be
    ‖u‖, free of K_out); the outputs as aux."""
    y = hgcn_layer(p, x, SENDERS, RECEIVERS, curvature_in=k_in, curvature_out=k_out,
                   activation=jnp.tanh)  # fmt: skip
    return jnp.sum(lorentz.dist(y[:-1], y[1:], curvature=k_out) ** 2), y


# One jitted value-and-gradient, compiled once per dtype and shared by the tests below
# (compiling the layer's gradient is the costliest step of this file).
LOSS_AND_GRAD = jax.jit(jax.value_and_grad(_loss, argnums=(0, 2, 3), has_aux=True))


def _loss_only(p, x, k_in, k_out):
    return float(LOSS_AND_GRAD(p, x, k_in, k_out)[0][0])


def test_gradients_in_params_and_curvature_match_finite_differences():
    params = _params()
    x = _points(N, D_IN, -0.8)
    k_in, k_out = jnp.float64(-0.8), jnp.float64(-1.3)
    (_, _), (gp, gk_in, gk_out) = LOSS_AND_GRAD(params, x, k_in, k_out)
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(gp))
    eps = 1e-6
    for g, (si, so) in ((gk_in, (eps, 0)), (gk_out, (0, eps))):
        up = _loss_only(params, x, k_in + si, k_out + so)
        dn = _loss_only(params, x, k_in - si, k_out - so)
        np.testing.assert_allclose(float(g), (up - dn) / (2 * eps), rtol=1e-6)
    for name, idx in (("attention", (1, 2)), ("weight", (0, 3)), ("bias", (1,))):
        e = np.zeros(params[name].shape)
        e[idx] = eps
        up = _loss_only({**params, name: params[name] + e}, x, k_in, k_out)
        dn = _loss_only({**params, name: params[name] - e}, x, k_in, k_out)
        np.testing.assert_allclose(float(gp[name][idx]), (up - dn) / (2 * eps), rtol=1e-6)


def _f32(tree):
    return jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), tree)


def test_float32_follows_float64():
    params, x, k = _params(), _points(N, D_IN, -1.0), jnp.float64(-1.0)
    (l64, y64), _ = LOSS_AND_GRAD(params, x, k, k)
    (l32, y32), g32 = LOSS_AND_GRAD(_f32(params), _f32(x), _f32(k), _f32(k))
    assert y32.dtype == jnp.float32 and y64.dtype == jnp.float64
    assert all(g.dtype == jnp.float32 for g in jax.tree.leaves(g32))
    np.testing.assert_allclose(np.asarray(y32), np.asarray(y64), rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(float(l32), float(l64), rtol=1e-4)


@pytest.mark.parametrize("scale", [1e-7, 4.0, 12.0])
def test_float32_gradients_finite_at_extremes(scale):
    # Points at the origin (tiny tangents) and far out (spatial norms up to ~e^{12·√4});
    # node 2 placed on node 1, so the edge 1 → 2 joins coincident points; a self-loop 4 → 4.
    x = np.array(_points(N, D_IN, -1.0, scale=scale, dtype=np.float32))
    x[2] = x[1]
    k = jnp.float32(-1.0)
    (loss, y), grads = LOSS_AND_GRAD(_f32(_params()), jnp.asarray(x), k, k)
    assert np.isfinite(float(loss)) and np.all(np.isfinite(np.asarray(y)))
    for g in jax.tree.leaves(grads):
        assert np.all(np.isfinite(np.asarray(g))), g


# --------------------------------------------------------------------------------------
# The stack with learnable curvatures
# --------------------------------------------------------------------------------------


def test_hgcn_stack_learns_curvatures():
    params = hgcn.init(jax.random.key(3), (D_IN, D_OUT, D_OUT), curvature=-0.5, dtype=jnp.float64)
    np.testing.assert_allclose(np.asarray(hgcn_curvatures(params)), [-0.5, -0.5, -0.5])
    for layer in params["layers"]:
        layer["attention"] = jnp.asarray(RNG.standard_normal((2, D_OUT)))
    feats = 0.3 * RNG.standard_normal((N, D_IN))

    y = hgcn(params, feats, SENDERS, RECEIVERS)
    assert y.shape == (N, D_OUT + 1)
    np.testing.assert_allclose(np.asarray(lorentz.inner(y, y)) * 0.5, -1.0, rtol=1e-12)
    # The stack is its layers, composed, with K = −exp(log_c) (the layers' gradients in
    # their curvatures are checked above, so log_c is learnable).
    params["log_c"] = jnp.log(jnp.array([0.5, 1.5, 0.8]))
    y = hgcn(params, feats, SENDERS, RECEIVERS)
    np.testing.assert_allclose(np.asarray(lorentz.inner(y, y)) * 0.8, -1.0, rtol=1e-12)
    ks = hgcn_curvatures(params)
    h = lorentz.expmap0(jnp.concatenate([jnp.zeros((N, 1)), feats], 1), curvature=ks[0])
    h = hgcn_layer(params["layers"][0], h, SENDERS, RECEIVERS, curvature_in=ks[0],
                   curvature_out=ks[1])  # fmt: skip
    h = hgcn_layer(params["layers"][1], h, SENDERS, RECEIVERS, curvature_in=ks[1],
                   curvature_out=ks[2], activation=lambda u: u)  # fmt: skip
    np.testing.assert_allclose(np.asarray(y), np.asarray(h), atol=1e-12)


def test_edge_helpers():
    s, r = symmetrize(np.array([0, 1]), np.array([2, 2]))
    assert s.tolist() == [0, 1, 2, 2] and r.tolist() == [2, 2, 0, 1]
    s, r = add_self_loops(s, r, 3)
    assert s.tolist()[-3:] == [0, 1, 2] and r.tolist()[-3:] == [0, 1, 2]


# --------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(senders=SENDERS[:-1]), "senders and receivers must be 1-D"),
        (dict(senders=SENDERS.reshape(3, 4), receivers=RECEIVERS.reshape(3, 4)), "1-D"),
        (dict(senders=SENDERS.astype(float)), "senders has dtype float64"),
        (dict(receivers=np.r_[RECEIVERS[:-1], N]), r"receivers has indices in \[0, 7\]"),
        (dict(senders=np.r_[SENDERS[:-1], -1]), r"senders has indices in \[-1, 6\]"),
        (dict(curvature_in=0.5), "curvature_in=0.5"),
        (dict(curvature_out=0.0), "curvature_out=0.0"),
        (dict(x_dim=D_IN), "coordinate axis of size 4.*in_features \\+ 1 = 5"),
        (dict(x_dim=D_IN + 2), "coordinate axis of size 6"),
        (dict(aggregation="mean"), "aggregation='mean'"),
    ],
)
def test_bad_input_names_the_argument(kwargs, match):
    params = _params()
    x = np.asarray(_points(N, D_IN, -1.0))
    if "x_dim" in kwargs:
        x = RNG.standard_normal((N, kwargs.pop("x_dim")))
    call = dict(senders=SENDERS, receivers=RECEIVERS) | kwargs
    with pytest.raises(ValueError, match=match):
        hgcn_layer(params, x, call.pop("senders"), call.pop("receivers"), **call)


def test_bad_params_and_adjacency():
    params = _params()
    x = _points(N, D_IN, -1.0)
    with pytest.raises(ValueError, match=r"attention must have shape \(2, 4\)"):
        hgcn_layer({**params, "attention": params["attention"][0]}, x, SENDERS, RECEIVERS)
    with pytest.raises(ValueError, match=r"bias must have shape \(4,\)"):
        hgcn_layer({**params, "bias": params["bias"][:2]}, x, SENDERS, RECEIVERS)
    with pytest.raises(ValueError, match="unknown keys"):
        hgcn_layer({**params, "scale": 1.0}, x, SENDERS, RECEIVERS)
    with pytest.raises(ValueError, match=r"adjacency must have shape \(7, 7\)"):
        hgcn_layer_dense(params, x, np.ones((N, N - 1)))
    with pytest.raises(ValueError, match="x must be hyperboloid points"):
        hgcn_layer(params, x[None], SENDERS, RECEIVERS)
    with pytest.raises(ValueError, match="in_features=0"):
        hgcn_layer.init(jax.random.key(0), 0, 3)
    with pytest.raises(ValueError, match="curvature=0.5"):
        hgcn.init(jax.random.key(0), (3, 4), curvature=0.5)
    with pytest.raises(ValueError, match=r"x must be Euclidean features of shape \(n, 3\)"):
        hgcn(hgcn.init(jax.random.key(0), (3, 4)), np.zeros((N, 4)), SENDERS, RECEIVERS)
