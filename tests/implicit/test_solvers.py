"""Linear solvers (SPEC §3): accuracy vs numpy.linalg.solve, honest info, pytrees, jit/vmap,
matrix-free operation on a 10⁶-dimensional pytree, and bad inputs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spiraljax.implicit import solvers as S

N = 24


def _spd(rng, n, cond):
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    eig = np.logspace(0, -np.log10(cond), n)
    return (q * eig) @ q.T


def _systems():
    rng = np.random.default_rng(0)
    spd = _spd(rng, N, 1e2)
    nonsym = np.eye(N) * 3.0 + rng.normal(size=(N, N)) / np.sqrt(N)
    ill = _spd(rng, N, 1e6)
    b = rng.normal(size=N)
    return {"spd": spd, "nonsym": nonsym, "ill": ill}, b


SYSTEMS, B = _systems()

# Which solver applies to which system class (CG and Neumann need SPD; Neumann also needs
# a modest condition number to converge in a reasonable number of terms).
CASES = [
    ("cg", "spd"),
    ("cg", "ill"),
    ("normal_cg", "spd"),
    ("normal_cg", "nonsym"),
    ("gmres", "spd"),
    ("gmres", "nonsym"),
    ("gmres", "ill"),
    ("bicgstab", "spd"),
    ("bicgstab", "nonsym"),
    ("bicgstab", "ill"),
    ("neumann", "spd"),
]


def _options(solver, system, dtype):
    tol = 1e-12 if dtype == np.float64 else 1e-5
    opts = {"tol": tol}
    if solver == "neumann":
        opts.update(alpha=1.0 / np.linalg.norm(SYSTEMS[system], 2), maxiter=20000)
    if solver == "normal_cg" and system == "ill":
        opts["maxiter"] = 4000
    return opts


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("solver", "system"), CASES)
def test_solver_matches_numpy(solver, system, dtype):
    A = SYSTEMS[system]
    ref = np.linalg.solve(A, B)
    opts = _options(solver, system, dtype)
    fn = S.get_solver(solver)
    Aj, bj = jnp.asarray(A, dtype), jnp.asarray(B, dtype)
    x, info = jax.jit(lambda a, b: fn(lambda v: a @ v, b, **opts))(Aj, bj)
    assert x.dtype == dtype
    cond = np.linalg.cond(A)
    eps = np.finfo(dtype).eps
    # Forward error bound: cond(A) · (relative residual), with a floor at rounding level.
    rel_res = float(np.linalg.norm(B - A @ np.asarray(x, np.float64)) / np.linalg.norm(B))
    bound = cond * max(rel_res, 10 * eps) * 10
    err = np.linalg.norm(np.asarray(x, np.float64) - ref) / np.linalg.norm(ref)
    assert err <= bound, (err, bound)
    if dtype == np.float64 and system != "ill":
        assert err <= 1e-9
    if dtype == np.float32 and system != "ill":
        assert err <= 1e-3
    # Honest info: the residual is the true one of the returned x (recomputed in numpy).
    true_res = np.linalg.norm(
        np.asarray(bj, np.float64) - np.asarray(Aj, np.float64) @ np.asarray(x, np.float64)
    )
    if solver == "normal_cg":
        At = np.asarray(Aj, np.float64).T
        true_res = np.linalg.norm(At @ (np.asarray(bj, np.float64) - np.asarray(Aj) @ x))
    # The solver evaluates the residual in `dtype`: rounding error ~ n·eps·‖A‖·‖x‖.
    slack = N * eps * np.linalg.norm(A, 2) * np.linalg.norm(np.asarray(x, np.float64))
    np.testing.assert_allclose(float(info.residual), true_res, rtol=1e-3, atol=slack)
    assert bool(info.converged) == bool(
        float(info.residual) <= opts["tol"] * _rhs_norm(solver, Aj, bj)
    )
    assert 1 <= int(info.iterations)


def _rhs_norm(solver, A, b):
    if solver == "normal_cg":
        return float(jnp.linalg.norm(A.T @ b))
    return float(jnp.linalg.norm(b))


@pytest.mark.parametrize("solver", ["cg", "gmres", "bicgstab", "normal_cg", "neumann"])
def test_nonconverged_solve_says_so(solver):
    A = jnp.asarray(SYSTEMS["ill"])
    b = jnp.asarray(B)
    opts = {"tol": 1e-12, "maxiter": 2}
    if solver == "neumann":
        opts["alpha"] = 1.0
    x, info = S.get_solver(solver)(A, b, **opts)
    assert not bool(info.converged)
    assert int(info.iterations) <= 2
    r = np.asarray(b) - np.asarray(A) @ np.asarray(x)
    if solver == "normal_cg":
        r = np.asarray(A).T @ r
    np.testing.assert_allclose(float(info.residual), np.linalg.norm(r), rtol=1e-8)
    assert float(info.residual) > 1e-12 * np.linalg.norm(B)


def test_neumann_diverges_honestly_when_not_contractive():
    A = jnp.asarray(SYSTEMS["spd"])
    alpha = 3.0 / np.linalg.norm(SYSTEMS["spd"], 2)  # ρ(I − αA) = 2 > 1
    _x, info = S.neumann(A, jnp.asarray(B), alpha=alpha, maxiter=50, tol=1e-8)
    assert not bool(info.converged)
    assert int(info.iterations) == 50
    assert float(info.residual) > np.linalg.norm(B)


def test_neumann_series_matches_formula():
    """x_K = Σ_{j=0}^{K} (I − αA)^j α b exactly (tol=0 forces K = maxiter terms)."""
    A = SYSTEMS["spd"]
    alpha, K = 0.3, 7
    M = np.eye(N) - alpha * A
    ref = sum(np.linalg.matrix_power(M, j) @ (alpha * B) for j in range(K + 1))
    x, info = S.neumann(jnp.asarray(A), jnp.asarray(B), alpha=alpha, maxiter=K, tol=0.0)
    np.testing.assert_allclose(np.asarray(x), ref, rtol=1e-12, atol=1e-14)
    assert int(info.iterations) == K


def _block_operator(mats):
    def matvec(tree):
        return {k: mats[k] @ v for k, v in tree.items()}

    return matvec


@pytest.mark.parametrize("solver", ["cg", "normal_cg", "gmres", "bicgstab", "neumann"])
def test_pytree_rhs_and_x0(solver):
    rng = np.random.default_rng(1)
    mats = {"a": jnp.asarray(_spd(rng, 5, 10.0)), "b": jnp.asarray(_spd(rng, 3, 10.0))}
    rhs = {"a": jnp.asarray(rng.normal(size=5)), "b": jnp.asarray(rng.normal(size=3))}
    opts = {"tol": 1e-12}
    if solver == "neumann":
        opts.update(alpha=0.9, maxiter=2000)
    else:
        opts["x0"] = {"a": jnp.ones(5), "b": jnp.ones(3)}
    x, info = S.get_solver(solver)(_block_operator(mats), rhs, **opts)
    assert set(x) == {"a", "b"}
    for k in ("a", "b"):
        ref = np.linalg.solve(np.asarray(mats[k]), np.asarray(rhs[k]))
        np.testing.assert_allclose(np.asarray(x[k]), ref, rtol=1e-9, atol=1e-11)
    assert bool(info.converged)


@pytest.mark.parametrize("solver", ["cg", "gmres", "bicgstab", "neumann"])
def test_vmap_over_rhs_and_operator(solver):
    rng = np.random.default_rng(2)
    As = jnp.asarray(np.stack([_spd(rng, 6, 5.0) for _ in range(3)]))
    bs = jnp.asarray(rng.normal(size=(3, 6)))
    opts = {"tol": 1e-12}
    if solver == "neumann":
        opts.update(alpha=0.9, maxiter=2000)
    fn = S.get_solver(solver)
    xs, infos = jax.jit(jax.vmap(lambda a, b: fn(lambda v: a @ v, b, **opts)))(As, bs)
    ref = np.linalg.solve(np.asarray(As), np.asarray(bs)[..., None])[..., 0]
    np.testing.assert_allclose(np.asarray(xs), ref, rtol=1e-9, atol=1e-11)
    assert infos.converged.shape == (3,) and bool(jnp.all(infos.converged))


def test_normal_cg_least_squares_non_square():
    rng = np.random.default_rng(3)
    A = rng.normal(size=(12, 5))
    b = rng.normal(size=12)
    x, info = S.normal_cg(jnp.asarray(A), jnp.asarray(b), tol=1e-12)
    ref = np.linalg.lstsq(A, b, rcond=None)[0]
    np.testing.assert_allclose(np.asarray(x), ref, rtol=1e-9)
    assert x.shape == (5,) and bool(info.converged)
    # The same through a callable with x0 naming the input space.
    Aj = jnp.asarray(A)
    x2, _ = S.normal_cg(lambda v: Aj @ v, jnp.asarray(b), x0=jnp.zeros(5), tol=1e-12)
    np.testing.assert_allclose(np.asarray(x2), ref, rtol=1e-9)


def test_guard_is_applied_to_iterates():
    A = jnp.asarray(SYSTEMS["spd"])
    b = jnp.asarray(B)
    calls = []

    def zero_first(x):
        calls.append(1)
        return x.at[0].set(0.0)

    x, info = S.cg(A, b, tol=1e-12, guard=zero_first)
    assert calls and float(x[0]) == 0.0
    assert not bool(info.converged)  # the true solution has x[0] ≠ 0; info notices
    # A guard that only rewrites non-finite entries leaves a healthy solve unchanged.
    clean = lambda x: jnp.nan_to_num(x, nan=0.0, posinf=1e6, neginf=-1e6)  # noqa: E731
    for name in ("cg", "gmres", "bicgstab"):
        x1, _ = S.get_solver(name)(A, b, tol=1e-12)
        x2, i2 = S.get_solver(name)(A, b, tol=1e-12, guard=clean)
        np.testing.assert_allclose(np.asarray(x2), np.asarray(x1), rtol=1e-12)
        assert bool(i2.converged)


def test_guard_rescues_overflowing_neumann():
    """A saturating guard keeps a divergent Neumann series finite; info still says so."""
    A = jnp.asarray(SYSTEMS["spd"])
    sat = lambda x: jnp.clip(jnp.nan_to_num(x), -1e3, 1e3)  # noqa: E731
    x, info = S.neumann(A, jnp.asarray(B), alpha=50.0, maxiter=2000, tol=1e-8, guard=sat)
    assert bool(jnp.all(jnp.isfinite(x))) and float(jnp.max(jnp.abs(x))) <= 1e3
    assert not bool(info.converged)


# ------------------------------------------------------------------- 10⁶-dimensional pytree


def _stencil(tree):
    """SPD operator 4x − roll(x, 1) − roll(x, −1) per flattened leaf (spectrum in [2, 6])."""

    def op(v):
        f = v.reshape(-1)
        return (4.0 * f - jnp.roll(f, 1) - jnp.roll(f, -1)).reshape(v.shape)

    return jax.tree.map(op, tree)


@pytest.mark.parametrize(
    ("solver", "opts"),
    [("cg", {}), ("neumann", {"alpha": 1.0 / 6.0, "maxiter": 200}), ("bicgstab", {})],
)
def test_million_dimensional_pytree_operator(solver, opts):
    """A dense 10⁶ × 10⁶ matrix would need 8 TB: success means the solve is matrix-free."""
    key = jax.random.PRNGKey(0)
    k1, k2 = jax.random.split(key)
    b = {
        "w": jax.random.normal(k1, (1000, 500), jnp.float64),
        "v": jax.random.normal(k2, (500_000,), jnp.float64),
    }
    assert sum(leaf.size for leaf in jax.tree.leaves(b)) == 1_000_000
    fn = jax.jit(lambda b: S.get_solver(solver)(_stencil, b, tol=1e-8, **opts))
    compiled = fn.lower(b).compile()
    x, info = compiled(b)
    assert bool(info.converged)
    r = jax.tree.map(jnp.subtract, b, _stencil(x))
    rnorm = float(jnp.sqrt(sum(jnp.sum(leaf**2) for leaf in jax.tree.leaves(r))))
    bnorm = float(jnp.sqrt(sum(jnp.sum(leaf**2) for leaf in jax.tree.leaves(b))))
    assert rnorm <= 1e-8 * bnorm * 1.01
    np.testing.assert_allclose(float(info.residual), rnorm, rtol=1e-6)
    mem = compiled.memory_analysis()
    if mem is not None:  # a few vectors of 8 MB, nowhere near n² entries
        assert mem.temp_size_in_bytes < 64 * 8 * 1_000_000


# ------------------------------------------------------------------------------ bad inputs


def test_bad_inputs_raise_value_error_naming_argument():
    b = jnp.ones(3)
    with pytest.raises(ValueError, match="A has shape"):
        S.cg(jnp.ones((3, 4)), b)
    with pytest.raises(ValueError, match="A has shape"):
        S.cg(jnp.ones((3,)), b)
    with pytest.raises(ValueError, match="not square"):
        S.gmres(lambda x: jnp.concatenate([x, x]), b)
    with pytest.raises(ValueError, match="not square"):
        S.bicgstab(lambda x: {"a": x}, b)
    with pytest.raises(ValueError, match="x0"):
        S.cg(jnp.eye(3), b, x0=jnp.ones(4))
    with pytest.raises(ValueError, match="alpha=0"):
        S.neumann(jnp.eye(3), b, alpha=0.0)
    with pytest.raises(ValueError, match="alpha=-1"):
        S.neumann(jnp.eye(3), b, alpha=-1.0)
    for name in ("cg", "normal_cg", "gmres", "bicgstab", "neumann"):
        with pytest.raises(ValueError, match="maxiter=0"):
            S.get_solver(name)(jnp.eye(3), b, maxiter=0)
        with pytest.raises(ValueError, match="tol=-1"):
            S.get_solver(name)(jnp.eye(3), b, tol=-1.0)
    with pytest.raises(ValueError, match="restart=0"):
        S.gmres(jnp.eye(3), b, restart=0)
    with pytest.raises(ValueError, match="solve='lu'"):
        S.get_solver("lu")
    with pytest.raises(ValueError, match="A has shape"):
        S.normal_cg(jnp.ones((4, 3)), jnp.ones(3))
    with pytest.raises(ValueError, match="does not match b"):
        S.normal_cg(lambda x: jnp.concatenate([x, x]), jnp.ones(3))
    with pytest.raises(ValueError, match="A=str"):
        S.cg("eye", b)


def test_zero_rhs_and_exact_start():
    x, info = S.cg(jnp.eye(4) * 2.0, jnp.zeros(4), tol=1e-10)
    assert bool(info.converged) and int(info.iterations) == 0
    np.testing.assert_array_equal(np.asarray(x), 0.0)
    x, info = S.gmres(jnp.eye(4) * 2.0, jnp.ones(4), x0=jnp.full(4, 0.5), tol=1e-10)
    assert bool(info.converged) and int(info.iterations) == 0


# ------------------------------------------------------------------- properties at extremes

_SOLVE_JIT = {
    name: jax.jit(lambda A, b, name=name: S.get_solver(name)(lambda v: A @ v, b, tol=1e-10))
    for name in ("cg", "gmres", "bicgstab")
}


@settings(max_examples=15)
@given(
    seed=st.integers(0, 2**31 - 1),
    log_scale=st.floats(-12.0, 12.0),
    name=st.sampled_from(sorted(_SOLVE_JIT)),
)
def test_scale_invariance_over_extreme_magnitudes(seed, log_scale, name):
    """Solving (sA) x = s b gives the same x for s = 10^(−12…12); info stays honest."""
    rng = np.random.default_rng(seed)
    A = _spd(rng, 8, 50.0)
    b = rng.normal(size=8)
    s = 10.0**log_scale
    x, info = _SOLVE_JIT[name](jnp.asarray(s * A), jnp.asarray(s * b))
    np.testing.assert_allclose(np.asarray(x), np.linalg.solve(A, b), rtol=1e-7, atol=1e-9)
    assert bool(info.converged)
    assert float(info.residual) <= 1e-10 * s * np.linalg.norm(b)


@pytest.mark.parametrize("solver", ["cg", "normal_cg", "gmres", "bicgstab", "neumann"])
def test_nonfinite_rhs_terminates_and_reports_not_converged(solver):
    b = jnp.asarray(B).at[3].set(jnp.nan)
    _x, info = S.get_solver(solver)(jnp.asarray(SYSTEMS["spd"]), b, tol=1e-8, maxiter=50)
    assert not bool(info.converged)
    assert int(info.iterations) <= 50


def test_topos_guard_keeps_iterates_finite():
    """The topos saturation (SPEC §5) as a guard: a divergent Neumann series stays finite and
    bounded by the saturation, info still says not converged; a healthy CG is unchanged."""
    from spiraljax.topos import OpenCartesianTopos

    guard = OpenCartesianTopos(saturation=1e3).saturate_tree
    A = jnp.asarray(SYSTEMS["spd"])
    tree_b = {"u": jnp.asarray(B[:12]), "v": jnp.asarray(B[12:])}

    def op(t):
        y = A @ jnp.concatenate([t["u"], t["v"]])
        return {"u": y[:12], "v": y[12:]}

    x, info = S.neumann(op, tree_b, alpha=50.0, maxiter=500, tol=1e-8, guard=guard)
    leaves = jax.tree.leaves(x)
    assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in leaves)
    assert max(float(jnp.max(jnp.abs(leaf))) for leaf in leaves) <= 1e3
    assert not bool(info.converged)
    x1, _ = S.cg(op, tree_b, tol=1e-12)
    x2, i2 = S.cg(op, tree_b, tol=1e-12, guard=guard)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(np.asarray(a), np.asarray(b)), x1, x2)
    assert bool(i2.converged)
