"""implicit_hypergrad / unrolled_hypergrad on ridge regression (SPEC §3 correctness bars):
closed form in float64 (CG ≤ 1e-8, Neumann ≤ 1e-6), finite differences, unrolled → implicit as
T grows, truncation / checkpointing, jit, vmap over λ, per-feature λ, float32, bad inputs."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from spiraljax.implicit import implicit_hypergrad, run_inner_optimizer, unrolled_hypergrad

RNG = np.random.default_rng(42)
D = 6
# Columns with different scales: the inner problem is moderately ill-conditioned, so gradient
# descent needs hundreds of steps (unrolled with small T is visibly inexact).
X = RNG.normal(size=(50, D)) * np.logspace(0, -1, D)
W_TRUE = RNG.normal(size=D)
Y = X @ W_TRUE + 0.3 * RNG.normal(size=50)
XV = RNG.normal(size=(25, D)) * np.logspace(0, -1, D)
YV = XV @ W_TRUE + 0.3 * RNG.normal(size=25)
L_MAX = float(np.linalg.eigvalsh(X.T @ X).max())


def inner_loss(w, log_lam):
    """½‖Xw − y‖² + ½ Σ exp(log λ) w² (scalar or per-feature log λ)."""
    return 0.5 * jnp.sum((X @ w - Y) ** 2) + 0.5 * jnp.sum(jnp.exp(log_lam) * w**2)


def outer_loss(w, log_lam):
    return 0.5 * jnp.sum((XV @ w - YV) ** 2)


def closed_form(log_lam):
    """Value and d/d(log λ) of L_val(w*(λ)) in float64: −λ ⊙ w* ⊙ A⁻¹∇L_val."""
    log_lam = np.asarray(log_lam, np.float64)
    lam = np.broadcast_to(np.exp(log_lam), (D,))
    A = X.T @ X + np.diag(lam)
    w = np.linalg.solve(A, X.T @ Y)
    g = XV.T @ (XV @ w - YV)
    per_feature = -lam * w * np.linalg.solve(A, g)
    value = 0.5 * np.sum((XV @ w - YV) ** 2)
    return value, (per_feature if log_lam.ndim else per_feature.sum())


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


LR = 1.0 / (L_MAX + np.exp(2.0))
W0 = jnp.zeros(D)


def _implicit(solve, solve_options, optimizer=None, **kw):
    optimizer = optimizer if optimizer is not None else optax.sgd(LR, momentum=0.9)
    return jax.jit(
        lambda h: implicit_hypergrad(
            outer_loss,
            inner_loss,
            h,
            W0,
            optimizer=optimizer,
            maxiter=20000,
            tol=1e-12,
            solve=solve,
            solve_options=solve_options,
            **kw,
        )
    )


IMPLICIT_CG = _implicit("cg", {"tol": 1e-12})
IMPLICIT_NEUMANN = _implicit("neumann", {"tol": 1e-10, "alpha": LR, "maxiter": 100000})


@pytest.mark.parametrize("log_lam", [-2.0, 0.5, 2.0])
def test_ridge_scalar_log_lambda_cg_and_neumann(log_lam):
    value, ref = closed_form(log_lam)
    res = IMPLICIT_CG(jnp.asarray(log_lam))
    assert bool(res.info.converged) and int(res.info.iterations) > 1
    assert rel_err(res.grad, ref) <= 1e-8
    np.testing.assert_allclose(float(res.value), value, rtol=1e-12)
    res_n = IMPLICIT_NEUMANN(jnp.asarray(log_lam))
    assert rel_err(res_n.grad, ref) <= 1e-6


def test_per_feature_lambda_and_vmap_over_batch():
    batch = jnp.asarray(RNG.normal(size=(4, D)))
    out = jax.vmap(IMPLICIT_CG)(batch)
    assert out.grad.shape == (4, D) and out.info.converged.shape == (4,)
    for h, g in zip(np.asarray(batch), np.asarray(out.grad), strict=True):
        assert rel_err(g, closed_form(h)[1]) <= 1e-8
    scalars = jnp.asarray([-1.0, 0.0, 1.0])
    out = jax.vmap(IMPLICIT_NEUMANN)(scalars)
    for h, g in zip(np.asarray(scalars), np.asarray(out.grad), strict=True):
        assert rel_err(g, closed_form(h)[1]) <= 1e-6


def test_finite_differences_agree():
    h0 = np.asarray(RNG.normal(size=D) * 0.5)
    res = IMPLICIT_CG(jnp.asarray(h0))
    eps = 1e-6
    fd = np.array(
        [
            (closed_form(h0 + eps * e)[0] - closed_form(h0 - eps * e)[0]) / (2 * eps)
            for e in np.eye(D)
        ]
    )
    np.testing.assert_allclose(np.asarray(res.grad), fd, rtol=1e-6, atol=1e-9)


def test_user_inner_solver_and_direct_hyperparameter_dependence():
    """A user solver, a pytree λ and an outer loss that also depends on λ directly."""

    def solver(w0, h):
        A = X.T @ X + jnp.diag(jnp.exp(h["log_l2"]))
        return jnp.linalg.solve(A, X.T @ Y)

    def inner(w, h):
        return inner_loss(w, h["log_l2"])

    def outer(w, h):
        return outer_loss(w, h) + 0.01 * jnp.sum(jnp.exp(h["log_l2"]))

    h = {"log_l2": jnp.asarray(RNG.normal(size=D))}
    res = jax.jit(
        lambda h: implicit_hypergrad(
            outer, inner, h, W0, inner_solver=solver, solve="gmres", solve_options={"tol": 1e-13}
        )
    )(h)
    ref = closed_form(np.asarray(h["log_l2"]))[1] + 0.01 * np.exp(np.asarray(h["log_l2"]))
    assert rel_err(res.grad["log_l2"], ref) <= 1e-8
    assert int(res.info.iterations) == -1 and bool(res.info.converged)


def test_lbfgs_inner_optimizer():
    res = _implicit("cg", {"tol": 1e-12}, optimizer=optax.lbfgs())(jnp.asarray(0.3))
    assert bool(res.info.converged) and int(res.info.iterations) < 200
    assert rel_err(res.grad, closed_form(0.3)[1]) <= 1e-8


def test_unrolled_converges_to_implicit_as_T_grows():
    h = jnp.asarray(0.5)
    ref = closed_form(0.5)[1]

    def unrolled(T, **kw):
        return jax.jit(
            lambda h: unrolled_hypergrad(
                outer_loss, inner_loss, h, W0, optimizer=optax.sgd(LR), steps=T, **kw
            )
        )(h)

    errs = [rel_err(unrolled(T).grad, ref) for T in (10, 100, 1000)]
    assert errs[0] > errs[1] > errs[2], errs
    assert errs[0] > 1e-2 and errs[2] < 1e-4, errs
    # Checkpointing changes memory, not the result.
    full = unrolled(100)
    ck = unrolled(100, checkpoint=True)
    np.testing.assert_allclose(np.asarray(ck.grad), np.asarray(full.grad), rtol=1e-12)
    # Truncation with K = T is full back-propagation; a short K is biased, a longer one less.
    np.testing.assert_allclose(
        np.asarray(unrolled(100, truncate=100).grad), np.asarray(full.grad), rtol=1e-12
    )
    t5 = rel_err(unrolled(1000, truncate=5).grad, ref)
    t500 = rel_err(unrolled(1000, truncate=500).grad, ref)
    assert t5 > t500 and t500 < 1e-3, (t5, t500)
    # Unrolled value equals the loss at w_T, info reports T steps.
    res = unrolled(1000)
    assert int(res.info.iterations) == 1000
    np.testing.assert_allclose(float(res.value), float(outer_loss(res.params, h)), rtol=1e-12)


def test_unrolled_vmap_and_per_feature():
    batch = jnp.asarray(RNG.normal(size=(3, D)) * 0.3)
    out = jax.jit(
        jax.vmap(
            lambda h: (
                unrolled_hypergrad(
                    outer_loss, inner_loss, h, W0, optimizer=optax.sgd(LR, momentum=0.9), steps=1500
                ).grad
            )
        )
    )(batch)
    for h, g in zip(np.asarray(batch), np.asarray(out), strict=True):
        assert rel_err(g, closed_form(h)[1]) <= 1e-6


def test_float32():
    Xf, Yf = jnp.asarray(X, jnp.float32), jnp.asarray(Y, jnp.float32)
    XVf, YVf = jnp.asarray(XV, jnp.float32), jnp.asarray(YV, jnp.float32)

    def inner(w, h):
        return 0.5 * jnp.sum((Xf @ w - Yf) ** 2) + 0.5 * jnp.sum(jnp.exp(h) * w**2)

    def outer(w, h):
        return 0.5 * jnp.sum((XVf @ w - YVf) ** 2)

    h = jnp.asarray(0.5, jnp.float32)
    res = jax.jit(
        lambda h: implicit_hypergrad(
            outer,
            inner,
            h,
            jnp.zeros(D, jnp.float32),
            optimizer=optax.sgd(np.float32(LR), momentum=0.9),
            maxiter=5000,
            tol=1e-4,
            solve_options={"tol": 1e-6},
        )
    )(h)
    assert res.grad.dtype == jnp.float32 and res.params.dtype == jnp.float32
    assert rel_err(res.grad, closed_form(0.5)[1]) <= 1e-3


def test_run_inner_optimizer_reports_honestly():
    w, info = run_inner_optimizer(
        inner_loss, jnp.asarray(0.0), W0, optimizer=optax.sgd(LR), maxiter=3
    )
    assert int(info.iterations) == 3 and not bool(info.converged)
    np.testing.assert_allclose(
        float(info.residual), float(jnp.linalg.norm(jax.grad(inner_loss)(w, 0.0))), rtol=1e-12
    )
    w, info = run_inner_optimizer(
        inner_loss, jnp.asarray(0.0), W0, optimizer=optax.sgd(LR), maxiter=10, tol=0.0
    )
    assert int(info.iterations) == 10


def test_bad_inputs():
    common = (outer_loss, inner_loss, jnp.asarray(0.0), W0)
    with pytest.raises(ValueError, match="exactly one of optimizer"):
        implicit_hypergrad(*common)
    with pytest.raises(ValueError, match="exactly one of optimizer"):
        implicit_hypergrad(*common, optimizer=optax.sgd(0.1), inner_solver=lambda w, h: w)
    with pytest.raises(ValueError, match="maxiter=0"):
        implicit_hypergrad(*common, optimizer=optax.sgd(0.1), maxiter=0)
    with pytest.raises(ValueError, match="tol=-1"):
        implicit_hypergrad(*common, optimizer=optax.sgd(0.1), tol=-1.0)
    with pytest.raises(ValueError, match="solve='qr'"):
        implicit_hypergrad(*common, optimizer=optax.sgd(0.1), solve="qr")
    with pytest.raises(ValueError, match="alpha=-0.5"):
        implicit_hypergrad(
            *common, optimizer=optax.sgd(0.1), solve="neumann", solve_options={"alpha": -0.5}
        )
    with pytest.raises(ValueError, match="steps=0"):
        unrolled_hypergrad(*common, optimizer=optax.sgd(0.1), steps=0)
    with pytest.raises(ValueError, match="truncate=20 exceeds steps=10"):
        unrolled_hypergrad(*common, optimizer=optax.sgd(0.1), steps=10, truncate=20)
    with pytest.raises(ValueError, match="truncate=0"):
        unrolled_hypergrad(*common, optimizer=optax.sgd(0.1), steps=10, truncate=0)
