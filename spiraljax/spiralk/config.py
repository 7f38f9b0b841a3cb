"""The SpiralK environment variables, read in one place.

=========================  ======================================================================
``SPIRAL_HEUR_K``          A SpiralK program applied at planning time. Its hard assignments win;
                           its ``soft(...)`` rules bias SoftLogic. Unset or blank: no program.
``SPIRAL_HEUR_SOFT``       ``1`` (default) use ``soft(...)`` rules (from ``SPIRAL_HEUR_K`` and the
                           heur file); ``0`` ignore them (hard rules, the tuned table, measured
                           priors and the fallback still apply). Any other value is an error.
``SPIRAL_HEUR_GEN_WEIGHT`` Bonus added to the generated (tuned) table's candidate in consensus,
                           a finite number ≥ 0; default ``0.10``.
``SPIRAL_HEUR_FILE``       The self-rewrite rule file; default ``~/.spiraljax/heur.kdsl``.
``SPIRAL_HEUR_ON_ERROR``   What a bad program, heur file or variable does at planning time:
                           ``raise`` (default) raises the error (``SpiralKError`` with line,
                           column and caret excerpt, or ``ValueError``); ``warn`` emits a
                           ``SpiralKWarning`` *and* logs an error on the
                           ``spiraljax.spiralk`` logger with the full reason, then plans without
                           the bad piece. Nothing is ever ignored silently.
``SPIRAL_HEUR_TABLE``      A tuned table (JSON, written by ``spiraljax tune``) used instead of the
                           one shipped for the detected device class.
=========================  ======================================================================

Every ``SPIRAL_HEUR_*`` variable is read here and nowhere else.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import SpiralKError, SpiralKWarning
from .parser import parse
from .program import Program

__all__ = [
    "DEFAULT_GEN_WEIGHT",
    "ENV_VARS",
    "TABLE_ENV",
    "HeurConfig",
    "default_heur_path",
    "env_snapshot",
    "gen_weight_from_env",
    "has_program",
    "load_config",
    "report_problem",
    "table_path_from_env",
]

DEFAULT_GEN_WEIGHT = 0.10
#: the tuned-table override (read by ``spiraljax.kernels.table``).
TABLE_ENV = "SPIRAL_HEUR_TABLE"
ENV_VARS = (
    "SPIRAL_HEUR_K",
    "SPIRAL_HEUR_SOFT",
    "SPIRAL_HEUR_GEN_WEIGHT",
    "SPIRAL_HEUR_FILE",
    "SPIRAL_HEUR_ON_ERROR",
    TABLE_ENV,
)
_ON_ERROR = ("raise", "warn")
logger = logging.getLogger("spiraljax.spiralk")


@dataclass(frozen=True)
class HeurConfig:
    """The environment, validated. ``problems`` lists what was dropped in warn mode."""

    program: Program | None
    soft: bool
    gen_weight: float
    heur_file: Path
    on_error: str
    problems: tuple[str, ...] = ()


def default_heur_path(environ: Mapping[str, str] | None = None) -> Path:
    """``SPIRAL_HEUR_FILE`` if set and non-empty, else ``~/.spiraljax/heur.kdsl``."""
    env = os.environ if environ is None else environ
    value = env.get("SPIRAL_HEUR_FILE", "").strip()
    return Path(value).expanduser() if value else Path.home() / ".spiraljax" / "heur.kdsl"


def table_path_from_env(environ: Mapping[str, str] | None = None) -> Path | None:
    """``SPIRAL_HEUR_TABLE`` as a path, or ``None`` when unset or blank."""
    env = os.environ if environ is None else environ
    value = env.get(TABLE_ENV, "").strip()
    return Path(value).expanduser() if value else None


def has_program(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``SPIRAL_HEUR_K`` holds a program (set and not blank)."""
    env = os.environ if environ is None else environ
    return bool(env.get("SPIRAL_HEUR_K", "").strip())


def env_snapshot(environ: Mapping[str, str] | None = None) -> tuple:
    """The raw values of ``ENV_VARS`` (a cache key: planning reruns when one changes)."""
    env = os.environ if environ is None else environ
    return tuple(env.get(v) for v in ENV_VARS)


def on_error_mode(environ: Mapping[str, str] | None = None, override: str | None = None) -> str:
    """``override`` if given, else ``SPIRAL_HEUR_ON_ERROR`` (default ``"raise"``)."""
    env = os.environ if environ is None else environ
    name = "on_error" if override is not None else "SPIRAL_HEUR_ON_ERROR"
    raw = override if override is not None else env.get("SPIRAL_HEUR_ON_ERROR", "raise")
    mode = str(raw).strip().lower() or "raise"
    if mode not in _ON_ERROR:
        raise ValueError(f"{name}={raw!r} must be one of {_ON_ERROR}")
    return mode


def report_problem(error: Exception, on_error: str, what: str) -> str:
    """Raise ``error`` (``on_error="raise"``) or warn loudly and return the reason."""
    if on_error == "raise":
        raise error
    reason = f"{what} ignored (SPIRAL_HEUR_ON_ERROR=warn): {error}"
    logger.error("%s", reason)
    warnings.warn(reason, SpiralKWarning, stacklevel=3)
    return reason


def gen_weight_from_env(environ: Mapping[str, str] | None = None) -> float:
    """``SPIRAL_HEUR_GEN_WEIGHT`` (default 0.10); ``ValueError`` unless finite and ≥ 0."""
    env = os.environ if environ is None else environ
    raw = env.get("SPIRAL_HEUR_GEN_WEIGHT", "").strip()
    if not raw:
        return DEFAULT_GEN_WEIGHT
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0.0):
        raise ValueError(f"SPIRAL_HEUR_GEN_WEIGHT={raw!r} must be a finite number ≥ 0")
    return value


@functools.lru_cache(maxsize=64)
def _parse_env(source: str) -> Program:
    return parse(source, filename="SPIRAL_HEUR_K")


def load_config(
    environ: Mapping[str, str] | None = None, *, on_error: str | None = None
) -> HeurConfig:
    """Read and validate the SpiralK environment variables (see module docstring).

    Args:
      environ: mapping to read instead of ``os.environ`` (tests, tools).
      on_error: ``"raise"`` or ``"warn"``; overrides ``SPIRAL_HEUR_ON_ERROR``.

    Raises:
      SpiralKError: ``SPIRAL_HEUR_K`` does not parse (in raise mode).
      ValueError: a malformed variable (in raise mode), or a bad ``SPIRAL_HEUR_ON_ERROR``.
    """
    env = os.environ if environ is None else environ
    mode = on_error_mode(env, on_error)
    problems: list[str] = []

    program = None
    source = env.get("SPIRAL_HEUR_K")
    if source is not None and source.strip():
        try:
            program = _parse_env(source)
        except SpiralKError as exc:
            problems.append(report_problem(exc, mode, "SPIRAL_HEUR_K"))

    soft = True
    raw = env.get("SPIRAL_HEUR_SOFT", "1").strip()
    if raw in ("", "1"):
        soft = True
    elif raw == "0":
        soft = False
    else:
        err = ValueError(f"SPIRAL_HEUR_SOFT={raw!r} must be '1' or '0'")
        problems.append(report_problem(err, mode, "SPIRAL_HEUR_SOFT"))

    try:
        gen_weight = gen_weight_from_env(env)
    except ValueError as err:
        problems.append(report_problem(err, mode, "SPIRAL_HEUR_GEN_WEIGHT"))
        gen_weight = DEFAULT_GEN_WEIGHT

    return HeurConfig(
        program=program,
        soft=soft,
        gen_weight=gen_weight,
        heur_file=default_heur_path(env),
        on_error=mode,
        problems=tuple(problems),
    )
