"""SpiralK: the heuristics language, SoftLogic search, consensus and self-rewrite store.

* ``parse`` → ``Program``; ``Program.evaluate(rows=, cols=, k=, sg=, kind=)`` →
  ``Out`` (``hard`` mapping, ``soft`` rules whose condition held). Errors are
  ``SpiralKError`` with line, column and a caret excerpt.
* ``solve_soft`` — SoftLogic: finite-domain search over a caller-supplied domain
  (field → legal values) scored by soft rules and measured priors.
* ``consensus`` / ``decide`` — hard > best of {SoftLogic, tuned table
  (+``SPIRAL_HEUR_GEN_WEIGHT``), self-rewrite rules} > fallback, with ``.source``;
  ``format_decision`` prints the ``heur explain`` breakdown.
* ``wilson_interval``, ``ABTest``, ``HeurStore`` — self-rewrite.
* ``spiraljax.spiralk.config`` documents the environment variables.

This package imports nothing else from spiraljax and knows nothing of kernels.
"""

from .config import DEFAULT_GEN_WEIGHT, ENV_VARS, HeurConfig, default_heur_path, load_config
from .consensus import SOURCES, Decision, Scored, consensus, decide, format_decision
from .errors import SpiralKError, SpiralKWarning
from .nodes import BOOL_FIELDS, FIELD_ALIASES, FIELDS, FUNCTIONS, VARIABLES, format_value
from .parser import parse, parse_expression
from .program import Out, Program, SoftRule
from .rewrite import ABTest, HeurStore, wilson_interval
from .softlogic import Candidate, SoftResult, check_domain, score_assignment, solve_soft

__all__ = [
    "BOOL_FIELDS",
    "DEFAULT_GEN_WEIGHT",
    "ENV_VARS",
    "FIELDS",
    "FIELD_ALIASES",
    "FUNCTIONS",
    "SOURCES",
    "VARIABLES",
    "ABTest",
    "Candidate",
    "Decision",
    "HeurConfig",
    "HeurStore",
    "Out",
    "Program",
    "Scored",
    "SoftResult",
    "SoftRule",
    "SpiralKError",
    "SpiralKWarning",
    "check_domain",
    "consensus",
    "decide",
    "default_heur_path",
    "format_decision",
    "format_value",
    "load_config",
    "parse",
    "parse_expression",
    "score_assignment",
    "solve_soft",
    "wilson_interval",
]
