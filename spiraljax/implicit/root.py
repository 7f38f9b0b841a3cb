"""Implicit differentiation of roots and fixed points: ``custom_root``, ``custom_fixed_point``.

Let ``x*(θ)`` solve ``F(x*, θ) = 0``. By the implicit function theorem

    ∂x*/∂θ · v = −A⁻¹ (∂F/∂θ · v),    A = ∂F/∂x (x*, θ),

so a Jacobian-vector product costs one JVP of ``F`` in θ and one linear solve with ``A``
(applied matrix-free as a JVP of ``F`` in x). The decorated solver is wrapped in a
``jax.custom_jvp`` whose tangent rule is exactly this; the linear solve is expressed with
``jax.lax.custom_linear_solve``, whose transpose rule solves ``Aᵀ u = w`` with the same
solver on ``vecmat = (∂F/∂x)ᵀ`` (a VJP of ``F``). JAX derives reverse mode (``grad``, ``vjp``,
``jacrev``) by linearising and transposing the tangent rule, so forward *and* reverse mode (and
higher orders through ``custom_linear_solve``'s own rules) work, and the iterative solver is
never differentiated. Reverse mode thus computes ``−(∂F/∂θ)ᵀ A⁻ᵀ x̄``, the jaxopt ``root_vjp``.

Calling convention (as jaxopt's ``implicit_diff.custom_root``): the decorated
``solver(init_params, *args, **kwargs)`` returns ``params`` (or ``(params, aux)`` with
``has_aux=True``) such that ``optimality_fn(params, *args, **kwargs) == 0``; derivatives flow
to the array leaves of ``args`` / ``kwargs``. ``init_params`` and ``aux`` get zero derivative.
Leaves of ``args`` / ``kwargs`` that are not arrays (Python numbers, strings, callables, None)
are treated as static configuration: they reach both functions unchanged and are not traced,
so e.g. ``maxiter=100`` or ``tol=1e-8`` stay Python values under ``jit``. Keyword arguments
that ``optimality_fn`` does not accept (solver configuration such as ``maxiter``) are passed
to the solver only; positional arguments are passed to both.

References: Blondel et al., "Efficient and Modular Implicit Differentiation", NeurIPS 2022
(jaxopt); Krantz & Parks, *The Implicit Function Theorem* (2002).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from spiraljax.implicit.solvers import SolverInfo, check_solver_options, get_solver

PyTree = Any
SolveSpec = str | Callable[..., Any]

__all__ = ["custom_fixed_point", "custom_root", "make_linear_solve"]


def make_linear_solve(
    solve: SolveSpec = "cg", solve_options: Mapping[str, Any] | None = None
) -> Callable[[Callable[[PyTree], PyTree], PyTree], PyTree]:
    """Normalise ``solve`` into ``f(matvec, b) -> x``.

    ``solve`` is a name from ``spiraljax.implicit.solvers.SOLVERS`` (``"cg"``,
    ``"normal_cg"``, ``"gmres"``, ``"bicgstab"``, ``"neumann"``) or a callable
    ``solve(matvec, b, **opts)`` returning ``x`` or ``(x, SolverInfo)`` (jaxopt's
    ``solve_*`` functions and ``jax.scipy.sparse.linalg`` wrappers fit). ``solve_options``
    are forwarded as keyword arguments (e.g. ``{"tol": 1e-10, "maxiter": 500}`` or
    ``{"alpha": 0.1}`` for Neumann).
    """
    options = dict(solve_options or {})
    if isinstance(solve, str):
        fn = get_solver(solve)
        check_solver_options(solve, options)
    elif callable(solve):
        fn = solve
    else:
        raise ValueError(f"solve={solve!r} must be a solver name or a callable")

    def linear_solve(matvec, b):
        out = fn(matvec, b, **options)
        if isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], SolverInfo):
            return out[0]
        return out

    return linear_solve


def _is_dynamic(leaf) -> bool:
    return isinstance(leaf, jax.Array | np.ndarray | np.generic)


def _split(tree):
    """Split a pytree into (dynamic array leaves, rebuild function) keeping other leaves static."""
    leaves, treedef = jax.tree.flatten(tree)
    mask = [_is_dynamic(leaf) for leaf in leaves]
    dynamic = [leaf for leaf, m in zip(leaves, mask, strict=True) if m]
    static = [leaf for leaf, m in zip(leaves, mask, strict=True) if not m]

    def rebuild(dyn):
        dyn_it, st_it = iter(dyn), iter(static)
        return treedef.unflatten([next(dyn_it) if m else next(st_it) for m in mask])

    return dynamic, rebuild


def _zero_tangent(x):
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.inexact):
        return jnp.zeros_like(x)
    return np.zeros(x.shape, jax.dtypes.float0)


def _check_same_structure(out, sol):
    so = jax.tree.map(lambda a: tuple(jnp.shape(a)), out)
    ss = jax.tree.map(lambda a: tuple(jnp.shape(a)), sol)
    if jax.tree.structure(out) != jax.tree.structure(sol) or so != ss:
        raise ValueError(
            f"optimality_fn returned structure {so} but the solution has {ss}; "
            "F(params, ...) must have the structure of params (a square system)"
        )


def _accepted_kwargs(fn) -> Callable[[dict], dict]:
    """Filter for the keyword arguments ``fn`` accepts (all of them if it has ``**kwargs``)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return lambda kw: kw
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return lambda kw: kw
    names = {p.name for p in params if p.kind is not inspect.Parameter.VAR_POSITIONAL}
    return lambda kw: {k: v for k, v in kw.items() if k in names}


def _custom_root(solver_fn, optimality_fn, linear_solve, has_aux):
    select_kwargs = _accepted_kwargs(optimality_fn)

    @functools.wraps(solver_fn)
    def wrapped(*args, **kwargs):
        if not args:
            raise ValueError("the decorated solver needs init_params as first positional argument")
        dynamic, rebuild = _split((args, kwargs))

        def call(fn, dyn):
            a, kw = rebuild(dyn)
            return fn(*a, **kw)

        @jax.custom_jvp
        def solve_root(*dyn):
            return call(solver_fn, dyn)

        @solve_root.defjvp
        def solve_root_jvp(primals, tangents):
            out = call(solver_fn, primals)
            sol = out[0] if has_aux else out

            def F(x, dyn):
                (_, *a), kw = rebuild(dyn)
                return optimality_fn(x, *a, **select_kwargs(kw))

            _check_same_structure(jax.eval_shape(F, sol, list(primals)), sol)
            # ∂F/∂θ·θ̇ — the init_params leaves enter with zero tangent (F ignores them).
            _, rhs = jax.jvp(lambda d: F(sol, d), (list(primals),), (list(tangents),))
            rhs = jax.tree.map(jnp.negative, rhs)

            # custom_linear_solve transposes only if every leaf of its right-hand side is
            # linear in the tangents; a leaf on which θ has no influence is a constant zero.
            # Raveling to one vector (concatenation is linear) avoids that corner.
            rhs_flat, unravel = ravel_pytree(rhs)

            def matvec(u_flat):
                u = unravel(u_flat)
                out = jax.jvp(lambda x: F(x, list(primals)), (sol,), (u,))[1]
                return ravel_pytree(out)[0].astype(rhs_flat.dtype)

            def flat_solve(mv, b_flat):
                x = linear_solve(lambda v: unravel(mv(ravel_pytree(v)[0])), unravel(b_flat))
                return ravel_pytree(x)[0].astype(b_flat.dtype)

            sol_dot = unravel(
                jax.lax.custom_linear_solve(
                    matvec, rhs_flat, solve=flat_solve, transpose_solve=flat_solve
                )
            )
            # Match dtypes of the primal solution (a solver may return e.g. float32 leaves).
            sol_dot = jax.tree.map(lambda t, s: t.astype(jnp.result_type(s)), sol_dot, sol)
            if has_aux:
                return out, (sol_dot, jax.tree.map(_zero_tangent, out[1]))
            return out, sol_dot

        return solve_root(*dynamic)

    return wrapped


def custom_root(
    optimality_fn: Callable[..., PyTree],
    *,
    solve: SolveSpec = "cg",
    has_aux: bool = False,
    solve_options: Mapping[str, Any] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator adding implicit differentiation to a root solver.

    Usage::

        def optimality_fn(w, lam, X, y):          # ∇_w of the training loss
            return jax.grad(train_loss)(w, lam, X, y)

        @custom_root(optimality_fn, solve="cg", solve_options={"tol": 1e-10})
        def ridge(init_w, lam, X, y):
            ...                                   # any solver; never differentiated
            return w_star

        jax.grad(lambda lam: val_loss(ridge(w0, lam, X, y)))(lam)

    Derivative: ``dx* = −A⁻¹ ∂F/∂θ dθ`` with ``A = ∂F/∂x`` (module docstring), available in
    forward mode (``jvp``, ``jacfwd``) and reverse mode (``grad``, ``vjp``, ``jacrev``), under
    ``jit`` and ``vmap``.

    Args:
      optimality_fn: ``F(params, *args, **kwargs)`` returning a pytree with the structure
        of ``params``; zero at the solution.
      solve: linear solver for systems with ``A`` (forward mode) and ``Aᵀ`` (reverse mode):
        ``"cg"`` (default; A symmetric positive-definite, e.g. ``F`` a gradient of a
        strongly convex loss), ``"normal_cg"``, ``"gmres"``, ``"bicgstab"``, ``"neumann"``
        or a callable ``solve(matvec, b, **opts) -> x`` (or ``(x, SolverInfo)``).
      has_aux: the solver returns ``(params, aux)``; ``aux`` is passed through with zero
        derivative.
      solve_options: keyword arguments for the linear solver (``tol``, ``maxiter``,
        ``alpha`` for Neumann, ...). A non-converged linear solve gives an approximate
        derivative; check with the solver directly when in doubt.

    Returns:
      A decorator ``solver_fn -> wrapped solver`` with the same signature.

    Raises:
      ValueError: unknown ``solve`` name, ``alpha ≤ 0``, ``maxiter < 1``, or (at call
      time) ``optimality_fn`` output not shaped like ``params``.

    Reference: Blondel et al., NeurIPS 2022, §2 (jaxopt ``custom_root``).
    """
    if not callable(optimality_fn):
        raise ValueError(f"optimality_fn={optimality_fn!r} is not callable")
    linear_solve = make_linear_solve(solve, solve_options)

    def decorator(solver_fn):
        if not callable(solver_fn):
            raise ValueError(f"solver_fn={solver_fn!r} is not callable")
        return _custom_root(solver_fn, optimality_fn, linear_solve, has_aux)

    return decorator


def custom_fixed_point(
    fixed_point_fn: Callable[..., PyTree],
    *,
    solve: SolveSpec = "gmres",
    has_aux: bool = False,
    solve_options: Mapping[str, Any] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator adding implicit differentiation to a fixed-point solver ``x* = T(x*, θ)``.

    Equivalent to ``custom_root`` with ``F(x, θ) = T(x, θ) − x``, so ``A = ∂T/∂x − I``.
    The default ``solve="gmres"`` because ``∂T/∂x`` is in general not symmetric; for
    ``T(x) = x − η∇f(x)`` the system is symmetric negative-definite and ``"cg"`` (on ``−A``
    implicitly: CG works for symmetric definite systems of either sign) also serves.

    Args and returns as ``custom_root``, with ``fixed_point_fn(params, *args, **kwargs)``
    returning a pytree shaped like ``params``.
    """
    if not callable(fixed_point_fn):
        raise ValueError(f"fixed_point_fn={fixed_point_fn!r} is not callable")

    def optimality_fn(params, *args, **kwargs):
        return jax.tree.map(jnp.subtract, fixed_point_fn(params, *args, **kwargs), params)

    optimality_fn.__wrapped__ = fixed_point_fn  # keyword filtering follows T's signature

    return custom_root(optimality_fn, solve=solve, has_aux=has_aux, solve_options=solve_options)
