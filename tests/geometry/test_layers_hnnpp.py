"""HNN++ layers on the ball (Shimizu et al. 2021): unidirectional MLR, Poincaré FC,
β-concatenation / β-split, the Poincaré 1-D convolution — against the paper's formulas
(float64 numpy references in layers_reference.py), their defining properties, jit / vmap /
grad, float32 extremes and bad input."""

import jax
import jax.numpy as jnp
import layers_reference as ref
import numpy as np
import pytest
from geo_utils import assert_close, assert_finite, ball_points

import spiraljax.geometry as G

F32, F64 = jnp.float32, jnp.float64


# Every float64 MLR / FC call below uses z (4, 3) and points (6, 3), so each function is
# compiled once for the file (compiles dominate its run time).
def _zr(rng, out=4, n=3, dtype=F64, r_scale=0.5):
    return {
        "z": jnp.asarray(rng.normal(size=(out, n)), dtype),
        "r": jnp.asarray(rng.normal(size=out) * r_scale, dtype),
    }


@pytest.mark.parametrize("k", [-1.0, -2.5])
def test_unidirectional_mlr_and_fc_match_the_paper(k):
    c = -k
    rng = np.random.default_rng(0)
    prm = _zr(rng)
    x = ball_points(rng, (6, 3), k, F64, max_frac=0.9)
    v = G.unidirectional_mlr.apply(prm, x, curvature=k)
    assert v.shape == (6, 4)
    assert_close(v, ref.hnnpp_mlr(x, prm["z"], prm["r"], c), F64, 100)
    y = G.poincare_linear.apply(prm, x, curvature=k)
    assert y.shape == (6, 4)
    assert_close(y, ref.hnnpp_fc(x, prm["z"], prm["r"], c), F64, 100)
    # How the unidirectional MLR is derived: Ganea's MLR with offset q_k = exp₀(r_k [z_k])
    # and normal z_k.
    z, r = np.asarray(prm["z"]), np.asarray(prm["r"])
    q = ref.expmap0(r[:, None] * z / np.linalg.norm(z, axis=-1, keepdims=True), c)
    ganea = G.poincare_mlr.apply({"p": jnp.asarray(q), "a": prm["z"]}, x, curvature=k)
    assert_close(v, ganea, F64, 100)
    # Eq. 7's defining property: the signed distance of y to the k-th coordinate hyperplane
    # through 0 is v_k(x) (Ganea's logit at p = 0, a = e_k is twice that distance).
    # Rows that reach the projection margin (distance 12.2/√c) are left out.
    axes = {"p": jnp.zeros((4, 4), F64), "a": jnp.eye(4, dtype=F64)}
    inside = np.sqrt(c) * np.linalg.norm(y, axis=-1) < 1 - 2e-5
    assert inside.sum() >= 4
    assert_close((G.poincare_mlr.apply(axes, y, curvature=k) / 2)[inside], v[inside], F64, 100)


def test_euclidean_limit_and_zero_normal_value():
    rng = np.random.default_rng(1)
    prm = _zr(rng)
    x = ball_points(rng, (6, 3), -1.0, F64)
    z, r = np.asarray(prm["z"]), np.asarray(prm["r"])
    v0 = 4 * (np.asarray(x) @ z.T - r * np.linalg.norm(z, axis=-1))
    assert_close(G.unidirectional_mlr.apply(prm, x, curvature=0.0), v0, F64)
    assert_close(G.poincare_linear.apply(prm, x, curvature=0.0), v0 / 2, F64)
    assert_close(G.unidirectional_mlr.apply(prm, x, curvature=-1e-12), v0, F64, 1e3)
    zero = {**prm, "z": prm["z"].at[1].set(0.0)}
    assert np.all(G.unidirectional_mlr.apply(zero, x)[:, 1] == 0)  # gradients: below


def test_fc_with_overflowing_sinh_keeps_the_direction():
    """√c|v_k| from 30 to a few hundred (sinh overflows float32 beyond 89, its square beyond
    44): the output is on the projection boundary, in the direction of the float64 formula."""
    k, c = -1.0, 1.0
    rng = np.random.default_rng(2)
    prm = _zr(rng)
    prm["z"] = prm["z"] * 4.0
    x = ball_points(rng, (6, 3), k, F64, min_frac=0.9, max_frac=0.99)
    expect = ref.hnnpp_fc(x, prm["z"], prm["r"], c)
    v = np.abs(ref.hnnpp_mlr(x, prm["z"], prm["r"], c)).max(-1)
    big = v > 31
    assert big.sum() >= 3 and v.max() < 700  # the rescaled branch; finite in float64 numpy
    unit = expect / np.linalg.norm(expect, axis=-1, keepdims=True)
    for dtype in (F32, F64):
        p = jax.tree.map(lambda a: a.astype(dtype), prm)
        y = np.asarray(G.poincare_linear.apply(p, x.astype(dtype)), np.float64)
        n = np.linalg.norm(y, axis=-1)
        np.testing.assert_allclose(n[big], 1 - 1e-5, rtol=1e-6)
        np.testing.assert_allclose(y / n[:, None], unit, atol=1e-5 if dtype == F32 else 1e-9)


def test_beta_concat_and_split():
    k, c = -0.7, 0.7
    rng = np.random.default_rng(3)
    a = ball_points(rng, (5, 2), k, F64)
    b = ball_points(rng, (5, 3), k, F64)
    cat = G.beta_concat([a, b], curvature=k)
    assert cat.shape == (5, 5)
    assert_close(cat, ref.beta_concat([a, b], c), F64)
    for sections, sizes in (([2, 3], [2, 3]), (5, [1] * 5)):
        parts = G.beta_split(cat, sections, curvature=k)
        for got, want in zip(parts, ref.beta_split(np.asarray(cat), sizes, c), strict=True):
            assert_close(got, want, F64)
    back = G.beta_split(cat, [2, 3], curvature=k)
    assert_close(back[0], a, F64)
    assert_close(back[1], b, F64)
    # Leading axes broadcast; at c = 0 each block is scaled by β_n/β_{n_i}.
    single = G.beta_concat([a[0], b], curvature=k)
    assert_close(single[0], cat[0], F64)
    flat = G.beta_concat([a, b], curvature=0.0)
    assert_close(flat[:, :2], a * ref.beta_n(5) / ref.beta_n(2), F64)


def _conv_params(rng, c_in, c_out, kernel, dtype=F64):
    return {
        "z": jnp.asarray(rng.normal(size=(c_out, kernel, c_in)) * 0.5, dtype),
        "r": jnp.asarray(rng.normal(size=c_out) * 0.3, dtype),
    }


@pytest.mark.parametrize(
    ("stride", "padding", "dilation", "pad"),
    [(1, "valid", 1, (0, 0)), (1, "same", 2, (2, 2)), (2, (1, 0), 1, (1, 0))],
)
def test_conv1d_matches_the_paper(stride, padding, dilation, pad):
    k, c = -1.3, 1.3
    rng = np.random.default_rng(4)
    params = _conv_params(rng, 2, 3, 3)
    x = ball_points(rng, (2, 7, 2), k, F64)
    y = G.poincare_conv1d.apply(
        params, x, curvature=k, stride=stride, padding=padding, dilation=dilation
    )
    for i in range(2):
        want = ref.conv1d(x[i], params["z"], params["r"], c, stride, pad, dilation)
        assert y.shape[1:] == want.shape
        assert_close(y[i], want, F64, 10)


def test_conv1d_kernel_one_is_the_fc_layer_and_init():
    rng = np.random.default_rng(5)
    params = _conv_params(rng, 3, 4, 1)
    x = ball_points(rng, (6, 3), -1.0, F64)
    fc = {"z": params["z"][:, 0], "r": params["r"]}
    assert_close(G.poincare_conv1d.apply(params, x), G.poincare_linear.apply(fc, x), F64)
    init = G.poincare_conv1d.init(jax.random.key(1), 3, 4, 2)
    assert init["z"].shape == (4, 2, 3) and init["r"].shape == (4,)
    assert init["z"].dtype == F32 and np.all(init["r"] == 0)
    np.testing.assert_allclose(np.std(init["z"]), (2 * 2 * 3 * 4) ** -0.5, rtol=0.5)
    lin = G.poincare_linear.init(jax.random.key(1), 3, 4, dtype=F64)
    assert lin["z"].shape == (4, 3) and lin["z"].dtype == F64 and np.all(lin["r"] == 0)


def _layers():
    """name → (f(params, x, k) on one sequence (L, 4), params, float64 reference of f)."""
    rng = np.random.default_rng(6)
    mlr = _zr(rng, 3, 4, F32)
    mlr["z"] = mlr["z"].at[2].set(0.0)  # a zero normal: v = 0, gradients finite
    conv = _conv_params(rng, 4, 3, 2, F32)
    return {
        "unidirectional_mlr": (
            lambda p, x, k: G.unidirectional_mlr.apply(p, x, curvature=k),
            mlr,
            lambda p, x, c: ref.hnnpp_mlr(x, p["z"], p["r"], c),
        ),
        "poincare_linear": (
            lambda p, x, k: G.poincare_linear.apply(p, x, curvature=k),
            mlr,
            lambda p, x, c: ref.hnnpp_fc(x, p["z"], p["r"], c),
        ),
        "poincare_conv1d": (
            lambda p, x, k: G.poincare_conv1d.apply(p, x, curvature=k),
            conv,
            lambda p, x, c: ref.conv1d(x, p["z"], p["r"], c),
        ),
        "beta_split": (
            lambda p, x, k: G.beta_concat(G.beta_split(x, [1, 3], curvature=k), curvature=k),
            {},
            lambda p, x, c: ref.beta_concat(ref.beta_split(x, [1, 3], c), c),
        ),
    }


@pytest.mark.parametrize(
    "name", ["beta_split", "poincare_conv1d", "poincare_linear", "unidirectional_mlr"]
)
def test_jit_vmap_grad_and_float32_extremes(name):
    f, params, reference = _layers()[name]
    k = -1.0
    rng = np.random.default_rng(7)
    x = np.array(ball_points(rng, (2, 5, 4), k, F32))
    # Sequence 1 holds points 1e-15 from the origin, the origin, a point on the projection
    # margin, one exactly on the rounded boundary, and a regular one.
    unit = x[1] / np.linalg.norm(x[1], axis=-1, keepdims=True)
    x[1, :4] = np.stack([unit[0] * 1e-15, 0 * unit[1], G.project(unit[2] * 2.0), unit[3]])
    x = jnp.asarray(x)

    def loss(p, x, k):  # vmapped over the sequences; the outputs come back as aux
        y = jax.vmap(f, (None, 0, None))(p, x, k)
        return jnp.sum(jnp.sin(y)), y

    # One compiled function covers jit, vmap and grad (compiles dominate this file's time).
    vg = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True))
    (_, y), grads = vg(params, x, k)
    p64 = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
    assert_close(y[0], reference(p64, np.asarray(x[0], np.float64), -k), F32, 10)
    assert_finite(y, name)
    assert_finite(grads, name)
    # Learnable curvature through K = 0 (c = max(−K, 0)): finite there too.
    assert_finite(vg(params, x, 0.0), name)


def test_gradients_match_finite_differences_including_curvature():
    rng = np.random.default_rng(8)
    prm = _zr(rng)
    x = ball_points(rng, (6, 3), -1.0, F64)
    loss = lambda p, k: jnp.sum(jnp.sin(G.poincare_linear.apply(p, x, curvature=k)))  # noqa: E731
    vg = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))  # one compile: values give the FDs
    _, (gp, gk) = vg(prm, -0.8)
    h = 1e-6
    fdk = (vg(prm, -0.8 + h)[0] - vg(prm, -0.8 - h)[0]) / (2 * h)
    np.testing.assert_allclose(gk, fdk, rtol=1e-6)
    bump = {**prm, "r": prm["r"].at[1].add(h)}
    low = {**prm, "r": prm["r"].at[1].add(-h)}
    fdr = (vg(bump, -0.8)[0] - vg(low, -0.8)[0]) / (2 * h)
    np.testing.assert_allclose(gp["r"][1], fdr, rtol=1e-6)
    bump = {**prm, "z": prm["z"].at[0, 2].add(h)}
    low = {**prm, "z": prm["z"].at[0, 2].add(-h)}
    fdz = (vg(bump, -0.8)[0] - vg(low, -0.8)[0]) / (2 * h)
    np.testing.assert_allclose(gp["z"][0, 2], fdz, rtol=1e-6)


CONV = {"z": jnp.zeros((3, 3, 2)), "r": jnp.zeros(3)}


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (
            lambda: G.poincare_linear.apply(
                {"z": jnp.zeros((3, 4)), "r": jnp.zeros(3)}, jnp.zeros((2, 5))
            ),
            r"x has coordinate axis of size 5, but poincare_linear expects 4",
        ),
        (
            lambda: G.poincare_linear.apply(
                {"z": jnp.zeros((3, 4)), "r": jnp.zeros(2)}, jnp.zeros((2, 4))
            ),
            r"params\['r'\] has shape \(2,\), expected \(3,\)",
        ),
        (
            lambda: G.unidirectional_mlr.apply({"z": jnp.zeros((3, 4))}, jnp.zeros((2, 4))),
            r"keys \('z', 'r'\)",
        ),
        (
            lambda: G.poincare_linear.apply(
                {"z": jnp.zeros((3, 4)), "r": jnp.zeros(3)}, jnp.zeros((2, 4)), curvature=0.5
            ),
            r"curvature=0\.5 > 0",
        ),
        (lambda: G.poincare_linear.init(jax.random.key(0), 0, 3), "in_features=0"),
        (
            lambda: G.beta_split(jnp.zeros((2, 5)), 2),
            "sections=2 must be ≥ 1 and divide the size 5",
        ),
        (lambda: G.beta_split(jnp.zeros((2, 5)), [2, 2]), r"sections=\(2, 2\) must be sizes"),
        (lambda: G.beta_concat(jnp.zeros((2, 5))), "xs must be a non-empty sequence"),
        (lambda: G.beta_concat([jnp.zeros((2, 2)), jnp.zeros((3, 2))]), "do not broadcast"),
        (lambda: G.beta_concat([jnp.zeros(2)], curvature=2.0), r"curvature=2\.0 > 0"),
        (
            lambda: G.poincare_conv1d.apply(CONV, jnp.zeros((5, 4))),
            "x has coordinate axis of size 4, but poincare_conv1d expects 2 input channels",
        ),
        (
            lambda: G.poincare_conv1d.apply(CONV, jnp.zeros((2, 2))),
            "sequence length 2, shorter than the receptive field 3",
        ),
        (
            lambda: G.poincare_conv1d.apply(
                CONV,
                jnp.zeros((5, 2)),
                padding="full",
            ),
            "padding='full'",
        ),
        (
            lambda: G.poincare_conv1d.apply(CONV, jnp.zeros((5, 2)), stride=0),
            "stride=0",
        ),
        (
            lambda: G.poincare_conv1d.apply(
                {"z": jnp.zeros((3, 2)), "r": jnp.zeros(3)}, jnp.zeros((5, 2))
            ),
            r"must have shape \(C_out, K, C_in\)",
        ),
    ],
)
def test_bad_input(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()
