r"""Lorentz (hyperboloid) model of hyperbolic space of Gaussian curvature K < 0.

Write c = −K > 0. Points are arrays ``(..., d+1)`` on the upper sheet
H = {x : ⟨x, x⟩_L = −1/c, x₀ > 0} of the Minkowski space with ⟨u, v⟩_L = −u₀v₀ + Σᵢ uᵢvᵢ;
the tangent space at x is T_x = {u : ⟨x, u⟩_L = 0} with the metric ⟨·,·⟩_L. The spatial part
x_s = (x₁, …, x_d) determines the point: x₀ = √(1/c + ‖x_s‖²).

Conventions (as in ``spiraljax.geometry.poincare``, see docs/concepts/lorentz.md):

* ``curvature`` is keyword-only, a scalar K < 0 (Python float or array, traced allowed and
  differentiable). A concrete K > 0 raises ``ValueError``, and so does K = 0: the hyperboloid
  has no point at c = 0 (x₀ = 1/√c). A traced K is clamped to c ≥ 1e-15. Every result is
  continuous as K → 0⁻ and tends to the Euclidean one in the spatial coordinates
  (dist → ‖x_s − y_s‖, expmap → x_s + u_s).
* **Only the spatial part of a point is read**; x₀ is recomputed (this is ``project``), so
  every function accepts points that are off the hyperboloid by rounding, and no quantity is
  computed from the large, inaccurate x₀ where a formula in x_s serves. Likewise **tangent
  vectors are read by their spatial part**; their time component is the one that makes them
  tangent, u₀ = ⟨x_s, u_s⟩/x₀ (use ``proju`` to project an arbitrary ambient vector first).
  Returned tangent vectors are tangent to rounding.
* Spatial norms are capped at R = M·min(1, 1/√c) with M = 1e8 (32-bit and below) or 1e150
  (float64), i.e. distances from the origin up to about log(2M)/√c (19 for float32 at c = 1,
  against 6.2 in the float32 Poincaré ball); ``project`` applies the cap.
* float32 / float64 computed as given, bfloat16 / float16 in float32 and cast back; integer
  inputs and coordinate axes of size < 2 raise ``ValueError`` naming the argument.
* No NaN/Inf in values or gradients for finite inputs: coincident points, the origin, far
  points, tangent vectors of any size (expmap clamps the angle √c‖u‖_L along u, and the
  result saturates at the cap).

Accuracy. Distances use the Minkowski chord q = ⟨x − y, x − y⟩_L = 2(−c⟨x, y⟩_L − 1)/c
written as a sum of two non-negative terms,

    q = (2/√c · sinh(√c (A − B)/2))² + ‖x_s‖‖y_s‖ · ‖x̂_s − ŷ_s‖²,

A = dist0(x), B = dist0(y), x̂_s = x_s/‖x_s‖, and d = (2/√c) arsinh(√(c q)/2). This has no
cancellation for near points (where the usual arcosh(−c⟨x, y⟩_L) loses half the digits) nor
for far points on one ray (where −⟨x, y⟩_L cancels), and is Euclidean at c → 0.
Its gradient in the points is written in closed form from the chord's two terms
(``_dist_spatial_jvp``: no cancellation either, and about 6 times cheaper than autodiff
through the guarded series).

Far out, tangent vectors are ill-conditioned in ambient coordinates (the radial part is
X = √c x₀ times the norm, so rounding it adds a spurious part εX times the norm). Norms of
tangent vectors are therefore read after the closed-form transport to the origin o, and
``transp`` goes through o: P_{x→y} = P_{o→y} ∘ H ∘ P_{x→o}, H the holonomy of the triangle
(o, x, y), a rotation by its defect (``_holonomy``). The Riemannian optimisers keep their
buffers in that origin frame (``spiraljax.optim.riemannian.MANIFOLDS``).

References: M. Nickel, D. Kiela, *Learning Continuous Hierarchies in the Lorentz Model of
Hyperbolic Geometry*, ICML 2018; geoopt ``geoopt/manifolds/lorentz/math.py`` (k = 1/c).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.custom_derivatives import SymbolicZero

from spiraljax.geometry import poincare
from spiraljax.geometry.guards import (
    _series_split,
    arsinh_ratio,
    as_float,
    ball_eps,
    check_same_dim,
    clamp_min,
    curvature_to_c,
    is_concrete,
    safe_sqrt,
    sinh_ratio,
    tanh_ratio,
)
from spiraljax.geometry.poincare import _fused

__all__ = [
    "dist",
    "dist0",
    "egrad2rgrad",
    "expmap",
    "expmap0",
    "from_poincare",
    "geodesic",
    "inner",
    "logmap",
    "logmap0",
    "norm",
    "origin",
    "pairwise_dist",
    "project",
    "proju",
    "to_poincare",
    "transp",
]

ArrayLike = Any

#: Smallest c = −K used when K is traced (a concrete K = 0 raises).
C_MIN = 1e-15


# --------------------------------------------------------------------------------------
# Guards (named, as in guards.py)
# --------------------------------------------------------------------------------------


def _max_norm(dtype) -> float:
    """M of the spatial-norm cap R = M·min(1, 1/√c): R² and products of two norms stay finite."""
    # 1e8 in float32: a proju/egrad2rgrad product c·⟨x, g⟩·x of gradients up to 1e6 stays
    # below 1e30, and gradients through it stay finite.
    return 1e150 if jnp.dtype(dtype).itemsize >= 8 else 1e8


def _max_angle(dtype) -> float:
    """Largest √c‖u‖_L used by expmap: cosh of it times R stays finite (beyond, the cap binds)."""
    return 300.0 if jnp.dtype(dtype).itemsize >= 8 else 50.0


def _floor(dtype) -> float:
    """Smallest norm divided by: its square (and a ratio's b²) stays a normal number."""
    return 1e-150 if jnp.dtype(dtype).itemsize >= 8 else 1e-18


def _check_lorentz_curvature(curvature) -> None:
    if is_concrete(curvature) and np.shape(curvature) == () and float(np.asarray(curvature)) == 0:
        raise ValueError(
            f"curvature={float(np.asarray(curvature))}: the Lorentz model needs K < 0 "
            "(the hyperboloid ⟨x,x⟩_L = −1/c has no point at c = 0; use the Poincaré ball)"
        )


def _check_coordinate_axis(name: str, value, minimum: int = 2) -> None:
    shape = np.shape(value)
    if len(shape) == 0 or shape[-1] < minimum:
        size = shape[-1] if shape else None
        raise ValueError(
            f"{name} has coordinate axis of size {size}; Lorentz points and tangent vectors "
            f"have shape (..., d+1) with d ≥ 1 (size ≥ {minimum})"
        )


def _prep(curvature, points=(), others=()):
    """Validate and cast inputs; returns (arrays, c, out_dtype, work_dtype)."""
    for name, value in points:
        _check_coordinate_axis(name, value)
    if points:
        check_same_dim(*points)
    arrays, out, work = as_float(*points, *others)
    _check_lorentz_curvature(curvature)
    c = jnp.maximum(curvature_to_c(curvature, work), jnp.asarray(C_MIN, work))
    return arrays, c, out, work


# --------------------------------------------------------------------------------------
# Private math on the working dtype; c is a scalar array (c > 0)
# --------------------------------------------------------------------------------------


def _sq(x):
    return jnp.sum(x * x, axis=-1, keepdims=True)


def _dot(x, y):
    return jnp.sum(x * y, axis=-1, keepdims=True)


def _scaled(s):
    """(s/m, m) with m = max|sᵢ| (1 at s = 0): ‖s/m‖ ∈ [1, √d], so norms of huge finite
    inputs (1e30 in float32) do not overflow; m carries no gradient."""
    m = lax.stop_gradient(jnp.max(jnp.abs(s), axis=-1, keepdims=True))
    m = jnp.where(m > 0, m, 1)
    r = lax.rsqrt(m)
    return (s * r) * r, m


def _robust_norm(s):
    sr, m = _scaled(s)
    return safe_sqrt(_sq(sr)) * m


def _cap(s, c):
    """Spatial part with its norm capped at R = M·min(1, 1/√c).

    The capped branch is R·(s/m)/‖s/m‖, never s·(R/‖s‖): the latter's gradient forms
    ‖s‖² and (huge cotangent)·0."""
    big = _max_norm(s.dtype)
    radius = big * jnp.minimum(1, lax.rsqrt(c))
    sr, m = _scaled(s)
    nr = safe_sqrt(_sq(sr))
    over = nr * m > radius
    return jnp.where(over, sr * (radius / jnp.where(over, nr, 1)), s)


def _time(s2, c):
    """x₀ = √(1/c + ‖x_s‖²)."""
    return jnp.sqrt(1 / c + s2)


def _point(x, c):
    """(x_s capped, ‖x_s‖², x₀) of a point given as (..., d+1)."""
    s = _cap(x[..., 1:], c)
    s2 = _sq(s)
    return s, s2, _time(s2, c)


def _join(t, s):
    return jnp.concatenate([t, s], axis=-1)


def _tangent_time(s, x0, us):
    """u₀ = ⟨x_s, u_s⟩/x₀: the time component making (u₀, u_s) tangent at x.

    Written ⟨x̂_s, u_s⟩ · (‖x_s‖/x₀) so that no product of two large norms is formed."""
    sh, n = _unit(s, _sq(s))
    return _dot(sh, us) * (n / x0)


def _dist0_s(s2, c):
    """d(o, x) = arsinh(√c‖x_s‖)/√c."""
    return safe_sqrt(s2) * arsinh_ratio(c * s2)


def _unit(s, s2):
    n = safe_sqrt(s2)
    return s / clamp_min(n, _floor(s.dtype)), n


def _radial_gap(s, s2, t, t2, c):
    """dist0(x) − dist0(y) without cancellation for near points:

    arsinh a − arsinh b = arsinh((a² − b²)/(a√(1 + b²) + b√(1 + a²))) with a = √c‖x_s‖,
    b = √c‖y_s‖, and ‖x_s‖² − ‖y_s‖² = ⟨x_s − y_s, x_s + y_s⟩ (exact for near points).
    """
    xn, yn = safe_sqrt(s2), safe_sqrt(t2)
    den = xn * jnp.sqrt(1 + c * t2) + yn * jnp.sqrt(1 + c * s2)
    g = _dot(s - t, s + t) / clamp_min(den, _floor(s.dtype))
    return g * arsinh_ratio(c * g * g)


def _chord(s, s2, t, t2, c):
    """q = ⟨x − y, x − y⟩_L ≥ 0 (module docstring), with no cancellation."""
    _, radial = _radial_term(s, s2, t, t2, c)
    return radial * radial + _angular(s, s2, t, t2)


def _radial_term(s, s2, t, t2, c):
    """(A − B, (2/√c) sinh(√c (A − B)/2)): the radial gap and the chord's radial term."""
    gap = _radial_gap(s, s2, t, t2, c)
    return gap, gap * sinh_ratio(c * gap * gap / 4, max_root=_max_angle(s.dtype))


def _angular(s, s2, t, t2):
    """‖x_s‖‖y_s‖‖x̂_s − ŷ_s‖² accurate for near points: with b the longer and a the shorter
    of the two, b̂ − â = e/‖b‖, e = (b − a) − â (‖b‖² − ‖a‖²)/(‖a‖ + ‖b‖), so the term is
    (‖a‖/‖b‖)‖e‖² — only differences of the inputs, never of rounded unit vectors."""
    e, an, bn, _ = _unit_gap(s, s2, t, t2)
    return an / clamp_min(bn, _floor(s.dtype)) * _sq(e)


def _unit_gap(s, s2, t, t2):
    """(e, ‖a‖, ‖b‖, swap) of ``_angular``: x̂_s − ŷ_s = ±e/‖b‖ (− where swap, y_s longer)."""
    swap = t2 > s2
    b, b2 = jnp.where(swap, t, s), jnp.where(swap, t2, s2)
    a, a2 = jnp.where(swap, s, t), jnp.where(swap, s2, t2)
    ah, an = _unit(a, a2)
    bn = safe_sqrt(b2)
    e = (b - a) - ah * (_dot(b - a, b + a) / clamp_min(an + bn, _floor(s.dtype)))
    return e, an, bn, swap


def _dist_q(q, c):
    # d = (2/√c) arsinh(√(cq)/2) = √q · arsinh_ratio(cq/4).
    return safe_sqrt(q) * arsinh_ratio(c * q / 4)


def _project(x, c):
    s, _, x0 = _point(x, c)
    return _join(x0, s)


def _inner(u, v, keepdims):
    r = -u[..., :1] * v[..., :1] + _dot(u[..., 1:], v[..., 1:])
    return r if keepdims else r[..., 0]


def _norm(u, keepdims):
    r = safe_sqrt(_inner(u, u, True))
    return r if keepdims else r[..., 0]


def _proju(x, u, c):
    # u + c⟨x, u⟩_L x, with the time component recomputed from tangency.
    s, _, x0 = _point(x, c)
    xu = -x0 * u[..., :1] + _dot(s, u[..., 1:])
    us = u[..., 1:] + c * xu * s
    return _join(_tangent_time(s, x0, us), us)


def _egrad2rgrad(x, g, c):
    # proju(x, G g) with G = diag(−1, 1, …, 1) the Minkowski metric (geoopt's rule).
    return _proju(x, _join(-g[..., :1], g[..., 1:]), c)


def _angle_clamp(n, c):
    """(scale, θ²) for a tangent vector of norm n: θ² = min(c n², θ_max²), and the factor
    bringing the vector to the angle θ_max along itself when it is longer."""
    top = _max_angle(n.dtype)
    over = c * n * n > top * top
    scale = jnp.where(over, top / jnp.where(over, jnp.sqrt(c) * n, 1), 1)
    return scale, jnp.minimum(c * n * n, top * top)


def _expmap_s(s, s2, us, c):
    # exp_x(u) = cosh(√c n) x + sinh(√c n)/(√c n) u, spatial part, with n = ‖u‖_L read in the
    # origin frame (no square of the radial part, which is X = √c x₀ times n) and the angle
    # √c n clamped along u, so that tangents of any finite size give finite points.
    scale, theta2 = _angle_clamp(_robust_norm(_to_origin_s(s, s2, us, c)), c)
    return _cosh_root(theta2) * s + sinh_ratio(theta2) * (scale * us)


def _cosh_root(w):
    """cosh(√w) with a series near 0 (the derivative of √w is infinite there)."""
    small, ws, wd = _series_split(w)
    series = 1 + ws * (1 / 2 + ws * (1 / 24 + ws * (1 / 720)))
    return jnp.where(small, series, jnp.cosh(jnp.sqrt(wd)))


def _expmap(x, u, c):
    s, s2, _ = _point(x, c)
    return _project_s(_expmap_s(s, s2, u[..., 1:], c), c)


def _project_s(s, c):
    s = _cap(s, c)
    return _join(_time(_sq(s), c), s)


def _expmap0(u, c):
    us = u[..., 1:]
    w = jnp.minimum(c * _sq(us), _max_angle(us.dtype) ** 2)
    return _project_s(sinh_ratio(w) * us, c)


def _logmap0(y, c):
    s, s2, _ = _point(y, c)
    return _join(jnp.zeros_like(s2), arsinh_ratio(c * s2) * s)


def _logmap_terms(x, y, c):
    s, s2, x0 = _point(x, c)
    t, t2, y0 = _point(y, c)
    q = _chord(s, s2, t, t2, c)
    d = _dist_q(q, c)
    return s, s2, x0, t, t2, y0, q, d


def _logmap(x, y, c):
    # log_x(y) = (y − αx)/sinh_ratio(c d²), α = 1 + cq/2, written as
    # (y − x)/S − (c d²/2) tanh_ratio(c d²/4) x so that neither term overflows.
    s, _s2, x0, t, _, _, _, d = _logmap_terms(x, y, c)
    w = c * d * d
    us = (t - s) / sinh_ratio(w, max_root=_max_angle(s.dtype)) - (w / 2) * tanh_ratio(w / 4) * s
    return _join(_tangent_time(s, x0, us), us)


def _dist_s(s, t, c):
    """d(x, y) from the (capped) spatial parts, ``(..., 1)``."""
    return _dist_q(_chord(s, _sq(s), t, _sq(t), c), c)


@jax.custom_jvp
def _dist_spatial(s, t, c):
    """``_dist_s`` with its gradient in the points written in closed form (below)."""
    return _dist_s(s, t, c)


def _dist_spatial_jvp(primals, tangents):
    """Closed-form tangent of the distance in the spatial parts, from the chord's two terms
    q = R² + ‖x_s‖‖y_s‖‖x̂_s − ŷ_s‖² (module docstring), R = (2/√c) sinh(√c (A − B)/2):

        ∂d/∂x_s = (R C/X · x̂_s + ‖y_s‖ (x̂_s − ŷ_s)) / (√q √(1 + cq/4)),
        ∂d/∂y_s = (−R C/Y · ŷ_s + ‖x_s‖ (ŷ_s − x̂_s)) / (√q √(1 + cq/4)),

    C = cosh(√c (A − B)/2) (so R C = sinh(√c (A − B))/√c), X = √(1 + c‖x_s‖²), Y likewise,
    and x̂_s − ŷ_s from the differences of the inputs as in ``_angular``. The radial part
    (along x̂_s, the direction stretched by X far out, where the Riemannian gradient
    multiplies it by X) comes from the radial gap alone: no cancellation, unlike the
    equivalent ambient form √c (y₀/x₀ · x_s − y_s)/√(α² − 1), whose radial component
    cancels to 1/X² of its terms far out (garbage in float32 at distance 10). 0 at q = 0
    (coincident points), as the autodiff of the chord.

    Autodiff through the chord's guarded series (sinh / arsinh ratios, the angular swap)
    cost 7–10 times the forward pass on CPU, and was most of the training step of a Lorentz
    embedding (the mammals' loss gradient: 1.0 ms per batch against 0.08 ms on the ball).
    A curvature tangent (K differentiated) takes the autodiff of ``_dist_s`` instead.
    """
    s, t, c = primals
    ds, dt, dc = tangents
    if not isinstance(dc, SymbolicZero):
        dense = tuple(
            jnp.zeros_like(p) if isinstance(v, SymbolicZero) else v
            for p, v in zip(primals, tangents, strict=True)
        )
        return jax.jvp(_dist_s, primals, dense)
    s2, t2 = _sq(s), _sq(t)
    gap, radial = _radial_term(s, s2, t, t2, c)
    e, an, bn, swap = _unit_gap(s, s2, t, t2)
    floor = _floor(s.dtype)
    q = radial * radial + an / clamp_min(bn, floor) * _sq(e)  # _chord, term by term
    d = _dist_q(q, c)
    rc = gap * sinh_ratio(c * gap * gap, max_root=_max_angle(s.dtype))  # R·C
    sh, sn = _unit(s, s2)
    th, tn = _unit(t, t2)
    u = e / clamp_min(bn, floor)  # sign · (x̂_s − ŷ_s)
    sign = jnp.where(swap, -1, 1).astype(u.dtype)  # + where x_s is the longer
    half = _sq(u) / 2  # 1 − cos φ

    def unit_gap(h, sign):
        # h − (the other unit vector), h = x̂_s or ŷ_s, = sign · u: its component along h
        # is 1 − cos φ, and only the rest is taken from u. The rounding of e along â
        # (ε·|‖b‖ − ‖a‖|, far larger than 1 − cos φ far out) so stays out of the radial
        # direction, which the Riemannian gradient multiplies by X.
        return half * h + sign * (u - _dot(u, h) * h)

    pos = q > 0
    inv = jnp.where(pos, 1 / jnp.where(pos, jnp.sqrt(q) * jnp.sqrt(1 + c * q / 4), 1), 0)
    dd = jnp.zeros_like(d)
    if not isinstance(ds, SymbolicZero):
        grad_s = (rc / jnp.sqrt(1 + c * s2)) * sh + tn * unit_gap(sh, sign)
        dd = dd + _dot(grad_s, ds) * inv
    if not isinstance(dt, SymbolicZero):
        grad_t = (-rc / jnp.sqrt(1 + c * t2)) * th + sn * unit_gap(th, -sign)
        dd = dd + _dot(grad_t, dt) * inv
    return d, dd


_dist_spatial.defjvp(_dist_spatial_jvp, symbolic_zeros=True)


def _dist(x, y, c, keepdims):
    r = _dist_spatial(_cap(x[..., 1:], c), _cap(y[..., 1:], c), c)
    return r if keepdims else r[..., 0]


def _dist0(x, c, keepdims):
    _s, s2, _ = _point(x, c)
    r = _dist0_s(s2, c)
    return r if keepdims else r[..., 0]


def _pairwise_dist(x, y, c):
    s, s2, _ = _point(x, c)  # (..., n, d), (..., n, 1)
    t, t2, _ = _point(y, c)  # (..., m, d)
    a = _dist0_s(s2, c)  # (..., n, 1)
    b = jnp.swapaxes(_dist0_s(t2, c), -1, -2)  # (..., 1, m)
    gap = a - b
    radial = gap * sinh_ratio(c * gap * gap / 4, max_root=_max_angle(s.dtype))
    sh, sn = _unit(s, s2)
    th, tn = _unit(t, t2)
    # HIGHEST: TF32/bf16-pass matmuls would wreck 1 − cos θ.
    cos = jnp.matmul(sh, jnp.swapaxes(th, -1, -2), precision=lax.Precision.HIGHEST)
    q = radial * radial + sn * jnp.swapaxes(tn, -1, -2) * jnp.maximum(2 - 2 * cos, 0)
    return _dist_q(q, c)


# Origin frame. A tangent vector at a far point is badly conditioned in ambient coordinates:
# its radial part has spatial size √c·x₀ times its norm, so rounding that part (relative ε)
# adds a spurious orthogonal part ε√c·x₀ times the norm — more than the vector itself
# beyond x₀ ≈ 1/ε (distance 17 in float32). The optimisers therefore keep tangent vectors
# transported to the origin o along the radial geodesic, where ⟨·,·⟩_L is Euclidean, and
# move them between points by the holonomy, an exact rotation of T_o.


def _frame(s, s2, c):
    """(ŝ, √c‖x_s‖, X − 1) with X = √c x₀ = √(1 + c‖x_s‖²), X − 1 without cancellation."""
    sh, _ = _unit(s, s2)
    cs2 = c * s2
    return sh, safe_sqrt(cs2), cs2 / (1 + jnp.sqrt(1 + cs2))


def _to_origin_s(s, s2, vs, c):
    """Spatial part of P_{x→o} v: v_s − ⟨ŝ, v_s⟩ (X − 1)/X · ŝ (the time part is 0).

    The radial unit tangent at x, (√c‖x_s‖, X ŝ), goes to (0, ŝ); directions orthogonal
    to ŝ are unchanged."""
    sh, _, xm1 = _frame(s, s2, c)
    return vs - _dot(sh, vs) * (xm1 / (1 + xm1)) * sh


def _from_origin(s, s2, w, c):
    """P_{o→x} w for w ∈ T_o given by its spatial part: (√c‖x_s‖ ω, w + ω (X − 1) ŝ), ω = ⟨ŝ, w⟩."""
    sh, a, xm1 = _frame(s, s2, c)
    om = _dot(sh, w)
    return _join(a * om, w + (om * xm1) * sh)


def _holonomy(s, s2, t, t2, w, c):
    """H w = P_{y→o} P_{x→y} P_{o→x} w for w ∈ T_o (spatial parts).

    H rotates the plane of ŝ, t̂ by the defect δ of the triangle (o, x, y) and fixes its
    orthogonal complement. With ρ = √c‖x_s‖/(1 + X), σ = √c‖y_s‖/(1 + Y) (the points' radii
    in the unit Poincaré ball) and φ the angle between ŝ and t̂,
    tan(δ/2) = ρσ sin φ/(1 − ρσ cos φ) = k sin φ. Written with q = k(t̂ − ⟨t̂, ŝ⟩ŝ)
    (‖q‖ = tan(δ/2)) and Q = ‖q‖², the rotation is

        H w = w − 2/(1 + Q) · (Q⟨ŝ, w⟩ŝ + ⟨q, w⟩q + ⟨ŝ, w⟩q − ⟨q, w⟩ŝ),

    polynomial in q (no division by sin φ; no factor k² whose cotangent overflows at
    coincident far points) and norm-preserving up to rounding.
    1 − ρσ cos φ = (1 − ρ) + ρ(1 − σ) + ρσ‖ŝ − t̂‖²/2 has no cancellation."""
    sh, a, xm1 = _frame(s, s2, c)
    th, b, ym1 = _frame(t, t2, c)
    rho, sig = a / (2 + xm1), b / (2 + ym1)
    # 1 − ρ = (1 + 1/(X + a))/(1 + X)
    one_m_rho = (1 + 1 / (1 + xm1 + a)) / (2 + xm1)
    one_m_sig = (1 + 1 / (1 + ym1 + b)) / (2 + ym1)
    d = sh - th
    rs = rho * sig
    k = rs / (one_m_rho + rho * one_m_sig + rs * (_sq(d) / 2))
    q = k * (_dot(d, sh) * sh - d)
    big_q = _sq(q)
    w1, wq = _dot(sh, w), _dot(q, w)
    return w - (2 / (1 + big_q)) * ((big_q * w1 - wq) * sh + (wq + w1) * q)


def _transp(x, y, v, c):
    # P_{x→y} = P_{o→y} H P_{x→o} (origin frame above); v read by its spatial part.
    s, s2, _ = _point(x, c)
    t, t2, _ = _point(y, c)
    w = _holonomy(s, s2, t, t2, _to_origin_s(s, s2, v[..., 1:], c), c)
    return _from_origin(t, t2, w, c)


def _origin_vector(ws):
    return _join(jnp.zeros_like(ws[..., :1]), ws)


def _rgrad_origin(x, g, c):
    # P_{x→o} egrad2rgrad(x, g) = g_s + (γ(X − 1) + √c‖x_s‖ g₀) ŝ, γ = ⟨ŝ, g_s⟩: never the
    # ambient rgrad, whose radial part is X times larger.
    s, s2, _ = _point(x, c)
    sh, a, xm1 = _frame(s, s2, c)
    gs = g[..., 1:]
    return _origin_vector(gs + (_dot(sh, gs) * xm1 + a * g[..., :1]) * sh)


def _expmap_origin(x, w, c):
    # exp_x(P_{o→x} w): ‖P_{o→x} w‖_L = ‖w‖ exactly (the angle clamped along w as in expmap).
    s, s2, _ = _point(x, c)
    ws = w[..., 1:]
    scale, theta2 = _angle_clamp(_robust_norm(ws), c)
    us = _from_origin(s, s2, scale * ws, c)[..., 1:]
    return _project_s(_cosh_root(theta2) * s + sinh_ratio(theta2) * us, c)


def _retract_origin(x, w, c):
    # first-order retraction project(x + P_{o→x} w)
    s, s2, _ = _point(x, c)
    return _project_s(s + _from_origin(s, s2, w[..., 1:], c)[..., 1:], c)


def _transp_origin(x, y, w, c):
    s, s2, _ = _point(x, c)
    t, t2, _ = _point(y, c)
    return _origin_vector(_holonomy(s, s2, t, t2, w[..., 1:], c))


def _origin_op(core, curvature, names, *arrays):
    """Validate, cast and run one of the origin-frame cores (the optimisers' entry points)."""
    pairs = tuple(zip(names, arrays, strict=True))
    arrs, c, out, _ = _prep(curvature, points=pairs)
    return _fused(core, out, (), *arrs, c)


def _frame_rgrad(x, g, *, curvature=-1.0):
    """P_{x→o} egrad2rgrad(x, g): the Riemannian gradient in the origin frame."""
    return _origin_op(_rgrad_origin, curvature, ("x", "g"), x, g)


def _frame_expmap(x, w, *, curvature=-1.0):
    """exp_x(P_{o→x} w) for w in the origin frame (angle clamped along w)."""
    return _origin_op(_expmap_origin, curvature, ("x", "w"), x, w)


def _frame_retract(x, w, *, curvature=-1.0):
    """project(x + P_{o→x} w), the first-order retraction from the origin frame."""
    return _origin_op(_retract_origin, curvature, ("x", "w"), x, w)


def _frame_transp(x, y, w, *, curvature=-1.0):
    """P_{y→o} P_{x→y} P_{o→x} w: transport x → y seen in the origin frame (a rotation)."""
    return _origin_op(_transp_origin, curvature, ("x", "y", "w"), x, y, w)


def _geodesic(tt, x, y, c):
    u = _logmap(x, y, c)
    return _expmap(x, tt * u, c)


def _to_poincare(x, c, eps):
    # p = x_s/(1 + √c x₀) = x_s/(1 + √(1 + c‖x_s‖²)), clipped into the ball's margin.
    s, s2, _ = _point(x, c)
    p = s / (1 + jnp.sqrt(1 + c * s2))
    return poincare._project(p, c, eps)


def _from_poincare(p, c):
    # x_s = 2p/(1 − c‖p‖²) (x₀ recomputed).
    return _project_s(2 * p / clamp_min(1 - c * _sq(p)), c)


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------


def project(x: ArrayLike, *, curvature: ArrayLike = -1.0) -> jax.Array:
    """Put points on the hyperboloid: x₀ ← √(1/c + ‖x_s‖²), spatial part kept (capped).

    Args:
      x: ``(..., d+1)`` (x₀ is ignored).
      curvature: K < 0.

    Returns:
      Points ``(..., d+1)`` with ⟨x, x⟩_L = −1/c, x₀ > 0; the dtype of ``x``.
    """
    (x,), c, out, _ = _prep(curvature, points=(("x", x),))
    return _fused(_project, out, (), x, c)


def inner(
    x: ArrayLike,
    u: ArrayLike,
    v: ArrayLike | None = None,
    *,
    curvature: ArrayLike = -1.0,
    keepdims: bool = False,
) -> jax.Array:
    """Minkowski inner product ⟨u, v⟩_L = −u₀v₀ + Σᵢ uᵢvᵢ (the metric of every T_x).

    ``x`` only fixes the shape convention (the metric does not depend on the point); ``v``
    defaults to ``u``. Shape ``broadcast(x, u, v).shape[:-1]``.
    """
    if v is None:
        v = u
    (x, u, v), _, out, _ = _prep(curvature, points=(("x", x), ("u", u), ("v", v)))
    u, v = jnp.broadcast_arrays(u, v)
    r = _fused(_inner, out, (("keepdims", keepdims),), u, v)
    return jnp.broadcast_to(r, jnp.broadcast_shapes(r.shape, _keep_shape(x.shape, keepdims)))


def _keep_shape(shape, keepdims):
    return (*shape[:-1], 1) if keepdims else shape[:-1]


def norm(
    x: ArrayLike, u: ArrayLike, *, curvature: ArrayLike = -1.0, keepdims: bool = False
) -> jax.Array:
    """‖u‖_L = √max(⟨u, u⟩_L, 0) (0 with gradient 0 at u = 0). Shape ``(...)``."""
    (x, u), _, out, _ = _prep(curvature, points=(("x", x), ("u", u)))
    r = _fused(_norm, out, (("keepdims", keepdims),), u)
    return jnp.broadcast_to(r, jnp.broadcast_shapes(r.shape, _keep_shape(x.shape, keepdims)))


def proju(x: ArrayLike, u: ArrayLike, *, curvature: ArrayLike = -1.0) -> jax.Array:
    """Orthogonal (Minkowski) projection onto T_x: u + c⟨x, u⟩_L · x. Shape ``(..., d+1)``."""
    (x, u), c, out, _ = _prep(curvature, points=(("x", x), ("u", u)))
    return _fused(_proju, out, (), x, u, c)


def egrad2rgrad(x: ArrayLike, g: ArrayLike, *, curvature: ArrayLike = -1.0) -> jax.Array:
    """Riemannian gradient from a Euclidean one: proju(x, G g), G = diag(−1, 1, …, 1).

    Any smooth extension of the loss off the hyperboloid gives the same result (extensions
    differ by a multiple of the normal G x, which proju removes).
    """
    (x, g), c, out, _ = _prep(curvature, points=(("x", x), ("g", g)))
    return _fused(_egrad2rgrad, out, (), x, g, c)


def expmap(x: ArrayLike, u: ArrayLike, *, curvature: ArrayLike = -1.0) -> jax.Array:
    """exp_x(u) = cosh(√c‖u‖_L) x + sinh(√c‖u‖_L)/(√c‖u‖_L) · u, projected.

    ``u`` is a tangent vector at x, read by its spatial part (module docstring); any size
    (the angle √c‖u‖_L is capped where the result would leave the spatial-norm cap).
    """
    (x, u), c, out, _ = _prep(curvature, points=(("x", x), ("u", u)))
    return _fused(_expmap, out, (), x, u, c)


def logmap(x: ArrayLike, y: ArrayLike, *, curvature: ArrayLike = -1.0) -> jax.Array:
    """log_x(y) = d(x, y) · (y − αx)/‖y − αx‖_L, α = −c⟨x, y⟩_L; inverse of ``expmap``.

    ‖log_x(y)‖_L = d(x, y); 0 at y = x (gradient finite). Tangent vectors ``(..., d+1)``.
    """
    (x, y), c, out, _ = _prep(curvature, points=(("x", x), ("y", y)))
    return _fused(_logmap, out, (), x, y, c)


def expmap0(u: ArrayLike, *, curvature: ArrayLike = -1.0) -> jax.Array:
    """exp_o(u) at the origin o = (1/√c, 0, …, 0): spatial part sinh(√c‖u_s‖)/√c · û_s.

    u₀ is ignored (tangent vectors at o have u₀ = 0).
    """
    (u,), c, out, _ = _prep(curvature, points=(("u", u),))
    return _fused(_expmap0, out, (), u, c)


def logmap0(y: ArrayLike, *, curvature: ArrayLike = -1.0) -> jax.Array:
    """log_o(y) = (0, arsinh(√c‖y_s‖)/√c · ŷ_s). Shape of ``y``."""
    (y,), c, out, _ = _prep(curvature, points=(("y", y),))
    return _fused(_logmap0, out, (), y, c)


def dist(
    x: ArrayLike, y: ArrayLike, *, curvature: ArrayLike = -1.0, keepdims: bool = False
) -> jax.Array:
    """Geodesic distance d(x, y) = arcosh(−c⟨x, y⟩_L)/√c, computed without cancellation.

    d = (2/√c) arsinh(√(c q)/2) with q the Minkowski chord of the module docstring;
    accurate for near and for far points, gradient 0 at x = y.

    Returns:
      Shape ``broadcast(x, y).shape[:-1]`` (``keepdims`` keeps a trailing 1).
    """
    (x, y), c, out, _ = _prep(curvature, points=(("x", x), ("y", y)))
    return _fused(_dist, out, (("keepdims", keepdims),), x, y, c)


def dist0(x: ArrayLike, *, curvature: ArrayLike = -1.0, keepdims: bool = False) -> jax.Array:
    """Distance to the origin d(o, x) = arcosh(√c x₀)/√c = arsinh(√c‖x_s‖)/√c. Shape ``(...)``."""
    (x,), c, out, _ = _prep(curvature, points=(("x", x),))
    return _fused(_dist0, out, (("keepdims", keepdims),), x, c)


def pairwise_dist(x: ArrayLike, y: ArrayLike, *, curvature: ArrayLike = -1.0) -> jax.Array:
    """All distances between two point sets, (n, d+1), (m, d+1) → (n, m); leading axes batch.

    The chord q of ``dist`` with ‖x̂ − ŷ‖² = 2 − 2⟨x̂, ŷ⟩ from one matrix product of the unit
    spatial directions, so memory is O(n·m) — no (n, m, d) intermediate. 1 − cos θ cancels
    for near directions: the absolute error of q is about ε_mach·‖x_s‖‖y_s‖; use ``dist``
    when near-point accuracy matters.
    """
    (x, y), c, out, _ = _prep(curvature, points=(("x", x), ("y", y)))
    if x.ndim < 2 or y.ndim < 2:
        raise ValueError(
            f"pairwise_dist expects point sets (..., n, d+1) and (..., m, d+1), "
            f"got shapes {x.shape} and {y.shape}"
        )
    return _fused(_pairwise_dist, out, (), x, y, c)


def transp(x: ArrayLike, y: ArrayLike, v: ArrayLike, *, curvature: ArrayLike = -1.0) -> jax.Array:
    """Parallel transport of v ∈ T_x along the geodesic to y:

    P v = v + c⟨y, v⟩_L / (1 − c⟨x, y⟩_L) · (x + y),

    computed as P_{o→y} H P_{x→o} v through the origin o (module docstring), so that far
    points do not amplify the rounding of v (⟨y, v⟩_L above cancels there). ``v`` is read by
    its spatial part. Preserves the metric: ⟨P u, P v⟩_L = ⟨u, v⟩_L, and P v ∈ T_y.
    Shape ``broadcast(x, y, v).shape``.
    """
    (x, y, v), c, out, _ = _prep(curvature, points=(("x", x), ("y", y), ("v", v)))
    return _fused(_transp, out, (), x, y, v, c)


def geodesic(t: ArrayLike, x: ArrayLike, y: ArrayLike, *, curvature: ArrayLike = -1.0) -> jax.Array:
    """Point at fraction t of the geodesic from x to y: γ(t) = exp_x(t · log_x(y)).

    γ(0) = x, γ(1) = y, d(x, γ(t)) = |t| d(x, y). ``t`` is a scalar or broadcasts against
    ``x[..., :1]``.
    """
    (x, y, t), c, out, _ = _prep(curvature, points=(("x", x), ("y", y)), others=(("t", t),))
    return _fused(_geodesic, out, (), t, x, y, c)


def origin(
    dim: int, *, curvature: ArrayLike = -1.0, batch_shape: tuple[int, ...] = (), dtype: Any = None
) -> jax.Array:
    """The origin o = (1/√c, 0, …, 0) of the d-dimensional hyperboloid.

    Args:
      dim: the manifold dimension d ≥ 1 (points have d + 1 coordinates).
      batch_shape: leading shape of the result.
      dtype: a floating dtype (default: JAX's default float).

    Returns:
      Array ``(*batch_shape, dim + 1)``.
    """
    if isinstance(dim, bool) or not isinstance(dim, int | np.integer) or dim < 1:
        raise ValueError(f"dim={dim!r} must be an integer ≥ 1 (the manifold dimension d)")
    dtype = jnp.dtype(float if dtype is None else dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(f"dtype={dtype} is not a floating dtype")
    (z,), c, out, _ = _prep(curvature, others=(("dtype", jnp.zeros((), dtype)),))
    x = jnp.zeros((*batch_shape, int(dim) + 1), z.dtype)
    return _fused(_project, out, (), x, c)


def to_poincare(x: ArrayLike, *, curvature: ArrayLike = -1.0) -> jax.Array:
    """Isometry onto the Poincaré ball of the same curvature: p = x_s/(1 + √c x₀).

    (..., d+1) → (..., d). The result is clipped to the ball's margin (norm ≤ (1 − ε)/√c),
    so distances are preserved only for points the ball can represent in the dtype (to
    about 6.2/√c from the origin in float32, 12.2/√c in float64).
    """
    (x,), c, out, _ = _prep(curvature, points=(("x", x),))
    return _fused(_to_poincare, out, (("eps", ball_eps(out)),), x, c)


def from_poincare(p: ArrayLike, *, curvature: ArrayLike = -1.0) -> jax.Array:
    """Inverse of ``to_poincare``: x_s = 2p/(1 − c‖p‖²), x₀ = (1 + c‖p‖²)/(√c(1 − c‖p‖²)).

    (..., d) → (..., d+1).
    """
    _check_coordinate_axis("p", p, minimum=1)
    (p,), c, out, _ = _prep(curvature, others=(("p", p),))
    return _fused(_from_poincare, out, (), p, c)


def _wrapped_normal_log_prob(z, mean, scale, c):
    d = z.shape[-1] - 1
    m, m2, _ = _point(mean, c)
    us = _logmap(mean, z, c)[..., 1:]
    # P_{μ→o} u = u + c⟨o, u⟩_L/(1 − c⟨μ, o⟩_L)·(μ + o), spatial part with u₀ = ⟨μ_s, u_s⟩/μ₀
    # and a = √c μ₀ = √(1 + c‖μ_s‖²): v_s = u_s − c⟨μ_s, u_s⟩ μ_s / (a(1 + a)).
    a = jnp.sqrt(1 + c * m2)
    v = us - c * _dot(m, us) * m / (a * (1 + a))
    r2 = jnp.sum(v * v, axis=-1)  # r = d(μ, z) = ‖v‖: transport is an isometry, metric I at o
    return poincare._diag_normal_log_prob(v, scale) - (d - 1) * poincare._log_sinh_ratio(c * r2)


def wrapped_normal_log_prob(
    z: ArrayLike, mean: ArrayLike, scale: ArrayLike, *, curvature: ArrayLike = -1.0
) -> jax.Array:
    r"""Log density of the wrapped normal on the hyperboloid (Nagano et al. 2019),
    with respect to its Riemannian volume.

    The distribution: v ~ N(0, diag(scale²)) on the spatial coordinates of T_o at the origin
    o, z = exp_μ(P_{o→μ} v). With v = P_{μ→o}(log_μ z) and r = d(μ, z) = ‖v‖:

    log p(z) = log N(v_s; 0, diag(scale²)) − (d − 1) log( sinh(√c r) / (√c r) ).

    The isometry ``to_poincare`` carries it to the ball's ``wrapped_normal`` with half the
    scale (the ball's metric at 0 is 4·I): ``wrapped_normal_log_prob(from_poincare(z_b), …,
    2σ)`` equals the ball's log density at z_b with σ.

    Args:
      z: points ``(..., d+1)``.
      mean: points ``(..., d+1)`` (broadcast against ``z``).
      scale: standard deviations > 0, a scalar or broadcasting against the d spatial
        coordinates ``(..., d)`` (not d + 1: v₀ = 0 at the origin).

    Returns:
      Log densities ``broadcast(z, mean).shape[:-1]``.

    Reference: Y. Nagano, S. Yamaguchi, Y. Fujita, M. Koyama, *A Wrapped Normal Distribution
    on Hyperbolic Space for Gradient-Based Learning*, ICML 2019.
    """
    (z, mean), c, out, _ = _prep(curvature, points=(("z", z), ("mean", mean)))
    d = z.shape[-1] - 1
    shape = np.shape(scale)
    if shape and shape[-1] not in (1, d):
        raise ValueError(
            f"scale of shape {shape} must be a scalar or broadcast against the d = {d} spatial "
            f"coordinates of T_o (not the d+1 = {d + 1} ambient ones)"
        )
    if is_concrete(scale) and np.any(np.asarray(scale, dtype=np.float64) <= 0):
        raise ValueError(f"scale={np.asarray(scale)} must be > 0")
    (scale,), _, _ = as_float(("scale", scale))
    return _fused(_wrapped_normal_log_prob, out, (), z, mean, scale.astype(z.dtype), c)


# Appended with the function above (the list at the top belongs to the original module).
__all__ += ["wrapped_normal_log_prob"]
