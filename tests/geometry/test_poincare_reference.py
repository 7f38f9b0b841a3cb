"""float64 agreement with an independent 50-digit mpmath reference (~1e-10 relative)."""

import jax
import jax.numpy as jnp
import numpy as np
import poincare_reference as ref
import pytest
from geo_utils import ball_points, tangents

import spiraljax.geometry as G

REL = 1e-10
KS = (-1.0, -0.37, -4.2)
F64 = jnp.float64


def _close(actual, expected, rel=REL):
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    scale = np.maximum(np.abs(expected), np.max(np.abs(expected)) * 1e-3)
    err = np.max(np.abs(actual - expected) / np.maximum(scale, 1e-300))
    assert err <= rel, f"relative error {err:.3e} > {rel:.1e}"


def _data(k, seed=0, n=5, d=3, max_frac=0.95):
    rng = np.random.default_rng(seed)
    x = ball_points(rng, (n, d), k, F64, max_frac=max_frac)
    y = ball_points(rng, (n, d), k, F64, max_frac=max_frac)
    u = tangents(rng, (n, d), F64, scale=1.5)
    return x, y, u


@pytest.mark.parametrize("k", KS)
def test_binary_ops_match_mpmath(k):
    x, y, u = _data(k)
    _close(
        G.mobius_add(x, y, curvature=k),
        [ref.mobius_add(a, b, k) for a, b in zip(x, y, strict=True)],
    )
    _close(
        G.mobius_sub(x, y, curvature=k),
        [ref.mobius_add(a, -b, k) for a, b in zip(x, y, strict=True)],
    )
    _close(
        G.gyration(x, y, u, curvature=k), [ref.gyration(*t, k) for t in zip(x, y, u, strict=True)]
    )
    _close(G.dist(x, y, curvature=k), [ref.dist(a, b, k) for a, b in zip(x, y, strict=True)])
    _close(
        G.pairwise_dist(x, y, curvature=k),
        [[ref.dist(a, b, k) for b in y] for a in x],
        rel=1e-8,  # ‖x−y‖² expansion: documented cancellation, still ~1e-9 here
    )
    _close(G.logmap(x, y, curvature=k), [ref.logmap(a, b, k) for a, b in zip(x, y, strict=True)])


@pytest.mark.parametrize("k", KS)
def test_maps_match_mpmath(k):
    x, y, u = _data(k, seed=1)
    _close(G.expmap(x, u, curvature=k), [ref.expmap(a, b, k) for a, b in zip(x, u, strict=True)])
    _close(G.expmap0(u, curvature=k), [ref.expmap0(a, k) for a in u])
    _close(G.logmap0(y, curvature=k), [ref.logmap0(a, k) for a in y])
    _close(G.dist0(x, curvature=k), [ref.dist0(a, k) for a in x])
    _close(G.conformal_factor(x, curvature=k), [ref.conformal_factor(a, k) for a in x])
    for r in (-2.5, 0.3, 7.0):
        _close(G.mobius_scalar_mul(r, x, curvature=k), [ref.mobius_scalar_mul(r, a, k) for a in x])
    m = np.random.default_rng(2).normal(size=(4, 3))
    _close(G.mobius_matvec(m, x, curvature=k), [ref.mobius_matvec(m, a, k) for a in x])


@pytest.mark.parametrize("k", (-1.0, -4.2))
def test_near_boundary_and_near_points_float64(k):
    rng = np.random.default_rng(3)
    # Points at radius (1 − 1e-6)/√c (inside the float64 projection margin 1e-5 → use 1e-5·0.5)
    x = ball_points(rng, (4, 3), k, F64, min_frac=1 - 5e-6, max_frac=1 - 4e-6)
    y = -x[::-1]
    _close(G.dist(x, y, curvature=k), [ref.dist(a, b, k) for a, b in zip(x, y, strict=True)])
    _close(G.dist0(x, curvature=k), [ref.dist0(a, k) for a in x])
    _close(G.logmap0(x, curvature=k), [ref.logmap0(a, k) for a in x])
    # Near points: x and x + 1e-9·δ — the closed form keeps full relative precision.
    z = x * 0.5
    w = z + 1e-9 * tangents(rng, (4, 3), F64) / np.sqrt(-k)
    _close(
        G.dist(z, w, curvature=k), [ref.dist(a, b, k) for a, b in zip(z, w, strict=True)], rel=1e-7
    )
    _close(
        G.logmap(z, w, curvature=k),
        [ref.logmap(a, b, k) for a, b in zip(z, w, strict=True)],
        rel=1e-7,
    )


@pytest.mark.parametrize("k", (-1.0, -2.0))
def test_float32_dist_near_points(k):
    """float32 dist keeps relative precision for near points (documented claim)."""
    rng = np.random.default_rng(4)
    x = np.asarray(ball_points(rng, (6, 3), k, F64, max_frac=0.9), np.float32)
    y = x + np.float32(1e-4) * np.asarray(tangents(rng, (6, 3), F64), np.float32)
    expected = [ref.dist(a, b, k) for a, b in zip(x, y, strict=True)]
    _close(G.dist(jnp.asarray(x), jnp.asarray(y), curvature=k), expected, rel=2e-3)


def test_mlr_logits_match_mpmath():
    k = -0.8
    rng = np.random.default_rng(5)
    p = ball_points(rng, (4, 3), k, F64, max_frac=0.7)
    a0 = tangents(rng, (4, 3), F64)
    x = ball_points(rng, (5, 3), k, F64, max_frac=0.9)
    logits = G.poincare_mlr.apply({"p": p, "a": a0}, x, curvature=k)
    expected = [[ref.mlr_logits(p[j], a0[j], x[i], k) for j in range(4)] for i in range(5)]
    _close(logits, expected, rel=1e-9)


def test_reference_detects_a_perturbation():
    """The 1e-10 check has teeth: a 1e-6 relative perturbation of the input fails it."""
    k = -1.0
    x, y, _ = _data(k, seed=6)
    expected = [ref.dist(a, b, k) for a, b in zip(x, y, strict=True)]
    with pytest.raises(AssertionError):
        _close(G.dist(x, y * (1 + 1e-6), curvature=k), expected)
    assert jax.numpy.asarray(G.dist(x, y, curvature=k)).dtype == F64
