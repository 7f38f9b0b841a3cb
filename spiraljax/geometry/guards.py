"""Named numerical guards shared by the Poincaré-ball code (and reusable elsewhere).

Every clamp, epsilon and input check of the geometry lives here, so the math in
``poincare.py`` reads as formulas. Other areas (optimizers, Z-space, kernels) should reuse
these helpers rather than re-implementing them:

* ``check_curvature`` / ``curvature_to_c`` — validate K ≤ 0 (Python-level check on
  concrete values) and turn it into c = −K ≥ 0 of a given dtype (traced K allowed).
* ``as_float`` / ``compute_dtype`` / ``ball_eps`` — dtype policy: float32 and
  float64 computed as is, bfloat16/float16 computed in float32 and cast back, non-floating
  dtypes rejected; boundary ε = 1e-5 for float32 and float64, 4e-3 for 16-bit outputs.
* `min_denom` / `boundary_floor` — dtype-aware floors for denominators and for
  1 − c‖x‖², chosen so that gradients (powers of their inverses) stay finite in the dtype.
* `check_same_dim` / `check_shapes` — coordinate axes must agree and leading axes
  broadcast; one check, used by every geometry function, errors naming the arguments.
* ``safe_sqrt``, ``tanh_ratio``, ``artanh_ratio``, ``arsinh_ratio`` — NaN-free
  building blocks whose values *and* gradients are finite everywhere, with series
  expansions near 0 so that every formula is exactly Euclidean at c = 0 and differentiable
  in c.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "MIN_DENOM",
    "SERIES_THRESHOLD",
    "arsinh_ratio",
    "artanh_ratio",
    "as_float",
    "ball_eps",
    "boundary_floor",
    "check_curvature",
    "check_same_dim",
    "check_shapes",
    "clamp_boundary",
    "clamp_min",
    "compute_dtype",
    "curvature_to_c",
    "is_concrete",
    "min_denom",
    "safe_sqrt",
    "sinh_ratio",
    "tanh_ratio",
]

#: Smallest denominator allowed in float64 divisions (the 1e-15 clamp of geoopt / HNN);
#: other dtypes use `min_denom(dtype)`.
MIN_DENOM = 1e-15
#: Below this value of w = c·‖v‖² the ratio functions use their Taylor series
#: (4 terms: truncation error < 3e-18 relative, i.e. exact in float64).
SERIES_THRESHOLD = 1e-4

_LOW_PRECISION = (jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16))


def is_concrete(value: Any) -> bool:
    """True when ``value`` can be read at trace time (not a jax tracer)."""
    try:
        np.asarray(value)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return False
    return True


def check_curvature(curvature: Any, name: str = "curvature") -> Any:
    """Validate a Gaussian curvature K (Python-level, only when its value is concrete).

    Raises ``ValueError`` naming ``name`` and the value when K > 0, K is not finite, or K
    is not a scalar. Traced values pass through unchecked (use ``curvature_to_c``,
    which clamps c = max(−K, 0), to stay NaN-free under tracing). Returns ``curvature``.
    """
    shape = np.shape(curvature)
    if shape != ():
        raise ValueError(f"{name} must be a scalar, got shape {shape}")
    if not is_concrete(curvature):
        return curvature
    value = np.asarray(curvature)
    if value.dtype.kind not in "fiu" and value.dtype != np.dtype(jnp.bfloat16):
        raise ValueError(f"{name}={curvature!r} is not a real number")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name}={value} must be finite")
    if value > 0.0:
        raise ValueError(
            f"{name}={value} > 0: the Poincaré ball needs a curvature K <= 0 "
            "(K < 0 hyperbolic, K = 0 Euclidean)"
        )
    return curvature


def curvature_to_c(curvature: Any, dtype: Any, name: str = "curvature") -> jax.Array:
    """Return c = −K ≥ 0 as a scalar array of ``dtype`` after ``check_curvature``.

    Traced K > 0 cannot be rejected at trace time; c is then clamped to 0 (Euclidean).
    """
    check_curvature(curvature, name)
    k = jnp.asarray(curvature, dtype=dtype)
    # where, not maximum: the derivative dc/dK must be −1 at K = 0 (maximum would halve it).
    return jnp.where(k <= 0, -k, 0)


def compute_dtype(dtype: Any) -> jnp.dtype:
    """The dtype computations run in: bfloat16/float16 → float32, other floats unchanged."""
    dtype = jnp.dtype(dtype)
    return jnp.dtype(jnp.float32) if dtype in _LOW_PRECISION else dtype


def ball_eps(dtype: Any) -> float:
    """Boundary margin ε: points are kept at norm ≤ (1 − ε)/√c.

    1e-5 for float32 and float64; 4e-3 for bfloat16 / float16 outputs. float32 reaches the
    same distance from the origin as float64, 2·artanh(1 − 1e-5) ≈ 12.2: at that norm
    1 − c‖x‖² ≈ 2e-5 is still known to ~0.6 % from the rounded coordinates (float32 spacing
    6e-8 below 1), so λ_x and every formula built on it stay accurate, while the old 4e-3
    margin capped float32 distances at ≈ 6.2. 16-bit results are computed in float32 and
    cast back, and their spacing below 1 (2e-3 for bfloat16) needs the wider margin so that
    a cast point does not round onto the boundary.
    """
    return 4e-3 if jnp.dtype(dtype).itemsize <= 2 else 1e-5


def min_denom(dtype: Any) -> float:
    """Floor for denominators of ``dtype``: 1e-15 (float64) or ``tiny ** (1/4)`` (≈ 3e-10 in
    float32), so that the inverse and its first three derivatives (1/x⁴) do not overflow.
    A fixed 1e-15 floor overflows in float32 once squared in a gradient."""
    dtype = compute_dtype(dtype)
    return max(MIN_DENOM, float(jnp.finfo(dtype).tiny) ** 0.25)


def boundary_floor(dtype: Any) -> float:
    """Floor for 1 − c‖x‖² (= 2/λ_x): the machine epsilon of ``dtype``, and at least 1e-15.

    1 − c‖x‖² of a representable point strictly inside the ball is at least about one
    spacing of 1, so the floor changes nothing for such points; points exactly on (or over)
    the rounded boundary get the floor, and products of two or three such factors, and their
    gradients, stay finite (float32: (1.2e-7)⁻⁴ ≈ 5e27).
    """
    return max(MIN_DENOM, float(jnp.finfo(compute_dtype(dtype)).eps))


def as_float(*named: tuple[str, Any]) -> tuple[list[jax.Array], jnp.dtype, jnp.dtype]:
    """Convert ``(name, value)`` pairs to arrays of one floating dtype.

    Returns ``(arrays, out_dtype, work_dtype)``: the arrays cast to ``work_dtype`` (float32
    for bfloat16/float16 inputs), and the dtype results are cast back to. Python scalars do
    not decide the dtype (weak typing). Raises ``ValueError`` naming the argument for a
    non-floating dtype.
    """
    arrays = []
    for name, value in named:
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = float(value)  # Python scalars stay weakly typed and never set the dtype
        arr = jnp.asarray(value)
        if not jnp.issubdtype(arr.dtype, jnp.floating):
            raise ValueError(f"{name} has non-floating dtype {arr.dtype}; pass a float array")
        arrays.append(arr)
    out_dtype = jnp.result_type(*arrays)
    work = compute_dtype(out_dtype)
    return [a.astype(work) for a in arrays], out_dtype, work


def check_same_dim(*named: tuple[str, Any]) -> int:
    """Check that all ``(name, array)`` pairs share the size of the last (coordinate) axis."""
    dims = [(name, np.shape(a)[-1] if np.ndim(a) else None) for name, a in named]
    for name, d in dims:
        if d is None:
            raise ValueError(f"{name} must have a coordinate axis, got a scalar")
    first_name, first = dims[0]
    for name, d in dims[1:]:
        if d != first:
            raise ValueError(
                f"{name} has coordinate axis of size {d}, but {first_name} has size {first}"
            )
    return first


def check_shapes(points: Any = (), per_point: Any = (), *, core_axes: int = 1) -> tuple[int, ...]:
    """Check point-like ``(name, array)`` pairs and per-point factors; return the batch shape.

    ``points`` are arrays ``(..., d)``: their coordinate axes must agree and their leading
    axes broadcast (``core_axes=2`` for point sets ``(..., n, d)``, whose last two axes are
    not broadcast). ``per_point`` are factors such as r or t, scalars or arrays ``(..., 1)``
    broadcasting against the points' leading axes. Raises ``ValueError`` naming the
    arguments and shapes (a bare broadcasting ``TypeError`` from jnp names none).
    """
    check_same_dim(*points)
    shapes = [(name, tuple(np.shape(a))) for name, a in points]
    batch: tuple[int, ...] = ()
    seen: list[str] = []
    for name, shape in shapes:
        try:
            batch = np.broadcast_shapes(batch, shape[:-core_axes])
        except ValueError:
            others = ", ".join(f"{n} {dict(shapes)[n]}" for n in seen)
            raise ValueError(
                f"{name} of shape {shape} does not broadcast against {others} "
                "(leading axes must broadcast)"
            ) from None
        seen.append(name)
    for name, a in per_point:
        shape = tuple(np.shape(a))
        ok = len(shape) == 0 or shape[-1] == 1
        if ok:
            try:
                batch = np.broadcast_shapes(batch, shape[:-1])
            except ValueError:
                ok = False
        if not ok:
            against = ", ".join(f"{n} {s}" for n, s in shapes)
            raise ValueError(
                f"{name} of shape {shape} must be a scalar or (..., 1) broadcasting against "
                f"the points' leading axes ({against})"
            )
    return tuple(batch)


def clamp_min(x: jax.Array, minimum: float | None = None) -> jax.Array:
    """``max(x, minimum)`` — keeps denominators away from 0 (default `min_denom` of x)."""
    if minimum is None:
        minimum = min_denom(x.dtype)
    return jnp.maximum(x, jnp.asarray(minimum, dtype=x.dtype))


def clamp_boundary(one_minus_cx2: jax.Array) -> jax.Array:
    """1 − c‖x‖² kept ≥ `boundary_floor` (points on or over the boundary stay finite)."""
    return clamp_min(one_minus_cx2, boundary_floor(one_minus_cx2.dtype))


def safe_sqrt(s: jax.Array) -> jax.Array:
    """√s for s ≥ 0 with value 0 and gradient 0 at s ≤ 0 (never inf·0 = NaN)."""
    positive = s > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, s, 1)), 0)


def _series_split(w: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    # Double-where: both branches only ever see inputs on which they are finite, so the
    # unselected branch cannot inject NaN into the gradient.
    small = w < SERIES_THRESHOLD
    return small, jnp.where(small, w, 0), jnp.where(small, SERIES_THRESHOLD, w)


def tanh_ratio(w: jax.Array) -> jax.Array:
    """tanh(√w)/√w for w ≥ 0 (1 at w = 0); series 1 − w/3 + 2w²/15 − 17w³/315 near 0.

    ``tanh_c(v) = tanh(√c v)/√c = v · tanh_ratio(c v²)`` — exact at c = 0, smooth in c.
    """
    small, ws, wd = _series_split(w)
    series = 1 + ws * (-1 / 3 + ws * (2 / 15 + ws * (-17 / 315)))
    root = jnp.sqrt(wd)
    return jnp.where(small, series, jnp.tanh(root) / root)


def artanh_ratio(w: jax.Array, one_minus_w: jax.Array | None = None) -> jax.Array:
    """artanh(√w)/√w for 0 ≤ w < 1 (1 at w = 0); series 1 + w/3 + w²/5 + w³/7 near 0.

    artanh(√w) = log1p(√w) − ½·log(1 − w); pass ``one_minus_w`` when it is known more
    accurately than ``1 - w`` (points near the boundary). 1 − w is clamped at the smallest
    positive normal number, so values stay finite for w ≥ 1 (points outside the ball).
    """
    small, ws, wd = _series_split(w)
    series = 1 + ws * (1 / 3 + ws * (1 / 5 + ws * (1 / 7)))
    if one_minus_w is None:
        # log1p(−w) is accurate for small w; w is capped below 1 for points outside the ball.
        log_om = jnp.log1p(-jnp.minimum(wd, 1 - float(jnp.finfo(w.dtype).epsneg)))
    else:
        om = jnp.where(small, 1, one_minus_w)
        log_om = jnp.log(clamp_min(om, float(jnp.finfo(w.dtype).tiny)))
    root = jnp.sqrt(wd)
    direct = (jnp.log1p(root) - 0.5 * log_om) / root
    return jnp.where(small, series, direct)


def arsinh_ratio(w: jax.Array) -> jax.Array:
    """arsinh(√w)/√w for w ≥ 0 (1 at w = 0); series 1 − w/6 + 3w²/40 − 5w³/112 near 0."""
    small, ws, wd = _series_split(w)
    series = 1 + ws * (-1 / 6 + ws * (3 / 40 + ws * (-5 / 112)))
    root = jnp.sqrt(wd)
    return jnp.where(small, series, jnp.arcsinh(root) / root)


def sinh_ratio(w: jax.Array, *, max_root: float | None = None) -> jax.Array:
    """sinh(√w)/√w for w ≥ 0 (1 at w = 0); series 1 + w/6 + w²/120 + w³/5040 near 0.

    ``sinh_c(v) = sinh(√c v)/√c = v · sinh_ratio(c v²)`` — exact at c = 0, smooth in c.
    ``max_root`` caps √w (so that sinh cannot overflow); the ratio is then that of the cap.
    """
    small, ws, wd = _series_split(w)
    series = 1 + ws * (1 / 6 + ws * (1 / 120 + ws * (1 / 5040)))
    root = jnp.sqrt(wd)
    if max_root is not None:
        root = jnp.minimum(root, max_root)
    return jnp.where(small, series, jnp.sinh(root) / root)
