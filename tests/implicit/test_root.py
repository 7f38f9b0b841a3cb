"""custom_root / custom_fixed_point (SPEC §3): implicit derivatives in forward and reverse mode
against closed forms, kwargs / has_aux / pytrees, jit / vmap, and bad inputs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spiraljax.implicit import custom_fixed_point, custom_root
from spiraljax.implicit.solvers import SolverInfo

RNG = np.random.default_rng(0)
X = RNG.normal(size=(30, 4))
Y = RNG.normal(size=30)
XV = RNG.normal(size=(15, 4))
YV = RNG.normal(size=15)
L_MAX = float(np.linalg.eigvalsh(X.T @ X).max())


def train_loss(w, theta, X, y):
    """½‖Xw − y‖² + ½ Σ exp(θ) w² (θ scalar or per feature)."""
    return 0.5 * jnp.sum((X @ w - y) ** 2) + 0.5 * jnp.sum(jnp.exp(theta) * w**2)


optimality = jax.grad(train_loss)


def exact_ridge(init, theta, X, y):
    """Exact solve in a while_loop-free way (the decorator must not differentiate it)."""
    A = X.T @ X + jnp.diag(jnp.broadcast_to(jnp.exp(theta), (X.shape[1],)))
    return jnp.linalg.solve(A, X.T @ y)


def gd_ridge(init, theta, X, y, steps=2000):
    """Gradient descent in a lax.while_loop — reverse mode through it would raise."""
    lr = 1.0 / (L_MAX + float(np.exp(3.0)))

    def cond(c):
        k, w = c
        return (k < steps) & (jnp.linalg.norm(optimality(w, theta, X, y)) > 1e-13)

    def body(c):
        k, w = c
        return k + 1, w - lr * optimality(w, theta, X, y)

    return jax.lax.while_loop(cond, body, (0, init))[1]


def closed_form(theta):
    """w*(θ) and dw*/dθ = −A⁻¹ diag(λ w*) (per-feature θ) in float64 numpy."""
    lam = np.broadcast_to(np.exp(theta), (4,))
    A = X.T @ X + np.diag(lam)
    w = np.linalg.solve(A, X.T @ Y)
    jac = -np.linalg.solve(A, np.diag(lam * w))
    return w, jac


def val_loss(w):
    return 0.5 * jnp.sum((jnp.asarray(XV) @ w - YV) ** 2)


SOLVES = {
    "cg": {"tol": 1e-13},
    "normal_cg": {"tol": 1e-13},
    "gmres": {"tol": 1e-13},
    "bicgstab": {"tol": 1e-13},
    "neumann": {"tol": 1e-13, "alpha": 1.0 / (L_MAX + 20.0), "maxiter": 50000},
}


@pytest.mark.parametrize("solve", sorted(SOLVES))
def test_reverse_and_forward_mode_match_closed_form(solve):
    ridge = custom_root(optimality, solve=solve, solve_options=SOLVES[solve])(exact_ridge)
    theta = jnp.asarray([0.1, -0.5, 0.7, 2.0])
    w_of = lambda t: ridge(jnp.zeros(4), t, jnp.asarray(X), jnp.asarray(Y))  # noqa: E731
    _, jac = closed_form(np.asarray(theta))
    rtol = 1e-6 if solve == "neumann" else 1e-9
    jac_r, jac_f = jax.jit(lambda t: (jax.jacrev(w_of)(t), jax.jacfwd(w_of)(t)))(theta)
    np.testing.assert_allclose(np.asarray(jac_r), jac, rtol=rtol, atol=1e-12)
    np.testing.assert_allclose(np.asarray(jac_f), jac, rtol=rtol, atol=1e-12)


def test_solver_is_never_differentiated():
    ridge = custom_root(optimality, solve_options={"tol": 1e-13})(gd_ridge)
    theta = jnp.asarray(0.3)
    f = lambda t: val_loss(ridge(jnp.zeros(4), t, jnp.asarray(X), jnp.asarray(Y)))  # noqa: E731
    # Without custom_root, reverse mode through the while_loop is an error:
    with pytest.raises(ValueError, match="while_loop"):
        jax.grad(lambda t: val_loss(gd_ridge(jnp.zeros(4), t, jnp.asarray(X), jnp.asarray(Y))))(
            theta
        )
    w, jac = closed_form(0.3)
    ref = (XV.T @ (XV @ w - YV)) @ jac.sum(axis=1)
    np.testing.assert_allclose(float(jax.grad(f)(theta)), ref, rtol=1e-9)
    np.testing.assert_allclose(float(jax.jit(jax.grad(f))(theta)), ref, rtol=1e-9)


def test_kwargs_static_options_and_grad_wrt_kwarg():
    def solver(init, theta, X, y, steps=10, method="exact"):
        assert isinstance(steps, int) and method == "exact"  # static config stays Python
        return exact_ridge(init, theta, X, y)

    ridge = custom_root(optimality, solve_options={"tol": 1e-13})(solver)
    theta = jnp.asarray(0.2)

    def w_of_y(y):
        return ridge(jnp.zeros(4), theta, jnp.asarray(X), y=y, steps=5, method="exact")

    jac = jax.jit(jax.jacrev(w_of_y))(jnp.asarray(Y))
    A = X.T @ X + np.exp(0.2) * np.eye(4)
    np.testing.assert_allclose(np.asarray(jac), np.linalg.solve(A, X.T), rtol=1e-9, atol=1e-12)
    jac_fwd = jax.jacfwd(w_of_y)(jnp.asarray(Y))
    np.testing.assert_allclose(np.asarray(jac_fwd), np.asarray(jac), rtol=1e-9, atol=1e-12)


def test_has_aux_passes_aux_with_zero_derivative():
    def solver(init, theta, X, y):
        w = exact_ridge(init, theta, X, y)
        return w, {"iterations": jnp.asarray(7), "norm": jnp.linalg.norm(w)}

    ridge = custom_root(optimality, has_aux=True, solve_options={"tol": 1e-13})(solver)

    def f(t):
        w, aux = ridge(jnp.zeros(4), t, jnp.asarray(X), jnp.asarray(Y))
        return val_loss(w) + 0.0 * aux["norm"], aux

    (_v, aux), g = jax.value_and_grad(f, has_aux=True)(jnp.asarray(0.4))
    assert int(aux["iterations"]) == 7
    w, jac = closed_form(0.4)
    np.testing.assert_allclose(float(g), (XV.T @ (XV @ w - YV)) @ jac.sum(1), rtol=1e-9)
    _, tangent, _ = jax.jvp(f, (jnp.asarray(0.4),), (jnp.asarray(1.0),), has_aux=True)
    np.testing.assert_allclose(float(tangent), float(g), rtol=1e-9)


def test_pytree_params_and_pytree_hyperparameters():
    """Ridge with an unpenalised intercept: params {'w','b'}, hyperparameters {'log_l2'}."""

    def loss(p, h, X, y):
        r = X @ p["w"] + p["b"] - y
        return 0.5 * jnp.sum(r**2) + 0.5 * jnp.exp(h["log_l2"]) * jnp.sum(p["w"] ** 2)

    def solver(init, h, X, y):
        Z = jnp.concatenate([X, jnp.ones((X.shape[0], 1))], axis=1)
        reg = jnp.diag(jnp.concatenate([jnp.full(X.shape[1], jnp.exp(h["log_l2"])), jnp.zeros(1)]))
        sol = jnp.linalg.solve(Z.T @ Z + reg, Z.T @ y)
        return {"w": sol[:-1], "b": sol[-1]}

    fit = custom_root(jax.grad(loss), solve="gmres", solve_options={"tol": 1e-13})(solver)
    init = {"w": jnp.zeros(4), "b": jnp.zeros(())}

    def outer(h):
        p = fit(init, h, jnp.asarray(X), jnp.asarray(Y))
        return 0.5 * jnp.sum((XV @ p["w"] + p["b"] - YV) ** 2)

    def outer_exact(log_l2):
        Z = np.concatenate([X, np.ones((30, 1))], axis=1)
        reg = np.diag(np.r_[np.full(4, np.exp(log_l2)), 0.0])
        sol = np.linalg.solve(Z.T @ Z + reg, Z.T @ Y)
        return 0.5 * np.sum((XV @ sol[:-1] + sol[-1] - YV) ** 2)

    h = {"log_l2": jnp.asarray(0.5)}
    g = jax.grad(outer)(h)
    eps = 1e-5
    fd = (outer_exact(0.5 + eps) - outer_exact(0.5 - eps)) / (2 * eps)
    np.testing.assert_allclose(float(g["log_l2"]), fd, rtol=1e-7)


def test_vmap_and_second_order():
    ridge = custom_root(optimality, solve_options={"tol": 1e-13})(exact_ridge)

    def f(t):
        return val_loss(ridge(jnp.zeros(4), t, jnp.asarray(X), jnp.asarray(Y)))

    thetas = jnp.asarray([-1.0, 0.0, 1.5])
    grads = jax.jit(jax.vmap(jax.grad(f)))(thetas)
    for t, g in zip(np.asarray(thetas), np.asarray(grads), strict=True):
        w, jac = closed_form(t)
        np.testing.assert_allclose(g, (XV.T @ (XV @ w - YV)) @ jac.sum(1), rtol=1e-9)

    def grad_exact(t):
        w, jac = closed_form(t)
        return (XV.T @ (XV @ w - YV)) @ jac.sum(1)

    eps = 1e-5
    fd = (grad_exact(0.3 + eps) - grad_exact(0.3 - eps)) / (2 * eps)
    np.testing.assert_allclose(float(jax.hessian(f)(jnp.asarray(0.3))), fd, rtol=1e-6)


def test_float32():
    ridge = custom_root(optimality, solve_options={"tol": 1e-6})(exact_ridge)
    Xf, Yf = jnp.asarray(X, jnp.float32), jnp.asarray(Y, jnp.float32)

    def f(t):
        w = ridge(jnp.zeros(4, jnp.float32), t, Xf, Yf)
        return 0.5 * jnp.sum((jnp.asarray(XV, jnp.float32) @ w - jnp.asarray(YV, jnp.float32)) ** 2)

    # Full float32 matmuls (GPUs default to TF32, which limits any float32 result to ~1e-3).
    with jax.default_matmul_precision("highest"):
        g = jax.grad(f)(jnp.asarray(0.3, jnp.float32))
    assert g.dtype == jnp.float32
    w, jac = closed_form(0.3)
    np.testing.assert_allclose(float(g), (XV.T @ (XV @ w - YV)) @ jac.sum(1), rtol=1e-4)


def test_callable_solve_plugs_in():
    calls = []

    def my_solve(matvec, b, tol):
        calls.append(tol)
        return jax.scipy.sparse.linalg.gmres(matvec, b, tol=tol, atol=0.0)[0]

    def my_solve_with_info(matvec, b):
        x = jax.scipy.sparse.linalg.cg(matvec, b, tol=1e-13)[0]
        return x, SolverInfo(jnp.asarray(0), jnp.asarray(0.0), jnp.asarray(True))

    w, jac = closed_form(0.3)
    ref = (XV.T @ (XV @ w - YV)) @ jac.sum(1)
    for solve, opts in ((my_solve, {"tol": 1e-13}), (my_solve_with_info, None)):
        ridge = custom_root(optimality, solve=solve, solve_options=opts)(exact_ridge)
        g = jax.grad(lambda t: val_loss(ridge(jnp.zeros(4), t, jnp.asarray(X), jnp.asarray(Y))))(
            jnp.asarray(0.3)
        )
        np.testing.assert_allclose(float(g), ref, rtol=1e-8)
    assert calls and set(calls) == {1e-13}  # traced for the solve and its transpose


def test_custom_fixed_point_gradient_step_and_nonsymmetric_map():
    eta = 1.0 / (L_MAX + 10.0)

    def T(w, theta, X, y):
        return w - eta * optimality(w, theta, X, y)

    for solve in ("gmres", "cg"):
        ridge = custom_fixed_point(T, solve=solve, solve_options={"tol": 1e-13})(exact_ridge)
        jac = jax.jacrev(lambda t: ridge(jnp.zeros(4), t, jnp.asarray(X), jnp.asarray(Y)))(
            jnp.asarray(0.3)
        )
        np.testing.assert_allclose(np.asarray(jac), closed_form(0.3)[1].sum(1), rtol=1e-9)

    # x = tanh(W x + u): a non-symmetric contraction (‖W‖ < 1); derivative vs finite differences.
    W = jnp.asarray(RNG.normal(size=(5, 5)) * 0.15)

    def Tn(x, u):
        return jnp.tanh(W @ x + u)

    def iterate(x0, u):
        return jax.lax.fori_loop(0, 200, lambda _, x: Tn(x, u), x0)

    fp = custom_fixed_point(Tn, solve_options={"tol": 1e-13})(iterate)
    u0 = jnp.asarray(RNG.normal(size=5))
    jac_r, jac_f = jax.jit(
        lambda u: (
            jax.jacrev(lambda v: fp(jnp.zeros(5), v))(u),
            jax.jacfwd(lambda v: fp(jnp.zeros(5), v))(u),
        )
    )(u0)
    eps = 1e-6
    shifted = jax.jit(jax.vmap(lambda e: iterate(jnp.zeros(5), u0 + e)))
    fd = ((shifted(eps * jnp.eye(5)) - shifted(-eps * jnp.eye(5))) / (2 * eps)).T
    np.testing.assert_allclose(np.asarray(jac_r), np.asarray(fd), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(np.asarray(jac_f), np.asarray(fd), rtol=1e-7, atol=1e-9)


def test_bad_inputs():
    with pytest.raises(ValueError, match="solve='lu'"):
        custom_root(optimality, solve="lu")
    with pytest.raises(ValueError, match="solve=3"):
        custom_root(optimality, solve=3)
    with pytest.raises(ValueError, match="alpha=0"):
        custom_root(optimality, solve="neumann", solve_options={"alpha": 0.0})
    with pytest.raises(ValueError, match="maxiter=0"):
        custom_root(optimality, solve="cg", solve_options={"maxiter": 0})
    with pytest.raises(ValueError, match="optimality_fn"):
        custom_root(None)
    with pytest.raises(ValueError, match="fixed_point_fn"):
        custom_fixed_point(1.0)

    # An optimality function that is not square in params is reported when differentiating.
    bad = custom_root(lambda w, t: jnp.concatenate([w, w]) * t)(lambda init, t: init)
    with pytest.raises(ValueError, match="optimality_fn returned structure"):
        jax.grad(lambda t: jnp.sum(bad(jnp.ones(3), t)))(1.0)
    with pytest.raises(ValueError, match="init_params"):
        custom_root(optimality)(exact_ridge)()
