"""OpenCartesianTopos (SPEC §5): rewrite rules, guard, static-config behaviour."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jax.experimental import checkify

from spiraljax.topos import OpenCartesianTopos, RewriteCounts, ToposError

DTYPES = [jnp.float32, jnp.float64]
EPS = {jnp.float32: 1e-5, jnp.float64: 1e-5}  # geometry.ball_eps


def _radius(curvature):
    return 1 / np.sqrt(-curvature)


# ---------------------------------------------------------------------------- construction


def test_defaults_and_fields():
    t = OpenCartesianTopos()
    assert (t.curvature, t.tolerance, t.saturation) == (-1.0, 1e-6, 1e6)
    t2 = OpenCartesianTopos(-0.5, 1e-3, 10.0, 100, 7)
    assert (t2.curvature, t2.tolerance, t2.saturation, t2.max_volume, t2.max_depth) == (
        -0.5,
        1e-3,
        10.0,
        100,
        7,
    )


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"curvature": 0.5}, "curvature=0.5"),
        ({"curvature": float("nan")}, "curvature=nan"),
        ({"tolerance": 0.0}, "tolerance=0.0"),
        ({"tolerance": -1.0}, "tolerance=-1.0"),
        ({"saturation": 0.0}, "saturation=0.0"),
        ({"saturation": float("inf")}, "saturation=inf"),
        ({"max_volume": 0}, "max_volume=0"),
        ({"max_volume": 2.5}, "max_volume=2.5"),
        ({"max_depth": 0}, "max_depth=0"),
        ({"max_depth": True}, "max_depth=True"),
    ],
)
def test_bad_config(kwargs, needle):
    with pytest.raises(ValueError, match=needle.replace("(", r"\(")):
        OpenCartesianTopos(**kwargs)


def test_traced_curvature_rejected():
    with pytest.raises(ValueError, match="concrete"):
        jax.jit(lambda k: OpenCartesianTopos(curvature=k))(jnp.float32(-1.0))


def test_frozen_hashable_static():
    a = OpenCartesianTopos(-1.0, 1e-6, 5.0, 10, 3)
    b = OpenCartesianTopos(np.float64(-1.0), 1e-6, 5, 10, 3)
    assert a == b and hash(a) == hash(b)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.saturation = 3.0
    assert jax.tree_util.tree_leaves(a) == []
    x = jnp.array([jnp.nan, 10.0, -1.0], jnp.float32)
    # As a pytree argument, a closure, and a static argument of jit.
    out1 = jax.jit(lambda t, v: t.saturate(v))(a, x)
    out2 = jax.jit(lambda v: a.saturate(v))(x)
    out3 = jax.jit(lambda v, t: t.saturate(v), static_argnums=1)(x, a)
    for out in (out1, out2, out3):
        np.testing.assert_array_equal(out, np.array([0.0, 5.0, -1.0], np.float32))


# ------------------------------------------------------------------------------- rewrite


@pytest.mark.parametrize("dtype", DTYPES)
def test_saturate_rules(dtype):
    t = OpenCartesianTopos(saturation=3.0)
    x = jnp.array([np.nan, np.inf, -np.inf, 4.0, -1e30, 3.0, -3.0, 2.5, 0.0, -0.0], dtype)
    expected = np.array([0, 3, -3, 3, -3, 3, -3, 2.5, 0, 0], dtype)
    out = t.saturate(x)
    assert out.dtype == dtype and out.shape == x.shape
    np.testing.assert_array_equal(out, expected)
    counts = t.count_rewrites(x)
    assert isinstance(counts, RewriteCounts)
    # |±3.0| == S is not rewritten; 4.0 and -1e30 are.
    assert (int(counts.nan), int(counts.inf), int(counts.saturated)) == (1, 2, 2)


def test_saturate_float16_saturation_above_dtype_max():
    t = OpenCartesianTopos(saturation=1e6)
    out = t.saturate(jnp.array([np.inf, -np.inf, np.nan, 1.0], jnp.float16))
    assert out.dtype == jnp.float16
    assert np.all(np.isfinite(np.asarray(out, np.float32)))
    assert float(out[0]) == float(jnp.finfo(jnp.float16).max)


def test_saturate_complex():
    t = OpenCartesianTopos(saturation=2.0)
    x = jnp.array([complex(np.nan, 5.0), complex(-np.inf, 1.0)], jnp.complex64)
    out = t.saturate(x)
    np.testing.assert_array_equal(out, np.array([complex(0, 2), complex(-2, 1)], np.complex64))
    c = t.count_rewrites(x)
    assert (int(c.nan), int(c.inf), int(c.saturated)) == (1, 1, 1)


def test_saturate_rejects_int():
    with pytest.raises(ValueError, match="dtype=int32"):
        OpenCartesianTopos().saturate(jnp.array([1, 2], jnp.int32))


@given(
    st.lists(
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True, width=32),
            st.sampled_from([1e-15, -1e-15, 1e6, -1e6, 1e30, -1e30]),
        ),
        min_size=2,
        max_size=12,
    ),
    st.floats(1e-3, 1e4),
)
def test_saturate_monotone_and_bounded(values, sat):
    t = OpenCartesianTopos(saturation=sat)
    x = np.sort(np.array([v for v in values if not np.isnan(v)] or [0.0], np.float64))
    out = np.asarray(t.saturate(jnp.asarray(x, jnp.float64)))
    assert np.all(np.diff(out) >= 0), "saturate must be monotone non-decreasing"
    assert np.all(np.abs(out) <= sat)
    inside = np.abs(x) <= sat
    np.testing.assert_array_equal(out[inside], x[inside])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("curvature", [-1.0, -4.0, -1e-3])
def test_rewrite_projects_into_ball(dtype, curvature):
    t = OpenCartesianTopos(curvature=curvature, saturation=1e6)
    x = jnp.array(
        [[np.nan, np.inf], [1e30, -1e30], [0.1, 0.0], [0.0, 0.0], [1e-15, 0.0], [-np.inf, 0.0]],
        dtype,
    )
    out = t.rewrite(x)
    assert out.dtype == dtype and out.shape == x.shape
    assert np.all(np.isfinite(out))
    norms = np.linalg.norm(np.asarray(out, np.float64), axis=-1)
    bound = (1 - EPS[dtype]) * _radius(curvature)
    assert np.all(norms <= bound * (1 + 1e-6))
    # Points inside the ball are untouched; NaN → 0 before projection.
    small = 0.1 * min(1.0, _radius(curvature))
    if small == 0.1:
        np.testing.assert_array_equal(out[2], np.array([0.1, 0.0], dtype))
    np.testing.assert_array_equal(out[3], np.zeros(2, dtype))
    # [NaN, +Inf] → [0, S] → projected onto the positive second axis.
    np.testing.assert_allclose(out[0], np.array([0.0, bound], dtype), rtol=1e-6)


def test_rewrite_euclidean_topos_is_saturate():
    t = OpenCartesianTopos(curvature=0.0, saturation=5.0)
    x = jnp.array([[np.nan, 100.0, 4.0]], jnp.float64)
    np.testing.assert_array_equal(t.rewrite(x), np.array([[0.0, 5.0, 4.0]]))


def test_rewrite_needs_coordinate_axis():
    with pytest.raises(ValueError, match=r"x.shape=\(\)"):
        OpenCartesianTopos().rewrite(jnp.float32(1.0))


def test_rewrite_jit_vmap_grad():
    t = OpenCartesianTopos(curvature=-1.0, saturation=10.0)
    x = jnp.array([[0.2, 0.3], [3.0, 4.0], [np.nan, 0.1]], jnp.float64)
    ref = t.rewrite(x)
    np.testing.assert_allclose(jax.jit(t.rewrite)(x), ref)
    np.testing.assert_allclose(jax.vmap(t.rewrite)(x), ref)
    # Gradient: identity inside the ball, finite everywhere (0 through NaN entries).
    g = jax.grad(lambda v: jnp.sum(t.rewrite(v)))(x)
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g[0], [1.0, 1.0])
    assert g[2, 0] == 0.0


def test_tree_variants():
    t = OpenCartesianTopos(saturation=2.0, max_volume=6)
    tree = {
        "a": jnp.array([[np.nan, 3.0]], jnp.float32),
        "b": (jnp.array([np.inf, 1.0], jnp.float64),),
    }
    sat = t.saturate_tree(tree)
    np.testing.assert_array_equal(sat["a"], [[0.0, 2.0]])
    np.testing.assert_array_equal(sat["b"][0], [2.0, 1.0])
    counts = t.count_rewrites_tree(tree)
    assert (int(counts.nan), int(counts.inf), int(counts.saturated)) == (1, 1, 1)
    rew = t.rewrite_tree(tree)
    for leaf in jax.tree_util.tree_leaves(rew):
        assert np.all(np.linalg.norm(np.asarray(leaf, np.float64), axis=-1) < 1)
    assert bool(t.is_valid_tree(sat)) and not bool(t.is_valid_tree(tree))


# --------------------------------------------------------------------------------- guard


def test_guard_eager_passes_and_returns_input():
    t = OpenCartesianTopos(max_volume=4)
    x = jnp.ones((2, 2), jnp.float32)
    assert t.guard(x) is not None
    np.testing.assert_array_equal(t.guard(x), x)
    assert t.guard_tree({"a": x}) == {"a": x}
    np.testing.assert_array_equal(t.guard(jnp.arange(4)), np.arange(4))  # ints are finite


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_guard_eager_nonfinite(bad):
    t = OpenCartesianTopos()
    x = jnp.array([[0.0, 1.0], [2.0, bad]], jnp.float64)
    with pytest.raises(ToposError, match=r"1 non-finite entries \(first at index \(1, 1\)"):
        t.guard(x)
    with pytest.raises(ValueError, match=r"leaf \['w'\]"):
        t.guard_tree({"v": jnp.zeros(2), "w": x})


def test_guard_volume():
    t = OpenCartesianTopos(max_volume=5)
    with pytest.raises(ToposError, match="volume 6 > max_volume=5"):
        t.guard(jnp.zeros((2, 3), jnp.float32))
    with pytest.raises(ToposError, match="pytree has volume 6 > max_volume=5"):
        t.guard_tree([jnp.zeros(3), jnp.zeros(3)])
    # The volume rule is static: it also fires while tracing.
    with pytest.raises(ToposError, match="max_volume=5"):
        jax.jit(t.guard)(jnp.zeros(6, jnp.float32))
    assert not bool(t.is_valid(jnp.zeros(6, jnp.float32)))
    assert bool(t.is_valid(jnp.zeros(5, jnp.float32)))
    assert not bool(jax.jit(t.is_valid)(jnp.array([1.0, np.nan], jnp.float32)))


def test_guard_checkify_under_jit():
    t = OpenCartesianTopos()
    f = jax.jit(checkify.checkify(lambda v: t.guard(v) * 2))
    err, out = f(jnp.array([1.0, 2.0], jnp.float32))
    err.throw()
    np.testing.assert_array_equal(out, [2.0, 4.0])
    err, _ = f(jnp.array([1.0, np.nan, np.inf], jnp.float32))
    with pytest.raises(checkify.JaxRuntimeError, match="2 non-finite entries"):
        err.throw()
    # Tree variant under checkify.
    g = jax.jit(checkify.checkify(lambda tr: t.guard_tree(tr)))
    err, _ = g({"a": jnp.array([np.nan], jnp.float32)})
    with pytest.raises(checkify.JaxRuntimeError, match=r"leaf \['a'\]"):
        err.throw()


def test_guard_strict_needs_checkify_nonstrict_is_debug_check():
    t = OpenCartesianTopos()
    with pytest.raises(ValueError, match="checkify"):
        jax.jit(t.guard)(jnp.ones(2, jnp.float32))
    # strict=False: a no-op under plain jit, still reported under checkify.
    out = jax.jit(lambda v: t.guard(v, strict=False))(jnp.array([np.nan], jnp.float32))
    assert np.isnan(out[0])
    err, _ = checkify.checkify(jax.jit(lambda v: t.guard(v, strict=False)))(
        jnp.array([np.nan], jnp.float32)
    )
    with pytest.raises(checkify.JaxRuntimeError, match="1 non-finite"):
        err.throw()


def test_check_depth():
    t = OpenCartesianTopos(max_depth=3)
    assert t.check_depth(3) == 3
    with pytest.raises(ToposError, match="depth=4 exceeds max_depth=3"):
        t.check_depth(4)


@given(
    st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=4, max_size=4),
    st.sampled_from([-1.0, -0.25, 0.0]),
)
def test_rewrite_idempotent(values, curvature):
    t = OpenCartesianTopos(curvature=curvature, saturation=1e3)
    x = jnp.asarray(np.array(values, np.float32).reshape(2, 2))
    once = _jit_rewrite(t, x)
    np.testing.assert_array_equal(_jit_rewrite(t, once), once)
    assert np.all(np.isfinite(once))


@jax.jit
def _jit_rewrite(t, x):
    return t.rewrite(x)
