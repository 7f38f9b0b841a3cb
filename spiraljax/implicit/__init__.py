"""Implicit (CG / Neumann) and unrolled hypergradients (see docs/concepts/implicit.md).

* ``spiraljax.implicit.solvers`` (also ``spiraljax.solvers``) — matrix-free linear solvers
  over pytrees returning ``(x, SolverInfo)``: ``cg``, ``normal_cg``, ``gmres``, ``bicgstab``,
  ``neumann``.
* ``custom_root``, ``custom_fixed_point`` — implicit differentiation of root /
  fixed-point solvers (forward and reverse mode; the solver is never differentiated).
* ``implicit_hypergrad``, ``unrolled_hypergrad`` — bilevel hypergradients.
"""

from spiraljax.implicit import solvers
from spiraljax.implicit.bilevel import (
    HypergradResult,
    implicit_hypergrad,
    run_inner_optimizer,
    unrolled_hypergrad,
)
from spiraljax.implicit.root import custom_fixed_point, custom_root, make_linear_solve
from spiraljax.implicit.solvers import (
    SolverInfo,
    bicgstab,
    cg,
    get_solver,
    gmres,
    neumann,
    normal_cg,
)

__all__ = [
    "HypergradResult",
    "SolverInfo",
    "bicgstab",
    "cg",
    "custom_fixed_point",
    "custom_root",
    "get_solver",
    "gmres",
    "implicit_hypergrad",
    "make_linear_solve",
    "neumann",
    "normal_cg",
    "run_inner_optimizer",
    "solvers",
    "unrolled_hypergrad",
]
