"""Bad solver options raise ValueError naming the option, at decoration (issue 19, item 6)."""

import jax.numpy as jnp
import pytest

from spiraljax.implicit import custom_fixed_point, custom_root
from spiraljax.implicit import solvers as S

NAMES = sorted(S.SOLVERS)
BAD = {
    "tol": ["1e-5", -1.0, float("nan"), True, [1e-5]],
    "atol": ["0", -1e-3, float("inf")],
    "maxiter": ["5", 0, 2.5, True],
    "restart": ["3", 0, True],
    "alpha": ["0.1", 0.0, -1.0, float("nan")],
    "guard": ["no", 3],
}


def _cases():
    for name in NAMES:
        for option, values in BAD.items():
            for value in values:
                yield name, option, value


def _optimality(x, theta):
    return x - theta


@pytest.mark.parametrize(("name", "option", "value"), list(_cases()))
@pytest.mark.parametrize("decorator", [custom_root, custom_fixed_point])
def test_bad_option_values_and_unknown_names_raise_at_decoration(decorator, name, option, value):
    import inspect

    params = inspect.signature(S.SOLVERS[name]).parameters
    fn = _optimality if decorator is custom_root else (lambda x, theta: theta)
    if option not in params:
        match = f"unknown option '{option}'"
    else:
        match = option
    with pytest.raises(ValueError, match=match):
        decorator(fn, solve=name, solve_options={option: value})


@pytest.mark.parametrize("name", NAMES)
def test_unknown_option_is_rejected_before_any_derivative(name):
    with pytest.raises(ValueError, match=r"unknown option 'bogus'.*allowed"):
        custom_root(_optimality, solve=name, solve_options={"bogus": 1})


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("option", ["tol", "maxiter", "guard"])
def test_solvers_reject_bad_values_directly(name, option):
    kwargs = {"tol": "1e-5", "maxiter": "5", "guard": 3}
    with pytest.raises(ValueError, match=option):
        S.SOLVERS[name](jnp.eye(2), jnp.ones(2), **{option: kwargs[option]})


def test_good_options_still_solve():
    A = jnp.array([[2.0, 0.0], [0.0, 4.0]])
    for name in NAMES:
        opts = {"tol": 1e-6, "maxiter": 200}
        if name == "neumann":
            opts["alpha"] = 0.2
        S.check_solver_options(name, opts)
        _, info = S.SOLVERS[name](A, jnp.ones(2), **opts)
        assert bool(info.converged), name
