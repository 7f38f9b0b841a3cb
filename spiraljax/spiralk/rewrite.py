"""Self-rewrite: Wilson-scored A/B adoption of soft rules and the heur file that keeps them.

The loop: a caller runs an A/B trial (incumbent plan vs a candidate plan on real
timings), feeds each outcome to ``ABTest``, and once the Wilson lower bound of the
candidate's win rate beats the baseline probability after ``min_trials`` trials, commits
the resulting ``soft(...)`` rules to a ``HeurStore``. Planning reads the store back
(``spiraljax.spiralk.decide``), so the win is applied from then on.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import math
import numbers
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from .config import default_heur_path
from .errors import error_at
from .nodes import (
    BOOL_FIELDS,
    FIELD_ALIASES,
    FIELDS,
    Soft,
    format_value,
    render_expr,
    render_statement,
)
from .parser import parse, parse_expression
from .program import Program

__all__ = ["ABTest", "HeurStore", "wilson_interval"]

HEADER = (
    "# spiraljax SpiralK heuristics: soft(...) rules adopted by self-rewrite (A/B trials,\n"
    "# Wilson score interval). Read back at planning time. Managed by HeurStore.\n"
)
PROVENANCE_PREFIX = "# rewrite "
MAX_BYTES = 64 * 1024 * 1024


def wilson_interval(successes: int, trials: int, *, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion.

    With p̂ = s/n::

        center = (p̂ + z²/(2n)) / (1 + z²/n)
        half   = z / (1 + z²/n) · sqrt(p̂(1 − p̂)/n + z²/(4n²))
        (lower, upper) = (center − half, center + half)

    (exactly 0 for s = 0 and 1 for s = n, as the formula gives in exact arithmetic).

    Reference: E. B. Wilson, "Probable inference, the law of succession, and statistical
    inference", JASA 22 (1927) 209–212. ``z = 1.96`` is the two-sided 95 % level.

    Raises:
      ValueError: ``trials < 1``, ``successes`` outside ``[0, trials]``, non-integer
        counts, or ``z`` not positive and finite.
    """
    for name, value in (("successes", successes), ("trials", trials)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ValueError(f"{name}={value!r} must be an integer")
    successes, trials = int(successes), int(trials)
    if trials < 1:
        raise ValueError(f"trials={trials} must be ≥ 1")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes={successes} must lie in [0, trials={trials}]")
    if isinstance(z, bool) or not isinstance(z, numbers.Real) or not (0 < z < math.inf):
        raise ValueError(f"z={z!r} must be a positive finite number")
    z = float(z)
    n = float(trials)
    p = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    center = (p + z2 / (2.0 * n)) / denom
    half = z / denom * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n))
    # center == half exactly when s = 0 (and center + half == 1 when s = n); rounding
    # would leave ±1e-17, so the exact values are returned there.
    lower = 0.0 if successes == 0 else max(0.0, center - half)
    upper = 1.0 if successes == trials else min(1.0, center + half)
    return lower, upper


def _check_assignment(name: str, assignment: Mapping) -> dict[str, int | bool]:
    if not isinstance(assignment, Mapping):
        raise ValueError(f"{name}={assignment!r} must be a mapping field -> value")
    out: dict[str, int | bool] = {}
    for key, value in assignment.items():
        field = FIELD_ALIASES.get(key, key)
        if field not in FIELDS:
            raise ValueError(f"{name} field {key!r} is not a SpiralK field {FIELDS}")
        if field in BOOL_FIELDS:
            if not isinstance(value, bool):
                raise ValueError(f"{name}[{key!r}]={value!r} must be a bool")
        elif isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ValueError(f"{name}[{key!r}]={value!r} must be an integer")
        out[field] = value if isinstance(value, bool) else int(value)
    return out


class ABTest:
    """A/B adoption of a candidate plan against the incumbent.

    Each trial says whether the candidate beat the incumbent. After ``min_trials``
    trials, the candidate is adopted when the Wilson lower bound (``z``) of its win rate
    exceeds ``baseline`` (0.5: "better than a coin flip"). The adopted rules are, for
    every field where the plans differ, ``soft(field, candidate_value, weight, cond)``
    and, with ``penalize_incumbent``, ``soft(field, incumbent_value, -weight, cond)`` — so
    successive adoptions accumulate like pairwise preferences and a later winner can
    displace an earlier one.

    Args:
      incumbent, candidate: field → value (integers; booleans for ``use_2ce``/``u2``).
      cond: SpiralK condition scoping the rule (e.g. ``"c > 8192 && k <= 128"``).
      weight: rule weight (> 0).
      min_trials, baseline, z: the adoption test.
    """

    def __init__(
        self,
        incumbent: Mapping,
        candidate: Mapping,
        *,
        cond: str = "true",
        weight: float = 1.0,
        min_trials: int = 8,
        baseline: float = 0.5,
        z: float = 1.96,
        penalize_incumbent: bool = True,
    ) -> None:
        self.incumbent = _check_assignment("incumbent", incumbent)
        self.candidate = _check_assignment("candidate", candidate)
        self.changed = tuple(
            f
            for f, v in self.candidate.items()
            if f not in self.incumbent or self.incumbent[f] != v
        )
        if not self.changed:
            raise ValueError(
                f"candidate={self.candidate} does not differ from incumbent={self.incumbent}"
            )
        if not isinstance(cond, str):
            raise ValueError(f"cond={cond!r} must be a SpiralK expression string")
        self.cond = render_expr(parse_expression(cond, filename="ABTest.cond"))
        if not (isinstance(weight, numbers.Real) and 0 < weight < math.inf):
            raise ValueError(f"weight={weight!r} must be positive and finite")
        if isinstance(min_trials, bool) or not isinstance(min_trials, numbers.Integral):
            raise ValueError(f"min_trials={min_trials!r} must be an integer")
        if min_trials < 1:
            raise ValueError(f"min_trials={min_trials} must be ≥ 1")
        if not (isinstance(baseline, numbers.Real) and 0.0 <= baseline < 1.0):
            raise ValueError(f"baseline={baseline!r} must lie in [0, 1)")
        wilson_interval(0, 1, z=z)  # validates z
        self.weight = float(weight)
        self.min_trials = int(min_trials)
        self.baseline = float(baseline)
        self.z = float(z)
        self.penalize_incumbent = bool(penalize_incumbent)
        self.wins = 0
        self.trials = 0

    def record(self, candidate_won: bool) -> str:
        """Add one trial outcome; returns ``status``."""
        if not isinstance(candidate_won, bool):
            raise ValueError(f"candidate_won={candidate_won!r} must be a bool")
        self.trials += 1
        self.wins += int(candidate_won)
        return self.status

    def record_timing(self, incumbent_seconds: float, candidate_seconds: float) -> str:
        """Add one timed trial: the candidate wins when strictly faster (ties favour the
        incumbent). Returns ``status``."""
        for name, t in (
            ("incumbent_seconds", incumbent_seconds),
            ("candidate_seconds", candidate_seconds),
        ):
            if isinstance(t, bool) or not isinstance(t, numbers.Real) or not (0 <= t < math.inf):
                raise ValueError(f"{name}={t!r} must be a finite non-negative time")
        return self.record(bool(candidate_seconds < incumbent_seconds))

    def interval(self) -> tuple[float, float]:
        """Wilson interval of the candidate's win rate ((0, 1) before any trial)."""
        if self.trials == 0:
            return 0.0, 1.0
        return wilson_interval(self.wins, self.trials, z=self.z)

    @property
    def status(self) -> str:
        """``"collecting"`` (< min_trials), ``"adopted"`` (lower bound > baseline) or
        ``"below_threshold"``."""
        if self.trials < self.min_trials:
            return "collecting"
        return "adopted" if self.interval()[0] > self.baseline else "below_threshold"

    def rules(self) -> list[str]:
        """The ``soft(...)`` statements to persist (empty unless adopted)."""
        if self.status != "adopted":
            return []
        w = format_value(self.weight)
        out = []
        for f in self.changed:
            out.append(f"soft({f}, {format_value(self.candidate[f])}, {w}, {self.cond});")
            if self.penalize_incumbent and f in self.incumbent:
                out.append(f"soft({f}, {format_value(self.incumbent[f])}, -{w}, {self.cond});")
        return out

    def provenance(self) -> dict:
        """JSON-ready record of the evidence behind ``rules``."""
        lower, upper = self.interval()
        return {
            "test": "ab-wilson",
            "wins": self.wins,
            "trials": self.trials,
            "wilson_lower": round(lower, 6),
            "wilson_upper": round(upper, 6),
            "z": self.z,
            "baseline": self.baseline,
            "min_trials": self.min_trials,
            "incumbent": self.incumbent,
            "candidate": self.candidate,
        }

    def commit(self, store: HeurStore, **extra) -> int:
        """Append ``rules`` to ``store`` with provenance; returns how many were new
        (0 when not adopted or already present)."""
        rules = self.rules()
        if not rules:
            return 0
        return store.append_all(rules, **{**self.provenance(), **extra})


def _decode(data: bytes, path: Path, *, first_line: int = 1) -> str:
    """``data`` as UTF-8; ``first_line`` is the file line ``data`` starts on (a tail
    read after a prefix already checked), so an error names the line in the whole file."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        good = data[: exc.start].decode("utf-8", errors="replace")
        text = good + "\ufffd"
        raise error_at(
            text,
            len(good),
            f"invalid UTF-8 byte 0x{data[exc.start]:02x}",
            filename=str(path),
            first_line=first_line,
        ) from None


def _lock_of(real: Path) -> Path:
    return real.with_name(f".{real.name}.lock")


def _parse_rule(rule: str) -> Soft:
    if not isinstance(rule, str):
        raise ValueError(f"rule={rule!r} must be a string holding one soft(...) statement")
    program = parse(rule, filename="rule")
    if len(program.statements) != 1 or not isinstance(program.statements[0], Soft):
        raise ValueError(f"rule={rule!r} must be exactly one soft(...) statement")
    return program.statements[0]


class HeurStore:
    """The self-rewrite rule file: a SpiralK program of ``soft(...)`` rules, each
    preceded by a ``# rewrite {json}`` provenance comment.

    ``path`` defaults to ``SPIRAL_HEUR_FILE``, else ``~/.spiraljax/heur.kdsl``. Writers
    resolve symbolic links (``os.path.realpath``) and work on the real file: they take an
    exclusive ``fcntl.flock`` on its sibling lock file (``.heur.kdsl.lock``) for the whole
    read–check–write, then write a temporary file in its directory, ``fsync`` it,
    ``os.replace`` it over the old one and ``fsync`` the directory (readers never see a
    torn file). Concurrent writers therefore lose nothing, whether they name the file
    through a link or directly, and a link stays a link. A dangling link is followed: the
    first append creates its target (and the target's directory), as for a plain path.
    Rules are deduplicated on their canonical rendering. A file that does not parse
    (invalid UTF-8 included) raises ``SpiralKError`` naming the file, line and column —
    the line in the whole file, also for a tail another writer appended — and is never
    overwritten.
    """

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = default_heur_path() if path is None else Path(path).expanduser()
        # (validated bytes, canonical statements seen): lets append() parse only what
        # other writers added since this process last looked.
        self._seen: tuple[bytes, set[str]] = (b"", set())
        self._program: tuple[bytes, Program] | None = None

    def __repr__(self) -> str:
        return f"HeurStore({str(self.path)!r})"

    @property
    def real_path(self) -> Path:
        """``path`` with symbolic links resolved: the file that appends replace."""
        return Path(os.path.realpath(self.path))

    @property
    def lock_path(self) -> Path:
        """The lock file, a sibling of ``real_path``: the same for every name of the file."""
        return _lock_of(self.real_path)

    # -- reading ---------------------------------------------------------------------
    def _read(self, path: Path | None = None) -> bytes:
        try:
            with open(self.path if path is None else path, "rb") as fh:
                data = fh.read(MAX_BYTES + 1)
        except FileNotFoundError:
            return b""
        if len(data) > MAX_BYTES:
            raise ValueError(f"heur file {self.path} exceeds {MAX_BYTES} bytes")
        return data

    def _keys(self, data: bytes) -> set[str]:
        prefix, keys = self._seen
        if prefix and data.startswith(prefix) and prefix.endswith(b"\n"):
            first_line = prefix.count(b"\n") + 1
            suffix = data[len(prefix) :]
            keys = set(keys)
        else:
            first_line, suffix, keys = 1, data, set()
        text = _decode(suffix, self.path, first_line=first_line)
        program = parse(text, filename=str(self.path), first_line=first_line)
        keys.update(render_statement(s) for s in program.statements)
        self._seen = (data, keys)
        return keys

    def program(self) -> Program:
        """The whole file as a ``Program`` (empty when the file does not exist).

        Raises:
          SpiralKError: the file does not parse (message names the file, line, column).
        """
        data = self._read()
        if self._program is not None and self._program[0] == data:
            return self._program[1]
        program = parse(_decode(data, self.path), filename=str(self.path))
        self._program = (data, program)
        return program

    def rules(self) -> list[str]:
        """Canonical text of every statement in the file, in file order."""
        return [render_statement(s) for s in self.program().statements]

    # -- writing ---------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self):
        """Hold the lock of the real file; yields that file's path."""
        real = self.real_path
        real.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(_lock_of(real), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield real
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    @staticmethod
    def _replace(target: Path, data: bytes) -> None:
        # Replacing ``target`` (the resolved path), never a link to it: os.replace over a
        # link would put a regular file in the link's place and leave the target unchanged.
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        with contextlib.suppress(OSError):
            dfd = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    def append(self, rule: str, **provenance) -> bool:
        """Append one ``soft(...)`` rule with a provenance comment.

        Returns:
          False when an equal rule (same canonical text) is already in the file.

        Raises:
          SpiralKError: ``rule`` does not parse, or the file is corrupt.
          ValueError: ``rule`` is not exactly one ``soft(...)`` statement, or the
            provenance is not JSON-serialisable.
        """
        return self.append_all([rule], **provenance) == 1

    def append_all(self, rules: Iterable[str], **provenance) -> int:
        """Append several rules under one lock (one provenance comment); returns how many
        were new."""
        canon = []
        for rule in rules:
            text = render_statement(_parse_rule(rule))
            if text not in canon:
                canon.append(text)
        record = {"time": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"), **provenance}
        try:
            comment = PROVENANCE_PREFIX + json.dumps(record, sort_keys=True, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"provenance={provenance!r} is not JSON-serialisable: {exc}") from None
        if not canon:
            return 0
        with self._locked() as real:
            data = self._read(real)
            keys = self._keys(data)
            new = [t for t in canon if t not in keys]
            if not new:
                return 0
            text = data.decode("utf-8")
            if not text:
                text = HEADER
            elif not text.endswith("\n"):
                text += "\n"
            text += comment + "\n" + "".join(t + "\n" for t in new)
            out = text.encode("utf-8")
            self._replace(real, out)
            self._seen = (out, keys | set(new))
            return len(new)
