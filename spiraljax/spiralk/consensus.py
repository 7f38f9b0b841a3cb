"""Consensus: hard rules, SoftLogic, the tuned table and self-rewrite rules → one decision.

Policy (see docs/concepts/spiralk.md):

1. **hard** — fields assigned by the program are fixed (``source == "hard"``); any other
   domain fields are completed by steps 2–3 (``completed_by`` says which).
2. Otherwise the best by score of
   * **soft**: the SoftLogic optimum over every soft rule (program + rewrite) and the
     measured prior — present when a rule with non-zero weight matches a legal value,
     or a prior is given;
   * **table**: the generated (tuned) table entry, its missing fields completed by
     SoftLogic, scored with the same objective plus ``gen_weight``
     (``SPIRAL_HEUR_GEN_WEIGHT``, default 0.10);
   * **rewrite**: the fields the adopted self-rewrite rules speak about set to the
     optimum of those rules alone, the other fields completed by SoftLogic, scored
     with the full objective;

   every candidate scored by the one SoftLogic objective ``S(a)`` so they compare.
   Equal scores prefer rewrite, then table, then soft (measured evidence first).
3. **fallback** — none of the above exists: the caller's fallback (missing fields take
   their domain's first value).

``decide`` runs the whole pipeline from the environment (``SPIRAL_HEUR_K``, the heur
file, …) for one problem; ``format_decision`` prints the ``heur explain`` text.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .config import gen_weight_from_env, load_config, report_problem
from .errors import SpiralKError
from .program import Out, SoftRule
from .rewrite import HeurStore
from .softlogic import (
    Domain,
    Prior,
    SoftResult,
    Value,
    _index,
    check_domain,
    score_assignment,
    solve_soft,
)

__all__ = ["SOURCES", "Decision", "Scored", "consensus", "decide", "format_decision"]

SOURCES = ("hard", "soft", "table", "rewrite", "fallback")
_TIE_ORDER = {"rewrite": 3, "table": 2, "soft": 1, "fallback": 0}


@dataclass(frozen=True)
class Scored:
    """A consensus candidate: ``score = rule_score + prior + bonus``."""

    source: str
    assignment: dict[str, Value]
    score: float
    rule_score: float
    prior: float
    bonus: float
    hits: tuple[SoftRule, ...]


@dataclass(frozen=True)
class Decision:
    """The outcome of ``consensus`` / ``decide``.

    Attributes:
      assignment: field → chosen value, one per domain field.
      source: ``"hard" | "soft" | "table" | "rewrite" | "fallback"``.
      completed_by: with ``source == "hard"`` and fields left open, which source filled
        them; else ``None``.
      score: the winner's score.
      hard: the hard assignments applied.
      candidates: every candidate considered (winner included), best first.
      soft: the full SoftLogic result (its candidate breakdown), or ``None``.
      rules, rewrite_rules: soft rules from the program(s) / the heur file.
      gen_weight: the table bonus used.
      notes: things dropped or worth knowing (ignored hard fields, unmatched rules, …).
      context: the problem, when built by ``decide``.
    """

    assignment: dict[str, Value]
    source: str
    score: float
    completed_by: str | None
    hard: dict[str, Value]
    candidates: tuple[Scored, ...]
    soft: SoftResult | None
    rules: tuple[SoftRule, ...]
    rewrite_rules: tuple[SoftRule, ...]
    gen_weight: float
    notes: tuple[str, ...] = ()
    context: dict = field(default_factory=dict)


def _rules_bite(rules: Sequence[SoftRule], dom: Mapping[str, tuple]) -> bool:
    return any(
        r.weight != 0.0 and r.field in dom and _index(dom[r.field], r.value) >= 0 for r in rules
    )


def consensus(
    domain: Domain,
    *,
    hard: Mapping[str, Value] | None = None,
    soft_rules: Sequence[SoftRule] = (),
    table: Mapping[str, Value] | None = None,
    rewrite_rules: Sequence[SoftRule] = (),
    fallback: Mapping[str, Value] | None = None,
    prior: Prior | None = None,
    prior_weight: float = 1.0,
    gen_weight: float | None = None,
    beam_width: int = 16,
    max_enumerate: int = 4096,
    keep: int = 8,
) -> Decision:
    """Combine the heuristic sources into one assignment of ``domain`` (module docstring).

    Args:
      domain: field → legal values (preference order breaks ties).
      hard: hard assignments (``Out.hard``); fields outside the domain are noted and
        ignored; a value outside a field's domain is a ``ValueError``.
      soft_rules: soft rules whose condition held (``Out.soft``).
      table: the tuned table's entry for this problem (may be partial); an entry with a
        value outside the domain is noted and dropped.
      rewrite_rules: adopted self-rewrite rules whose condition held.
      fallback: the caller's default plan.
      prior, prior_weight: measured prior for SoftLogic (see ``solve_soft``).
      gen_weight: table bonus; ``None`` reads ``SPIRAL_HEUR_GEN_WEIGHT`` (default 0.10).

    Returns:
      ``Decision``.
    """
    dom = check_domain(domain)
    if gen_weight is None:
        gen_weight = gen_weight_from_env()
    if not (isinstance(gen_weight, int | float) and math.isfinite(gen_weight)):
        raise ValueError(f"gen_weight={gen_weight!r} must be a finite number")
    notes: list[str] = []

    fixed: dict[str, Value] = {}
    for f, v in (hard or {}).items():
        if f not in dom:
            notes.append(f"hard {f}={v!r} ignored: {f!r} is not in the domain")
            continue
        if _index(dom[f], v) < 0:
            raise ValueError(f"hard assignment {f}={v!r} is not a legal value {dom[f]!r}")
        fixed[f] = v

    base = dict(fallback or {})
    for f, v in base.items():
        if f not in dom:
            notes.append(f"fallback {f}={v!r} ignored: {f!r} is not in the domain")
        elif _index(dom[f], v) < 0:
            raise ValueError(f"fallback {f}={v!r} is not a legal value {dom[f]!r}")

    soft_rules, rewrite_rules = tuple(soft_rules), tuple(rewrite_rules)
    all_rules = soft_rules + rewrite_rules
    kw = dict(prior=prior, prior_weight=prior_weight, beam_width=beam_width)
    kw.update(max_enumerate=max_enumerate, keep=keep)
    candidates: list[Scored] = []

    def rescore(source: str, assignment: Mapping[str, Value], bonus: float = 0.0) -> Scored:
        c = score_assignment(assignment, all_rules, dom, prior=prior, prior_weight=prior_weight)
        return Scored(source, c.assignment, c.score + bonus, c.rule_score, c.prior, bonus, c.hits)

    soft_result = None
    if _rules_bite(all_rules, dom) or prior is not None:
        soft_result = solve_soft(all_rules, dom, fixed=fixed, **kw)
        candidates.append(rescore("soft", soft_result.best.assignment))
        for rule in soft_result.unmatched:
            notes.append(f"rule {rule.text} ({rule.origin}) matches no legal value")

    if table is not None:
        entry = {}
        for f, v in table.items():
            if f not in dom:
                notes.append(f"table field {f}={v!r} ignored: not in the domain")
            else:
                entry[f] = v
        bad = {f: v for f, v in entry.items() if _index(dom[f], v) < 0}
        if bad:
            notes.append(f"table entry {dict(table)} dropped: illegal values {bad}")
        else:
            pinned = {**entry, **fixed}
            best = solve_soft(all_rules, dom, fixed=pinned, **kw).best
            candidates.append(rescore("table", best.assignment, float(gen_weight)))

    if _rules_bite(rewrite_rules, dom):
        # The fields the rewrite rules speak about take their rewrite-optimal values;
        # the rest is completed by the full objective (as for the table entry).
        spoken = {r.field for r in rewrite_rules if r.field in dom and r.weight != 0.0}
        rewrite_best = solve_soft(rewrite_rules, dom, fixed=fixed, **kw).best.assignment
        pinned = {**{f: rewrite_best[f] for f in spoken}, **fixed}
        best = solve_soft(all_rules, dom, fixed=pinned, **kw).best
        candidates.append(rescore("rewrite", best.assignment))

    if not candidates:
        plan = {f: fixed.get(f, base.get(f, vs[0])) for f, vs in dom.items()}
        candidates.append(rescore("fallback", plan))

    candidates.sort(key=lambda c: (-round(c.score, 12), -_TIE_ORDER[c.source]))
    winner = candidates[0]
    if fixed:
        source = "hard"
        completed_by = None if len(fixed) == len(dom) else winner.source
    else:
        source, completed_by = winner.source, None
    return Decision(
        assignment=dict(winner.assignment),
        source=source,
        score=winner.score,
        completed_by=completed_by,
        hard=fixed,
        candidates=tuple(candidates),
        soft=soft_result,
        rules=soft_rules,
        rewrite_rules=rewrite_rules,
        gen_weight=float(gen_weight),
        notes=tuple(notes),
    )


_STORES: dict[str, HeurStore] = {}


def _store_for(path) -> HeurStore:
    # One store per path, so its parse cache survives across planning calls.
    key = str(path)
    if key not in _STORES:
        _STORES[key] = HeurStore(path)
    return _STORES[key]


_EVALS: dict[tuple, tuple] = {}


def _evaluate_cached(program, ctx: dict) -> Out:
    # Programs from the environment and the heur file are cached objects, so planning
    # the same problem again reuses the evaluation (a long heur file costs ~ms to run).
    key = (id(program), type(ctx["sg"]), *(ctx[k] for k in ("rows", "cols", "k", "sg", "kind")))
    hit = _EVALS.get(key)
    if hit is not None and hit[0] is program:
        return hit[1]
    out = program.evaluate(**ctx)
    if len(_EVALS) >= 1024:
        _EVALS.clear()
    _EVALS[key] = (program, out)
    return out


def decide(
    domain: Domain,
    *,
    rows: float,
    cols: float,
    k: float,
    sg: bool | float = False,
    kind: str | None = None,
    table: Mapping[str, Value] | None = None,
    fallback: Mapping[str, Value] | None = None,
    prior: Prior | None = None,
    prior_weight: float = 1.0,
    environ: Mapping[str, str] | None = None,
    store: HeurStore | bool | None = None,
    on_error: str | None = None,
    beam_width: int = 16,
    max_enumerate: int = 4096,
) -> Decision:
    """Plan one problem from the environment: ``SPIRAL_HEUR_K``, the heur file,
    ``SPIRAL_HEUR_SOFT``, ``SPIRAL_HEUR_GEN_WEIGHT`` (see ``.config``), then
    ``consensus``.

    Args:
      domain: field → legal values for this device and problem.
      rows, cols, k, sg, kind: the program variables ``r c k sg kind``.
      table: the tuned table's entry for this problem, if any.
      fallback, prior, prior_weight: as in ``consensus``.
      environ: read instead of ``os.environ``.
      store: the rewrite store; ``None`` → ``HeurStore(SPIRAL_HEUR_FILE or default)``,
        ``False`` → no heur file.
      on_error: ``"raise"``/``"warn"``, overriding ``SPIRAL_HEUR_ON_ERROR``.

    Raises:
      SpiralKError / ValueError: a bad program, heur file, environment value or hard
        value (in raise mode; in warn mode the piece is dropped with a loud warning and
        the reason is kept in ``Decision.notes``).
    """
    cfg = load_config(environ, on_error=on_error)
    mode = cfg.on_error
    notes = list(cfg.problems)
    ctx = dict(rows=rows, cols=cols, k=k, sg=sg, kind=kind)

    def run(program, what: str) -> Out | None:
        try:
            return _evaluate_cached(program, ctx)
        except SpiralKError as exc:
            notes.append(report_problem(exc, mode, what))
            return None

    env_out = run(cfg.program, "SPIRAL_HEUR_K") if cfg.program is not None else None

    file_out = None
    if store is None or store is True:
        store = _store_for(cfg.heur_file)
    if store is not False:
        try:
            file_program = store.program()
        except (SpiralKError, OSError, ValueError) as exc:
            notes.append(report_problem(exc, mode, f"heur file {store.path}"))
            file_program = None
        if file_program is not None and file_program.statements:
            file_out = run(file_program, f"heur file {store.path}")

    hard: dict[str, Value] = {}
    if file_out is not None:
        hard.update(file_out.hard)
    if env_out is not None:
        hard.update(env_out.hard)  # SPIRAL_HEUR_K wins over the file
    dom = check_domain(domain)
    for f, v in list(hard.items()):
        if f in dom and _index(dom[f], v) < 0:
            err = ValueError(f"hard assignment {f}={v!r} is not a legal value {dom[f]!r}")
            notes.append(report_problem(err, mode, f"hard {f}"))
            del hard[f]

    soft_rules = list(env_out.soft) if (env_out is not None and cfg.soft) else []
    rewrite_rules = list(file_out.soft) if (file_out is not None and cfg.soft) else []
    decision = consensus(
        dom,
        hard=hard,
        soft_rules=soft_rules,
        table=table,
        rewrite_rules=rewrite_rules,
        fallback=fallback,
        prior=prior,
        prior_weight=prior_weight,
        gen_weight=cfg.gen_weight,
        beam_width=beam_width,
        max_enumerate=max_enumerate,
    )
    return dataclasses.replace(
        decision,
        notes=tuple(notes) + decision.notes,
        context={**ctx, "heur_file": None if store is False else str(store.path)},
    )


def _fmt(assignment: Mapping[str, Value]) -> str:
    parts = []
    for f, v in assignment.items():
        if isinstance(v, bool):
            v = "true" if v else "false"
        parts.append(f"{f}={v}")
    return " ".join(parts)


def format_decision(decision: Decision, *, top: int = 8) -> str:
    """Human-readable breakdown for ``spiraljax heur explain``: context, hard fields,
    active rules with their hits, the consensus candidates with score parts, SoftLogic's
    best assignments, notes, and the winner with its source."""
    lines = []
    if decision.context:
        ctx = decision.context
        lines.append(
            "problem: "
            + " ".join(f"{k}={ctx[k]}" for k in ("kind", "rows", "cols", "k", "sg") if k in ctx)
        )
        if ctx.get("heur_file"):
            lines.append(f"heur file: {ctx['heur_file']}")
    lines.append(f"table weight (SPIRAL_HEUR_GEN_WEIGHT): {decision.gen_weight:g}")
    if decision.hard:
        lines.append(f"hard: {_fmt(decision.hard)}")
    winner_hits = {id(r) for c in decision.candidates[:1] for r in c.hits}
    for title, rules in (("soft rules", decision.rules), ("rewrite rules", decision.rewrite_rules)):
        if rules:
            lines.append(f"{title} (condition held):")
            for r in rules:
                mark = "hit" if id(r) in winner_hits else "   "
                lines.append(f"  [{mark}] {r.text}   # {r.origin}")
    lines.append("candidates:")
    lines.append(
        f"  {'':1} {'source':<9}{'score':>9}{'rules':>9}{'prior':>9}{'bonus':>9}  assignment"
    )
    for i, c in enumerate(decision.candidates):
        mark = "*" if i == 0 else " "
        lines.append(
            f"  {mark} {c.source:<9}{c.score:>9.4f}{c.rule_score:>9.4f}{c.prior:>9.4f}"
            f"{c.bonus:>9.4f}  {_fmt(c.assignment)}"
        )
    if decision.soft is not None:
        s = decision.soft
        shown = min(top, len(s.candidates))
        lines.append(f"SoftLogic: {s.method}, {s.evaluated} assignments scored; best {shown}:")
        for c in s.candidates[:top]:
            lines.append(f"    {c.score:>9.4f}  {_fmt(c.assignment)}  ({len(c.hits)} rule hits)")
    for note in decision.notes:
        lines.append(f"note: {note}")
    how = decision.source
    if decision.completed_by:
        how += f" (other fields by {decision.completed_by})"
    lines.append(f"winner: {_fmt(decision.assignment)}  source={how}  score={decision.score:.4f}")
    return "\n".join(lines) + "\n"
