"""Hypergradients of bilevel problems: ``implicit_hypergrad`` and ``unrolled_hypergrad``.

The problem is

    min_λ  L_val(w*(λ), λ),     w*(λ) = argmin_w L_train(w, λ),

with pytrees ``w`` (inner parameters) and ``λ`` (hyperparameters). By the implicit function
theorem applied to ``F(w, λ) = ∇_w L_train(w, λ) = 0``,

    dL_val/dλ = ∂_λ L_val − (∂²_{λw} L_train) H⁻¹ ∇_w L_val,     H = ∇²_{ww} L_train,

computed here with ``spiraljax.implicit.custom_root``: one inverse-Hessian-vector product by
a matrix-free solver (CG, Neumann, ...), Hessian-vector products by autodiff, memory independent
of the number of inner steps. The unrolled alternative differentiates through T optimizer steps
(``lax.scan``), exact for the truncated procedure but with memory linear in T (bounded by
``jax.checkpoint`` and truncation).

Both return a ``HypergradResult`` pytree and compose with ``jit`` and ``vmap`` (e.g. over
a batch of λ). ``outer_loss(w, λ)`` and ``inner_loss(w, λ)`` are scalar functions; data enter by
closure (closing over traced data works under ``jit``/``vmap``).

References: Pedregosa, "Hyperparameter optimization with approximate gradient", ICML 2016;
Lorraine, Vicol & Duvenaud, AISTATS 2020 (Neumann); Maclaurin, Duvenaud & Adams, ICML 2015
and Shaban et al., AISTATS 2019 (unrolled / truncated back-propagation).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from spiraljax.implicit.root import SolveSpec, custom_root
from spiraljax.implicit.solvers import SolverInfo

PyTree = Any
Loss = Callable[[PyTree, PyTree], jax.Array]

__all__ = ["HypergradResult", "implicit_hypergrad", "run_inner_optimizer", "unrolled_hypergrad"]


class HypergradResult(NamedTuple):
    """Outcome of a hypergradient computation (a pytree).

    Attributes:
      value: ``L_val(w, λ)`` at the returned inner parameters.
      grad: ``dL_val/dλ``, structured like the hyperparameters.
      params: the inner parameters ``w`` used (``w*(λ)`` or ``w_T``).
      info: ``SolverInfo`` of the inner problem:
        ``iterations`` (inner steps; −1 for a user solver that does not report them),
        ``residual = ‖F(w, λ)‖`` (the optimality residual at ``params``), ``converged`` =
        ``residual ≤ tol``.
    """

    value: jax.Array
    grad: PyTree
    params: PyTree
    info: SolverInfo


def _tree_norm(tree) -> jax.Array:
    leaves = jax.tree.leaves(tree)
    return jnp.sqrt(sum(jnp.sum(jnp.abs(leaf) ** 2) for leaf in leaves))


def _check_int(name: str, value, low: int = 1):
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name}={value!r} must be an int >= {low}")


def _check_tol(tol):
    if not isinstance(tol, jax.core.Tracer) and not float(tol) >= 0:
        raise ValueError(f"tol={tol} must be >= 0")


def _default_optimality(inner_loss: Loss) -> Callable[[PyTree, PyTree], PyTree]:
    def optimality_fn(params, hparams):
        return jax.grad(inner_loss)(params, hparams)

    return optimality_fn


def _make_step(inner_loss, optimizer, apply_updates):
    """One optimizer step ``(w, state) -> (w', state')`` on ``inner_loss(·, λ)``."""
    extra = isinstance(optimizer, optax.GradientTransformationExtraArgs)

    def step(params, opt_state, hparams, value, grad):
        if extra:  # e.g. optax.lbfgs needs value / grad / value_fn for its line search
            updates, opt_state = optimizer.update(
                grad,
                opt_state,
                params,
                value=value,
                grad=grad,
                value_fn=lambda p: inner_loss(p, hparams),
            )
        else:
            updates, opt_state = optimizer.update(grad, opt_state, params)
        return apply_updates(params, updates), opt_state

    return step


def run_inner_optimizer(
    inner_loss: Loss,
    hparams: PyTree,
    init_params: PyTree,
    *,
    optimizer: optax.GradientTransformation,
    maxiter: int = 1000,
    tol: float = 1e-6,
    optimality_fn: Callable[[PyTree, PyTree], PyTree] | None = None,
    apply_updates: Callable[[PyTree, PyTree], PyTree] = optax.apply_updates,
) -> tuple[PyTree, SolverInfo]:
    """Minimise ``inner_loss(·, hparams)`` with an optax optimizer under ``lax.while_loop``.

    Runs ``w ← apply_updates(w, optimizer.update(∇_w L, state, w))`` until
    ``‖F(w, λ)‖ ≤ tol`` (``F`` = ``optimality_fn``, default ``∇_w inner_loss``) or ``maxiter``
    steps; ``tol=0`` runs exactly ``maxiter`` steps. ``GradientTransformationExtraArgs``
    optimizers receive ``value``, ``grad`` and ``value_fn`` (so ``optax.lbfgs`` works).

    Returns ``(w, SolverInfo(iterations, residual=‖F(w, λ)‖, converged))``.
    """
    _check_int("maxiter", maxiter)
    _check_tol(tol)
    step = _make_step(inner_loss, optimizer, apply_updates)
    value_and_grad = jax.value_and_grad(inner_loss)

    def residual(params, grad):
        if optimality_fn is None:
            return _tree_norm(grad)
        return _tree_norm(optimality_fn(params, hparams))

    def cond(carry):
        k, _, _, _, _, res = carry
        return (k < maxiter) & (res > tol)

    def body(carry):
        k, params, opt_state, value, grad, _ = carry
        params, opt_state = step(params, opt_state, hparams, value, grad)
        value, grad = value_and_grad(params, hparams)
        return k + 1, params, opt_state, value, grad, residual(params, grad)

    value, grad = value_and_grad(init_params, hparams)
    init = (
        jnp.asarray(0, jnp.int32),
        init_params,
        optimizer.init(init_params),
        value,
        grad,
        residual(init_params, grad),
    )
    k, params, _, _, _, res = lax.while_loop(cond, body, init)
    return params, SolverInfo(k, res, res <= tol)


def implicit_hypergrad(
    outer_loss: Loss,
    inner_loss: Loss,
    hparams: PyTree,
    init_params: PyTree,
    *,
    optimizer: optax.GradientTransformation | None = None,
    inner_solver: Callable[[PyTree, PyTree], PyTree] | None = None,
    maxiter: int = 1000,
    tol: float = 1e-6,
    optimality_fn: Callable[[PyTree, PyTree], PyTree] | None = None,
    solve: SolveSpec = "cg",
    solve_options: Mapping[str, Any] | None = None,
    apply_updates: Callable[[PyTree, PyTree], PyTree] = optax.apply_updates,
) -> HypergradResult:
    """Hypergradient ``dL_val(w*(λ), λ)/dλ`` by implicit differentiation.

    The inner problem is solved either by ``optimizer`` (any optax transform, run by
    ``run_inner_optimizer`` to ``tol`` / ``maxiter``) or by ``inner_solver(init_params,
    hparams) -> w``; the solver is never differentiated. The derivative of ``w*`` comes from
    ``F(w, λ) = 0`` (``optimality_fn``, default ``∇_w inner_loss``) through
    ``custom_root`` with the linear solver ``solve``:

        dL/dλ = ∂_λ L_val − (∂_λ F)ᵀ A⁻ᵀ ∇_w L_val,   A = ∂_w F  (= Hessian by default).

    Args:
      outer_loss: ``L_val(w, λ) -> scalar``.
      inner_loss: ``L_train(w, λ) -> scalar``.
      hparams: λ, any pytree of float arrays.
      init_params: starting point of the inner solver.
      optimizer / inner_solver: exactly one of them.
      maxiter, tol: inner stopping rule (``‖F(w, λ)‖ ≤ tol``).
      optimality_fn: ``F(w, λ)``, zero at the inner solution. For a Riemannian inner
        problem use the Riemannian gradient, e.g. ``egrad2rgrad(w, ∇_w L_train)``.
      solve, solve_options: linear solver for ``A`` (see ``custom_root``); for
        ``"neumann"`` give ``{"alpha": α}`` with ``‖I − αA‖ < 1`` (e.g. α = 1/L).
      apply_updates: how updates are applied (e.g. ``spiraljax.optim.apply_updates`` with a
        bound curvature, to re-project onto the ball).

    Returns:
      ``HypergradResult`` ``(value, grad, params, info)``.

    Raises:
      ValueError: neither or both of ``optimizer`` / ``inner_solver``; ``maxiter < 1``;
        ``tol < 0``; unknown ``solve``; ``alpha ≤ 0``.
    """
    if (optimizer is None) == (inner_solver is None):
        raise ValueError(
            f"exactly one of optimizer={optimizer!r} and inner_solver={inner_solver!r} is required"
        )
    _check_int("maxiter", maxiter)
    _check_tol(tol)
    F = optimality_fn or _default_optimality(inner_loss)

    def solver(init, hp):
        if inner_solver is not None:
            params = inner_solver(init, hp)
            return params, jnp.asarray(-1, jnp.int32)
        params, info = run_inner_optimizer(
            inner_loss,
            hp,
            init,
            optimizer=optimizer,
            maxiter=maxiter,
            tol=tol,
            optimality_fn=optimality_fn,
            apply_updates=apply_updates,
        )
        return params, info.iterations

    root = custom_root(F, solve=solve, has_aux=True, solve_options=solve_options)(solver)

    def objective(hp):
        params, iterations = root(init_params, hp)
        return outer_loss(params, hp), (params, iterations)

    (value, (params, iterations)), grad = jax.value_and_grad(objective, has_aux=True)(hparams)
    res = _tree_norm(F(params, hparams))
    return HypergradResult(value, grad, params, SolverInfo(iterations, res, res <= tol))


def unrolled_hypergrad(
    outer_loss: Loss,
    inner_loss: Loss,
    hparams: PyTree,
    init_params: PyTree,
    *,
    optimizer: optax.GradientTransformation,
    steps: int,
    truncate: int | None = None,
    checkpoint: bool = False,
    tol: float = 1e-6,
    optimality_fn: Callable[[PyTree, PyTree], PyTree] | None = None,
    apply_updates: Callable[[PyTree, PyTree], PyTree] = optax.apply_updates,
) -> HypergradResult:
    """Hypergradient by differentiating through ``steps`` optimizer steps (``lax.scan``).

    ``w_T(λ) = step^T(w_0; λ)`` and the result is the exact derivative of
    ``L_val(w_T(λ), λ)`` (reverse mode through the scan). With ``truncate=K`` only the last K
    steps are differentiated: the first ``T − K`` run with ``stop_gradient(λ)``, i.e.
    truncated back-propagation (Shaban et al. 2019), memory O(K). ``checkpoint=True`` wraps
    each step in ``jax.checkpoint``, so the backward pass stores only the carried
    ``(w, opt_state)`` per step and recomputes the step's internals.

    Args:
      outer_loss, inner_loss, hparams, init_params, optimizer, apply_updates: as
        ``implicit_hypergrad``.
      steps: T ≥ 1.
      truncate: K with 1 ≤ K ≤ T, or None (full back-propagation).
      checkpoint: rematerialise each step in the backward pass.
      tol, optimality_fn: only used to report ``info.residual = ‖F(w_T, λ)‖`` and
        ``info.converged`` (the unrolled procedure always runs exactly T steps).

    Returns:
      ``HypergradResult`` with ``params = w_T`` and ``info.iterations = T``.
    """
    _check_int("steps", steps)
    if truncate is not None:
        _check_int("truncate", truncate)
        if truncate > steps:
            raise ValueError(f"truncate={truncate} exceeds steps={steps}")
    _check_tol(tol)
    step = _make_step(inner_loss, optimizer, apply_updates)
    value_and_grad = jax.value_and_grad(inner_loss)

    def scan_steps(carry, hp, length):
        def body(carry, _):
            params, opt_state = carry
            value, grad = value_and_grad(params, hp)
            return step(params, opt_state, hp, value, grad), None

        if checkpoint:
            body = jax.checkpoint(body)
        return lax.scan(body, carry, None, length=length)[0]

    def objective(hp):
        carry = (init_params, optimizer.init(init_params))
        frozen = 0 if truncate is None else steps - truncate
        if frozen:
            carry = scan_steps(carry, lax.stop_gradient(hp), frozen)
        params, _ = scan_steps(carry, hp, steps - frozen)
        return outer_loss(params, hp), params

    (value, params), grad = jax.value_and_grad(objective, has_aux=True)(hparams)
    F = optimality_fn or _default_optimality(inner_loss)
    res = _tree_norm(F(params, hparams))
    info = SolverInfo(jnp.asarray(steps, jnp.int32), res, res <= tol)
    return HypergradResult(value, grad, params, info)
