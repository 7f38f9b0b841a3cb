"""A Riemannian inner problem (SPEC §3 item 4): w on the Poincaré ball, optimised with
``spiraljax.optim.riemannian_sgd``; optimality = Riemannian gradient = 0.

Inner: the weighted Fréchet mean  w*(θ) = argmin_w Σ_k exp(θ_k) d(w, a_k)²  (strictly
geodesically convex on the ball, so the root of the Riemannian gradient is unique and interior);
outer: d(w*, target)². The implicit hypergradient is checked against central finite differences
of the outer loss (inner re-solved to 1e-13) and against unrolled differentiation."""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from spiraljax import optim
from spiraljax.geometry import poincare as pm
from spiraljax.implicit import implicit_hypergrad, unrolled_hypergrad

ANCHORS = jnp.asarray([[0.3, 0.1], [-0.4, 0.5], [0.2, -0.6]], jnp.float64)
TARGET = jnp.asarray([0.1, 0.4], jnp.float64)
K = -1.0


def inner_loss(w, theta):
    return jnp.sum(jnp.exp(theta) * pm.dist(w[None], ANCHORS, curvature=K) ** 2)


def outer_loss(w, theta):
    return pm.dist(w, TARGET, curvature=K) ** 2


def riemannian_gradient(w, theta):
    return pm.egrad2rgrad(w, jax.grad(inner_loss)(w, theta), curvature=K)


APPLY = functools.partial(optim.apply_updates, curvature=K)


def _implicit(theta):
    return implicit_hypergrad(
        outer_loss,
        inner_loss,
        theta,
        jnp.zeros(2, jnp.float64),
        optimizer=optim.riemannian_sgd(0.1, curvature=K),
        maxiter=5000,
        tol=1e-13,
        optimality_fn=riemannian_gradient,
        apply_updates=APPLY,
        solve="cg",
        solve_options={"tol": 1e-12},
    )


def test_poincare_inner_problem_hypergradient():
    theta = jnp.asarray([0.2, -0.3, 0.5], jnp.float64)
    eps = 1e-4
    # One compiled, vmapped call: θ, −θ, and θ ± ε e_k for central finite differences.
    batch = jnp.concatenate(
        [jnp.stack([theta, -theta]), theta + eps * jnp.eye(3), theta - eps * jnp.eye(3)]
    )
    res = jax.jit(jax.vmap(_implicit))(batch)
    assert bool(jnp.all(res.info.converged))
    assert bool(jnp.all(jnp.linalg.norm(res.params, axis=-1) < 1.0))  # inside the ball
    # Optimality: the Riemannian gradient vanishes at the returned points.
    rg = jax.vmap(riemannian_gradient)(res.params, batch)
    assert float(jnp.max(jnp.abs(rg))) <= 1e-12

    fd = (res.value[2:5] - res.value[5:8]) / (2 * eps)
    np.testing.assert_allclose(np.asarray(res.grad[0]), np.asarray(fd), rtol=1e-6, atol=1e-9)
    assert float(jnp.max(jnp.abs(res.grad[1] - res.grad[0]))) > 1e-3  # θ matters

    unrolled = jax.jit(
        lambda t: unrolled_hypergrad(
            outer_loss,
            inner_loss,
            t,
            jnp.zeros(2, jnp.float64),
            optimizer=optim.riemannian_sgd(0.1, curvature=K),
            steps=500,
            apply_updates=APPLY,
            optimality_fn=riemannian_gradient,
        )
    )(theta)
    np.testing.assert_allclose(np.asarray(unrolled.grad), np.asarray(res.grad[0]), rtol=1e-8)
