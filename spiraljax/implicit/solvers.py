"""Matrix-free linear solvers over pytrees: cg, normal_cg, gmres, bicgstab, neumann.

Every solver solves ``A x = b`` where ``A`` is a linear operator given either as a callable
``matvec(x) -> A x`` acting on pytrees shaped like ``b`` (the matrix-free form; nothing ever
materialises ``A``) or as a square 2-D array (a convenience for small dense problems). Each
returns ``(x, info)`` with ``SolverInfo`` holding

* ``iterations`` — number of iterations performed (one operator application each; GMRES counts
  Arnoldi steps, BiCGSTAB counts full steps of two applications),
* ``residual`` — the **true** final residual ``‖b − A x‖₂`` recomputed from the returned ``x``
  (not the recursively updated estimate, which drifts in finite precision); for ``normal_cg`` it
  is the normal-equations residual ``‖Aᵀ(b − A x)‖₂``,
* ``converged`` — ``residual ≤ max(tol·‖b‖₂, atol)`` (``‖Aᵀb‖₂`` for ``normal_cg``).

A solve that stops at ``maxiter`` or breaks down therefore reports ``converged=False``.
Norms and inner products run over all leaves of the pytree (the Euclidean structure of the
flattened vector). All solvers are pure JAX (``lax.while_loop``) and compose with ``jit`` and
``vmap``; differentiating *through* them is possible but is not how hypergradients are formed
(see ``spiraljax.implicit.custom_root``, which uses them only as black-box linear solves).

``guard``: an optional callable ``x -> x`` applied to every iterate ``x_k`` (to the running term
and the partial sum of the Neumann series; to the iterate formed at the end of each restart
cycle of GMRES), e.g. ``spiraljax.topos.OpenCartesianTopos(...).saturate_tree`` to turn
NaN / Inf / oversized entries into finite ones (NaN → 0, |v| > S → ±S); ``rewrite_tree`` would
also project every leaf into the Poincaré ball, which only suits iterates that are points. Any
callable that maps a pytree to a pytree of the same structure works (solvers do not import the
topos module). Guarding changes the iterates, so the Krylov recurrences no longer hold exactly
once it rewrites something; the reported residual is still the true one.

References: Hestenes & Stiefel (1952) for CG; Saad & Schultz (1986) for GMRES; van der Vorst
(1992) for BiCGSTAB; Lorraine, Vicol & Duvenaud (AISTATS 2020) for Neumann-series inverse
Hessian-vector products.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.flatten_util import ravel_pytree

PyTree = Any
Operator = Callable[[PyTree], PyTree] | jax.Array | np.ndarray
Guard = Callable[[PyTree], PyTree] | None

__all__ = [
    "SOLVERS",
    "SolverInfo",
    "bicgstab",
    "cg",
    "check_solver_options",
    "get_solver",
    "gmres",
    "neumann",
    "normal_cg",
]


class SolverInfo(NamedTuple):
    """Diagnostics of a linear solve (a pytree; batches under ``vmap``).

    Attributes:
      iterations: int32 scalar, iterations performed.
      residual: true final residual norm (see the module docstring for which residual).
      converged: bool scalar, ``residual <= max(tol * ‖b‖, atol)``.
    """

    iterations: jax.Array
    residual: jax.Array
    converged: jax.Array


# ----------------------------------------------------------------------------- tree helpers


def _add(x, y):
    return jax.tree.map(jnp.add, x, y)


def _sub(x, y):
    return jax.tree.map(jnp.subtract, x, y)


def _axpy(a, x, y):
    """a·x + y with a scalar a cast to each leaf's dtype."""
    return jax.tree.map(lambda xi, yi: a.astype(xi.dtype) * xi + yi, x, y)


def _scale(a, x):
    return jax.tree.map(lambda xi: a.astype(xi.dtype) * xi, x)


def _vdot(x, y):
    leaves = [jnp.vdot(a, b) for a, b in zip(jax.tree.leaves(x), jax.tree.leaves(y), strict=True)]
    return sum(leaves[1:], leaves[0]).real


def _norm(x):
    return jnp.sqrt(_vdot(x, x))


def _zeros_like(x):
    return jax.tree.map(jnp.zeros_like, x)


def _safe_div(num, den):
    """num / den, and 0 where den == 0 (a breakdown is then caught by the residual check)."""
    ok = den != 0
    return jnp.where(ok, num / jnp.where(ok, den, 1), 0)


def _result_dtype(b):
    leaves = jax.tree.leaves(b)
    return jnp.result_type(*[jnp.asarray(leaf).dtype for leaf in leaves])


# ------------------------------------------------------------------------- argument checks


def _is_concrete(value) -> bool:
    return not isinstance(value, jax.core.Tracer)


def _check_real(name, value, *, positive=False):
    """A concrete real number, finite, ≥ 0 (> 0 when ``positive``); tracers pass unchecked."""
    if not _is_concrete(value):
        return
    arr = np.asarray(value) if not isinstance(value, str | bytes) else None
    if isinstance(value, bool) or arr is None or arr.shape != () or arr.dtype.kind not in "fiu":
        raise ValueError(f"{name}={value!r} must be a real number")
    v = float(arr)
    if not np.isfinite(v) or v < 0 or (positive and v == 0):
        raise ValueError(f"{name}={value!r} must be a finite number {'>' if positive else '>='} 0")


def _check_int(name, value, *, allow_none=False):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        none = " (or None)" if allow_none else ""
        raise ValueError(f"{name}={value!r} must be a Python int >= 1{none}")
    if value < 1:
        raise ValueError(f"{name}={value} must be >= 1")


def _guard_or_identity(guard):
    if guard is None:
        return _identity
    if not callable(guard):
        raise ValueError(f"guard={guard!r} must be a callable x -> x or None")
    return guard


def _check_tolerances(tol, atol, maxiter):
    _check_real("tol", tol)
    _check_real("atol", atol)
    _check_int("maxiter", maxiter, allow_none=True)


def check_solver_options(name: str, options: dict[str, Any]) -> None:
    """Validate keyword options of the solver ``name`` before any solve runs.

    Unknown option names and bad values (``tol``/``atol`` ≥ 0, ``maxiter``/``restart`` ints
    ≥ 1, ``alpha`` > 0, ``guard`` callable) raise ``ValueError`` naming the option — at
    decoration time in `custom_root`, not when the derivative is first taken.
    """
    fn = get_solver(name)
    allowed = [p for p in inspect.signature(fn).parameters if p not in ("A", "b")]
    for key in options:
        if key not in allowed:
            raise ValueError(
                f"solve_options has unknown option {key!r} for solve={name!r}; allowed: {allowed}"
            )
    for key in ("tol", "atol"):
        if key in options:
            _check_real(key, options[key])
    if "maxiter" in options:
        _check_int("maxiter", options["maxiter"], allow_none=name != "neumann")
    if "restart" in options:
        _check_int("restart", options["restart"])
    if "alpha" in options:
        _check_real("alpha", options["alpha"], positive=True)
    guard = options.get("guard")
    if guard is not None and not callable(guard):
        raise ValueError(f"guard={guard!r} must be a callable x -> x or None")


def _struct(tree):
    return jax.tree.map(lambda leaf: (tuple(np.shape(leaf)), jnp.result_type(leaf)), tree)


def _as_matvec(A: Operator, name: str = "A", square: bool = True) -> Callable[[PyTree], PyTree]:
    """Turn ``A`` (callable or 2-D array) into a matvec; arrays must be square if ``square``."""
    if callable(A):
        return A
    if isinstance(A, jax.Array | np.ndarray):
        if A.ndim != 2:
            raise ValueError(f"{name} has shape {A.shape}; a 2-D array or a callable is required")
        if square and A.shape[0] != A.shape[1]:
            raise ValueError(f"{name} has shape {A.shape}; a square matrix is required")
        return lambda x: jnp.dot(A, x, precision=lax.Precision.HIGHEST)
    raise ValueError(f"{name}={type(A).__name__} is neither a callable nor a 2-D array")


def _check_square(matvec, b, name: str = "A"):
    """The operator must map the space of ``b`` onto itself (same tree, shapes, dtypes)."""
    if not jax.tree.leaves(b):
        raise ValueError("b is an empty pytree; nothing to solve")
    try:
        out = jax.eval_shape(matvec, b)
    except (TypeError, ValueError) as err:
        msg = f"{name} cannot be applied to b with structure {_struct(b)}: {err}"
        raise ValueError(msg) from err
    in_struct, out_struct = jax.tree.structure(b), jax.tree.structure(out)
    in_shapes = [tuple(np.shape(leaf)) for leaf in jax.tree.leaves(b)]
    out_shapes = [tuple(leaf.shape) for leaf in jax.tree.leaves(out)]
    if in_struct != out_struct or in_shapes != out_shapes:
        raise ValueError(
            f"{name} is not square on b: it maps shapes {in_shapes} ({in_struct}) to "
            f"{out_shapes} ({out_struct}); the operator must map b's space onto itself"
        )


def _prepare(A, b, x0, tol, atol, maxiter, name="A"):
    _check_tolerances(tol, atol, maxiter)
    matvec = _as_matvec(A, name)
    b = jax.tree.map(jnp.asarray, b)
    _check_square(matvec, b, name)
    if x0 is None:
        x0 = _zeros_like(b)
    else:
        x0 = jax.tree.map(jnp.asarray, x0)
        if _struct(x0) != _struct(b):
            raise ValueError(f"x0 has structure {_struct(x0)} but b has {_struct(b)}")
    size = sum(int(np.size(leaf)) for leaf in jax.tree.leaves(b))
    return matvec, b, x0, size


def _threshold(bnorm, tol, atol):
    return jnp.maximum(jnp.asarray(tol, bnorm.dtype) * bnorm, jnp.asarray(atol, bnorm.dtype))


def _info(iterations, residual, threshold):
    return SolverInfo(
        iterations=jnp.asarray(iterations, jnp.int32),
        residual=residual,
        converged=residual <= threshold,
    )


def _identity(x):
    return x


# ------------------------------------------------------------------------------------ CG


def _cg_loop(matvec, b, x0, thr, maxiter, guard):
    r0 = _sub(b, matvec(x0))
    g0 = _vdot(r0, r0)

    def cond(state):
        k, _, _, _, g = state
        return (k < maxiter) & (g > thr * thr)

    def body(state):
        k, x, r, p, g = state
        ap = matvec(p)
        alpha = _safe_div(g, _vdot(p, ap))
        x = guard(_axpy(alpha, p, x))
        r = _axpy(-alpha, ap, r)
        g_new = _vdot(r, r)
        p = _axpy(_safe_div(g_new, g), p, r)
        # A zero step (breakdown: pᵀAp = 0 for a non-SPD A) cannot make progress; stop.
        g_new = jnp.where(alpha == 0, 0.0, g_new).astype(g.dtype)
        return k + 1, x, r, p, g_new

    k, x, *_ = lax.while_loop(cond, body, (jnp.asarray(0, jnp.int32), x0, r0, r0, g0))
    return x, k


def cg(
    A: Operator,
    b: PyTree,
    *,
    x0: PyTree | None = None,
    tol: float = 1e-5,
    atol: float = 0.0,
    maxiter: int | None = None,
    guard: Guard = None,
) -> tuple[PyTree, SolverInfo]:
    """Conjugate gradients for symmetric positive-definite ``A``.

    Iterates ``α = rᵀr / pᵀAp, x += αp, r −= αAp, p = r + (r'ᵀr'/rᵀr) p`` until
    ``‖r‖ ≤ max(tol·‖b‖, atol)`` or ``maxiter`` iterations (default ``10·n``, n = total size
    of ``b``). ``A`` must be SPD for the method to be valid; on other operators it may
    stagnate, which ``info.converged`` reports.

    Args:
      A: callable ``x -> A x`` on pytrees shaped like ``b``, or a square (n, n) array.
      b: right-hand side pytree.
      x0: initial guess (default zeros).
      tol, atol: relative and absolute residual tolerances.
      maxiter: maximum number of iterations (operator applications), ≥ 1.
      guard: optional ``x -> x`` applied to every iterate (see module docstring).

    Returns:
      ``(x, SolverInfo)``; ``x`` has the structure of ``b``.

    Reference: Hestenes & Stiefel, "Methods of conjugate gradients for solving linear
    systems", J. Res. NBS 49 (1952).
    """
    matvec, b, x0, size = _prepare(A, b, x0, tol, atol, maxiter)
    maxiter = 10 * size if maxiter is None else maxiter
    guard = _guard_or_identity(guard)
    thr = _threshold(_norm(b), tol, atol)
    x, k = _cg_loop(matvec, b, x0, thr, maxiter, guard)
    return x, _info(k, _norm(_sub(b, matvec(x))), thr)


def normal_cg(
    A: Operator,
    b: PyTree,
    *,
    x0: PyTree | None = None,
    tol: float = 1e-5,
    atol: float = 0.0,
    maxiter: int | None = None,
    guard: Guard = None,
) -> tuple[PyTree, SolverInfo]:
    """CG on the normal equations ``AᵀA x = Aᵀb`` (any ``A``, also non-square).

    ``Aᵀ`` is obtained matrix-free with ``jax.linear_transpose``. For a non-square
    callable ``A`` pass ``x0`` (a pytree in A's input space) so that the input space is known;
    a 2-D array ``A`` of shape (m, n) needs ``b`` of shape (m,) and returns x of shape (n,).
    The condition number is squared, so prefer ``gmres`` for ill-conditioned square systems.

    Convergence (and ``info.residual``) is measured on the normal equations:
    ``‖Aᵀ(b − A x)‖ ≤ max(tol·‖Aᵀb‖, atol)``; for a square non-singular ``A`` this implies
    ``b − A x → 0``. For least-squares problems ``b − A x`` need not vanish.

    Returns ``(x, SolverInfo)``. Reference: Saad, *Iterative Methods for Sparse Linear
    Systems*, 2nd ed., §8.3 (CGNR).
    """
    _check_tolerances(tol, atol, maxiter)
    b = jax.tree.map(jnp.asarray, b)
    if isinstance(A, jax.Array | np.ndarray) and not callable(A):
        if A.ndim != 2:
            raise ValueError(f"A has shape {A.shape}; a 2-D array or a callable is required")
        if not isinstance(b, jax.Array) or b.shape[0] != A.shape[0]:
            raise ValueError(
                f"A has shape {A.shape} but b has structure {_struct(b)}; "
                f"b must have shape ({A.shape[0]}, ...)"
            )
        x_example = jnp.zeros((A.shape[1], *b.shape[1:]), _result_dtype(b))
    else:
        x_example = b if x0 is None else jax.tree.map(jnp.asarray, x0)
    matvec = _as_matvec(A, square=False)
    try:
        out = jax.eval_shape(matvec, x_example)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"A cannot be applied to x with structure {_struct(x_example)}: {err}; "
            "for a non-square A pass x0 in its input space"
        ) from err
    if _struct(out) != _struct(b):
        raise ValueError(
            f"A maps x of structure {_struct(x_example)} to {_struct(out)}, which does not match "
            f"b of structure {_struct(b)}; for a non-square A pass x0 in its input space"
        )
    x_init = _zeros_like(x_example) if x0 is None else x_example
    rmatvec_t = jax.linear_transpose(matvec, x_example)

    def rmatvec(y):
        return rmatvec_t(y)[0]

    def normal_matvec(x):
        return rmatvec(matvec(x))

    rhs = rmatvec(b)
    size = sum(int(np.size(leaf)) for leaf in jax.tree.leaves(x_example))
    maxiter = 10 * size if maxiter is None else maxiter
    thr = _threshold(_norm(rhs), tol, atol)
    x, k = _cg_loop(normal_matvec, rhs, x_init, thr, maxiter, _guard_or_identity(guard))
    return x, _info(k, _norm(_sub(rhs, normal_matvec(x))), thr)


# ------------------------------------------------------------------------------- BiCGSTAB


def bicgstab(
    A: Operator,
    b: PyTree,
    *,
    x0: PyTree | None = None,
    tol: float = 1e-5,
    atol: float = 0.0,
    maxiter: int | None = None,
    guard: Guard = None,
) -> tuple[PyTree, SolverInfo]:
    """Bi-conjugate gradient stabilised, for general (non-symmetric) square ``A``.

    Per step: ``ρ = r̂ᵀr, β = (ρ/ρ₋)(α/ω), p = r + β(p − ωv), v = Ap, α = ρ/r̂ᵀv, s = r − αv,
    t = As, ω = tᵀs/tᵀt, x += αp + ωs, r = s − ωt`` (two operator applications per
    iteration). A breakdown (``r̂ᵀv = 0`` or ``ρ = 0``) stops the iteration; ``info`` then
    reports the true residual and ``converged=False`` unless the residual is already small.

    Args as ``cg`` (``maxiter`` default ``10·n``). Returns ``(x, SolverInfo)``.

    Reference: van der Vorst, SIAM J. Sci. Stat. Comput. 13(2), 631–644 (1992).
    """
    matvec, b, x0, size = _prepare(A, b, x0, tol, atol, maxiter)
    maxiter = 10 * size if maxiter is None else maxiter
    guard = _guard_or_identity(guard)
    thr = _threshold(_norm(b), tol, atol)
    r0 = _sub(b, matvec(x0))
    rhat = r0
    one = jnp.ones((), thr.dtype)
    zero = _zeros_like(b)

    def cond(state):
        k, _, r, *_, broken = state
        return (k < maxiter) & (_norm(r) > thr) & ~broken

    def body(state):
        k, x, r, p, v, rho, alpha, omega, _ = state
        rho_new = _vdot(rhat, r)
        beta = _safe_div(rho_new, rho) * _safe_div(alpha, omega)
        p = _add(r, _scale(beta, _axpy(-omega, v, p)))
        v = matvec(p)
        rv = _vdot(rhat, v)
        alpha = _safe_div(rho_new, rv)
        s = _axpy(-alpha, v, r)
        t = matvec(s)
        omega = _safe_div(_vdot(t, s), _vdot(t, t))
        x = guard(_axpy(omega, s, _axpy(alpha, p, x)))
        r = _axpy(-omega, t, s)
        broken = (rho_new == 0) | (rv == 0)
        return k + 1, x, r, p, v, rho_new, alpha, omega, broken

    init = (jnp.asarray(0, jnp.int32), x0, r0, zero, zero, one, one, one, jnp.asarray(False))
    k, x, *_ = lax.while_loop(cond, body, init)
    return x, _info(k, _norm(_sub(b, matvec(x))), thr)


# ---------------------------------------------------------------------------------- GMRES


def gmres(
    A: Operator,
    b: PyTree,
    *,
    x0: PyTree | None = None,
    tol: float = 1e-5,
    atol: float = 0.0,
    restart: int = 20,
    maxiter: int | None = None,
    guard: Guard = None,
) -> tuple[PyTree, SolverInfo]:
    """Restarted GMRES(m) for general square ``A``.

    Each cycle builds an Arnoldi basis ``V`` of the Krylov space K_m(A, r) (classical
    Gram–Schmidt applied twice, which is as stable as modified Gram–Schmidt), reduces the
    Hessenberg matrix with Givens rotations, and minimises ``‖b − A(x + V y)‖`` over y. A cycle
    stops early when the rotated residual estimate meets the tolerance; between cycles the true
    residual is recomputed. ``maxiter`` bounds the total number of Arnoldi steps (operator
    applications), default ``10·n``. Memory: ``(restart + 1)`` vectors of size n.

    The pytree is flattened with ``jax.flatten_util.ravel_pytree`` (one vector, leaves
    promoted to a common dtype) for the basis; the operator is still applied matrix-free.

    Args as ``cg``, plus ``restart`` (Krylov dimension per cycle, ≥ 1).
    Returns ``(x, SolverInfo)``.

    Reference: Saad & Schultz, SIAM J. Sci. Stat. Comput. 7(3), 856–869 (1986).
    """
    matvec, b, x0, size = _prepare(A, b, x0, tol, atol, maxiter)
    _check_int("restart", restart)
    maxiter = 10 * size if maxiter is None else maxiter
    m = int(min(restart, size))
    guard = _guard_or_identity(guard)
    b_flat, unravel = ravel_pytree(b)
    dtype = b_flat.dtype
    n = b_flat.shape[0]

    def mv(v):
        return ravel_pytree(matvec(unravel(v)))[0].astype(dtype)

    thr = _threshold(jnp.linalg.norm(b_flat), tol, atol)

    def cycle(x, k0):
        r = b_flat - mv(x)
        beta = jnp.linalg.norm(r)
        V = jnp.zeros((m + 1, n), dtype).at[0].set(r / jnp.where(beta > 0, beta, 1))
        H = jnp.zeros((m + 1, m), dtype)
        cs = jnp.zeros((m,), dtype)
        sn = jnp.zeros((m,), dtype)
        g = jnp.zeros((m + 1,), dtype).at[0].set(beta)

        def cond(state):
            j, _, _, _, _, g = state
            return (j < m) & (jnp.abs(g[j]) > thr) & (k0 + j < maxiter)

        def body(state):
            j, V, H, cs, sn, g = state
            w = mv(V[j])
            mask = (jnp.arange(m + 1) <= j).astype(dtype)
            h = (V @ w) * mask
            w = w - V.T @ h
            h2 = (V @ w) * mask  # second pass of classical Gram–Schmidt
            w = w - V.T @ h2
            h = h + h2
            hn = jnp.linalg.norm(w)
            V = V.at[j + 1].set(w / jnp.where(hn > 0, hn, 1))
            col = h[:m].at[j + 1].set(0).astype(dtype)
            col = jnp.concatenate([col, jnp.zeros((1,), dtype)]).at[j + 1].set(hn)

            def rot(i, c):
                a, bb = c[i], c[i + 1]
                ai = cs[i] * a + sn[i] * bb
                bi = -sn[i] * a + cs[i] * bb
                apply = i < j
                return c.at[i].set(jnp.where(apply, ai, a)).at[i + 1].set(jnp.where(apply, bi, bb))

            col = lax.fori_loop(0, m, rot, col)
            a, bb = col[j], col[j + 1]
            den = jnp.hypot(a, bb)
            c_j = jnp.where(den > 0, a / jnp.where(den > 0, den, 1), 1)
            s_j = jnp.where(den > 0, bb / jnp.where(den > 0, den, 1), 0)
            col = col.at[j].set(den).at[j + 1].set(0)
            H = H.at[:, j].set(col)
            cs, sn = cs.at[j].set(c_j), sn.at[j].set(s_j)
            gj = g[j]
            g = g.at[j].set(c_j * gj).at[j + 1].set(-s_j * gj)
            # Lucky breakdown (hn = 0): the Krylov space is invariant and the solution exact;
            # mark it by a zero residual estimate so the cycle ends.
            g = jnp.where(hn == 0, g.at[j + 1].set(0), g)
            return j + 1, V, H, cs, sn, g

        j0 = jnp.asarray(0, jnp.int32)
        j, V, H, cs, sn, g = lax.while_loop(cond, body, (j0, V, H, cs, sn, g))
        idx = jnp.arange(m)
        active = idx < j
        R = jnp.where(active[:, None] & active[None, :], H[:m], jnp.eye(m, dtype=dtype))
        R = jnp.where(jnp.eye(m, dtype=bool) & (R == 0), 1, R)  # singular pivot guard
        y = jax.scipy.linalg.solve_triangular(R, jnp.where(active, g[:m], 0), lower=False)
        x = x + V[:m].T @ y
        x = ravel_pytree(guard(unravel(x)))[0].astype(dtype)
        return x, j

    def outer_cond(state):
        k, _, res, stalled = state
        return (k < maxiter) & (res > thr) & ~stalled

    def outer_body(state):
        k, x, _, _ = state
        x, j = cycle(x, k)
        res = jnp.linalg.norm(b_flat - mv(x))
        return k + j, x, res, j == 0

    x_flat = ravel_pytree(x0)[0].astype(dtype)
    res0 = jnp.linalg.norm(b_flat - mv(x_flat))
    k, x_flat, _, _ = lax.while_loop(
        outer_cond, outer_body, (jnp.asarray(0, jnp.int32), x_flat, res0, jnp.asarray(False))
    )
    x = unravel(x_flat)
    return x, _info(k, _norm(_sub(b, matvec(x))), thr)


# -------------------------------------------------------------------------------- Neumann


def neumann(
    A: Operator,
    b: PyTree,
    *,
    alpha: float = 1.0,
    tol: float = 1e-5,
    atol: float = 0.0,
    maxiter: int = 100,
    guard: Guard = None,
) -> tuple[PyTree, SolverInfo]:
    """Truncated Neumann series ``x_K = Σ_{j=0}^{K} (I − αA)^j α b ≈ A⁻¹ b``, matrix-free.

    Converges iff the spectral radius of ``I − αA`` is below 1 (for SPD ``A``: ``0 < α <
    2/λ_max(A)``), linearly with that ratio. The recursion ``t₀ = αb, t_{j+1} = t_j − αA t_j,
    x_{j+1} = x_j + t_{j+1}`` needs one operator application per term and holds only three
    vectors. The residual of ``x_K`` is exactly ``b − A x_K = t_{K+1}/α``, used as the stopping
    test ``‖t_{K+1}‖/α ≤ max(tol·‖b‖, atol)``; the reported ``info.residual`` is recomputed
    from ``x``. On a non-contractive operator the series diverges and ``info.converged`` is
    False.

    Args:
      A: callable ``x -> A x`` on pytrees shaped like ``b``, or a square 2-D array.
      b: right-hand side pytree.
      alpha: step size α > 0 (may be a traced scalar under ``jit``; the sign check then
        happens only for concrete values).
      tol, atol: residual tolerances.
      maxiter: maximum number of terms beyond the first (operator applications), ≥ 1.
      guard: optional ``x -> x`` applied to the running term and the partial sum.

    Returns ``(x, SolverInfo)``, ``info.iterations`` = number of operator applications.

    Reference: Lorraine, Vicol & Duvenaud, "Optimizing Millions of Hyperparameters by
    Implicit Differentiation", AISTATS 2020, Alg. 3 (there without the final factor α).
    """
    _check_real("alpha", alpha, positive=True)
    if maxiter is None:
        raise ValueError("maxiter=None: neumann needs an explicit maxiter >= 1")
    matvec, b, _, _ = _prepare(A, b, None, tol, atol, maxiter)
    guard = _guard_or_identity(guard)
    bnorm = _norm(b)
    thr = _threshold(bnorm, tol, atol)
    alpha = jnp.asarray(alpha, thr.dtype)
    t0 = guard(_scale(alpha, b))

    def cond(state):
        k, _, t = state
        return (k < maxiter) & (_norm(t) > alpha * thr)

    def body(state):
        k, x, t = state
        t = guard(_axpy(-alpha, matvec(t), t))
        x = guard(_add(x, t))
        return k + 1, x, t

    k, x, _ = lax.while_loop(cond, body, (jnp.asarray(0, jnp.int32), t0, t0))
    return x, _info(k, _norm(_sub(b, matvec(x))), thr)


# ------------------------------------------------------------------------------- registry

SOLVERS: dict[str, Callable[..., tuple[PyTree, SolverInfo]]] = {
    "cg": cg,
    "normal_cg": normal_cg,
    "gmres": gmres,
    "bicgstab": bicgstab,
    "neumann": neumann,
}


def get_solver(name: str) -> Callable[..., tuple[PyTree, SolverInfo]]:
    """Return the solver registered under ``name`` (one of ``SOLVERS``)."""
    if name not in SOLVERS:
        raise ValueError(f"solve={name!r} is not a known solver; choose one of {sorted(SOLVERS)}")
    return SOLVERS[name]
