"""SoftLogic: a finite-domain search over candidate assignments scored by soft rules.

A *domain* maps each field to the tuple of its legal values, supplied by the caller (the
kernels know which tiles, merge kinds … a device supports; SpiralK does not). The
order of each tuple is the caller's preference order and breaks ties.

The score of a complete assignment ``a`` is

    S(a) = Σ_rules  w_rule · [a[rule.field] == rule.value]  +  prior_weight · P(a)

with ``P`` the optional measured prior (a callable ``assignment -> float`` or a mapping
from value tuples, in domain field order, to floats). Rules are the soft rules whose
condition held (``Program.evaluate(...).soft``); rules on fields or values outside the
domain can never match and are reported as such.

Search:
* no prior → the score is separable, so the exact optimum is the per-field argmax;
* prior and ``Π |domain| ≤ max_enumerate`` → exhaustive enumeration (exact);
* otherwise → beam search over complete assignments: start from the rule optimum (and
  every assignment the prior mapping measured), expand by changing one field, keep the
  ``beam_width`` best, stop when the best stops improving.

Ties (scores equal to 1e-12) go to the assignment that comes first in domain order
(lexicographic in the value indices), so the result is deterministic.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from .program import SoftRule

__all__ = ["Candidate", "SoftResult", "check_domain", "score_assignment", "solve_soft"]

Value = int | bool | float | str
Domain = Mapping[str, Sequence[Value]]
Prior = Callable[[Mapping[str, Value]], float] | Mapping[tuple, float]

_TIE = 12  # decimals kept when comparing scores


@dataclass(frozen=True)
class Candidate:
    """One scored assignment: ``score = rule_score + prior``; ``hits`` = matched rules."""

    assignment: dict[str, Value]
    score: float
    rule_score: float
    prior: float
    hits: tuple[SoftRule, ...]


@dataclass(frozen=True)
class SoftResult:
    """Outcome of ``solve_soft``.

    ``best``: the winning candidate; ``candidates``: the best ones found, best first
    (at most ``keep``); ``method``: ``"separable"``, ``"enumerate"`` or ``"beam"``;
    ``evaluated``: number of assignments scored; ``unmatched``: rules that can never
    match (field or value outside the domain); ``informative``: whether a prior was
    used or some rule with a non-zero weight matches a legal value (otherwise the
    winner is just the domain's first values).
    """

    best: Candidate
    candidates: tuple[Candidate, ...]
    method: str
    evaluated: int
    unmatched: tuple[SoftRule, ...]
    informative: bool


def _same(a: Value, b: Value) -> bool:
    # Strings match only strings; bool/int/float compare numerically (True == 1).
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    return a == b


def check_domain(domain: Domain) -> dict[str, tuple[Value, ...]]:
    """Validate a domain: non-empty, no duplicate values, field names are strings."""
    if not isinstance(domain, Mapping) or not domain:
        raise ValueError(f"domain={domain!r} must be a non-empty mapping field -> values")
    out: dict[str, tuple[Value, ...]] = {}
    for name, values in domain.items():
        if not isinstance(name, str):
            raise ValueError(f"domain field {name!r} must be a string")
        if isinstance(values, str | bytes) or not hasattr(values, "__iter__"):
            raise ValueError(f"domain[{name!r}]={values!r} must be a sequence of values")
        values = tuple(values)
        if not values:
            raise ValueError(f"domain[{name!r}] is empty; every field needs a legal value")
        for i, v in enumerate(values):
            if any(_same(v, w) for w in values[:i]):
                raise ValueError(f"domain[{name!r}]={values!r} repeats the value {v!r}")
        out[name] = values
    return out


def _index(values: tuple[Value, ...], value: Value) -> int:
    for i, v in enumerate(values):
        if _same(v, value):
            return i
    return -1


class _Scorer:
    def __init__(self, rules, domain, prior, prior_weight):
        self.domain = domain
        self.fields = tuple(domain)
        self.rules = tuple(rules)
        # table[f][i] = Σ weights of rules matching value i of field f
        self.table = {f: [0.0] * len(vs) for f, vs in domain.items()}
        self.matching = {f: [[] for _ in vs] for f, vs in domain.items()}
        unmatched = []
        for rule in self.rules:
            if not isinstance(rule, SoftRule):
                raise ValueError(f"rules must be SoftRule objects, got {rule!r}")
            if not math.isfinite(rule.weight):
                raise ValueError(f"rule {rule!r} has non-finite weight {rule.weight!r}")
            vals = domain.get(rule.field)
            i = -1 if vals is None else _index(vals, rule.value)
            if i < 0:
                unmatched.append(rule)
                continue
            self.table[rule.field][i] += float(rule.weight)
            self.matching[rule.field][i].append(rule)
        for f, sums in self.table.items():
            if not all(math.isfinite(x) for x in sums):
                raise ValueError(f"soft rule weights on field {f!r} overflow: {sums}")
        self.unmatched = tuple(unmatched)
        self.prior = prior
        self.prior_weight = float(prior_weight)
        self.evaluated = 0

    def prior_of(self, idx: tuple[int, ...]) -> float:
        if self.prior is None:
            return 0.0
        values = tuple(self.domain[f][i] for f, i in zip(self.fields, idx, strict=True))
        if callable(self.prior):
            p = self.prior(dict(zip(self.fields, values, strict=True)))
        else:
            p = self.prior.get(values, 0.0)
        if p is None:
            p = 0.0
        p = float(p)
        if not math.isfinite(p):
            raise ValueError(f"prior for {dict(zip(self.fields, values, strict=True))} is {p}")
        return self.prior_weight * p

    def candidate(self, idx: tuple[int, ...]) -> Candidate:
        self.evaluated += 1
        rule_score = 0.0
        hits: list[SoftRule] = []
        for f, i in zip(self.fields, idx, strict=True):
            rule_score += self.table[f][i]
            hits.extend(self.matching[f][i])
        prior = self.prior_of(idx)
        assignment = {f: self.domain[f][i] for f, i in zip(self.fields, idx, strict=True)}
        return Candidate(assignment, rule_score + prior, rule_score, prior, tuple(hits))


def _key(item: tuple[tuple[int, ...], Candidate]) -> tuple:
    idx, cand = item
    return (-round(cand.score, _TIE), idx)


def score_assignment(
    assignment: Mapping[str, Value],
    rules: Sequence[SoftRule],
    domain: Domain,
    *,
    prior: Prior | None = None,
    prior_weight: float = 1.0,
) -> Candidate:
    """Score one complete assignment with the SoftLogic objective ``S(a)``.

    Values outside the domain are allowed (they match rules by equality but have no
    prior entry in a mapping prior unless listed there).
    """
    dom = check_domain(domain)
    missing = [f for f in dom if f not in assignment]
    if missing:
        raise ValueError(f"assignment={dict(assignment)!r} lacks fields {missing}")
    rule_score, hits = 0.0, []
    for rule in rules:
        if rule.field in dom and _same(assignment[rule.field], rule.value):
            rule_score += float(rule.weight)
            hits.append(rule)
    p = 0.0
    if prior is not None:
        full = {f: assignment[f] for f in dom}
        raw = prior(full) if callable(prior) else prior.get(tuple(full.values()), 0.0)
        p = float(prior_weight) * float(0.0 if raw is None else raw)
        if not math.isfinite(p):
            raise ValueError(f"prior for {full} is {p}")
    return Candidate({f: assignment[f] for f in dom}, rule_score + p, rule_score, p, tuple(hits))


def solve_soft(
    rules: Sequence[SoftRule],
    domain: Domain,
    *,
    fixed: Mapping[str, Value] | None = None,
    prior: Prior | None = None,
    prior_weight: float = 1.0,
    beam_width: int = 16,
    max_enumerate: int = 4096,
    keep: int = 8,
) -> SoftResult:
    """Find the assignment of ``domain`` maximising ``S(a)`` (see module docstring).

    Args:
      rules: soft rules (``Out.soft``) whose conditions held.
      domain: field → legal values, in preference order.
      fixed: fields pinned to a value (hard assignments, a table entry); each value must
        be in the field's domain.
      prior: measured prior, callable ``assignment -> float`` or mapping from value tuples
        (domain field order) to floats; missing entries count 0.
      prior_weight: scale of the prior.
      beam_width, max_enumerate: search limits (see module docstring).
      keep: how many of the best candidates to return for the breakdown.

    Returns:
      ``SoftResult``.
    """
    dom = check_domain(domain)
    if beam_width < 1:
        raise ValueError(f"beam_width={beam_width} must be ≥ 1")
    if max_enumerate < 1:
        raise ValueError(f"max_enumerate={max_enumerate} must be ≥ 1")
    if keep < 1:
        raise ValueError(f"keep={keep} must be ≥ 1")
    if not math.isfinite(prior_weight):
        raise ValueError(f"prior_weight={prior_weight} must be finite")
    if prior is not None and not (callable(prior) or isinstance(prior, Mapping)):
        raise ValueError(f"prior={prior!r} must be a callable or a mapping")
    fixed = dict(fixed or {})
    for f, v in fixed.items():
        if f not in dom:
            raise ValueError(f"fixed field {f!r} is not in the domain {tuple(dom)}")
        if _index(dom[f], v) < 0:
            raise ValueError(f"fixed {f}={v!r} is not a legal value {dom[f]!r}")

    scorer = _Scorer(rules, dom, prior, prior_weight)
    fields = scorer.fields
    # Per-field index choices after pinning.
    choices = [
        (_index(dom[f], fixed[f]),) if f in fixed else tuple(range(len(dom[f]))) for f in fields
    ]
    seen: dict[tuple[int, ...], Candidate] = {}

    def visit(idx: tuple[int, ...]) -> None:
        if idx not in seen:
            seen[idx] = scorer.candidate(idx)

    # Rule optimum per field (exact when there is no prior); ties → first in domain order.
    greedy = tuple(
        max(ch, key=lambda i, f=f: (round(scorer.table[f][i], _TIE), -i))
        for f, ch in zip(fields, choices, strict=True)
    )
    size = math.prod(len(ch) for ch in choices)

    if prior is None:
        method = "separable"
        visit(greedy)
        # Neighbours (one field changed) give the breakdown of the runner-ups.
        for j, ch in enumerate(choices):
            for i in ch:
                visit((*greedy[:j], i, *greedy[j + 1 :]))
    elif size <= max_enumerate:
        method = "enumerate"
        for idx in itertools.product(*choices):
            visit(idx)
    else:
        method = "beam"
        starts = [greedy]
        if isinstance(prior, Mapping):
            for key in prior:
                if not isinstance(key, tuple) or len(key) != len(fields):
                    continue
                idx = tuple(_index(dom[f], v) for f, v in zip(fields, key, strict=True))
                if all(i in ch for i, ch in zip(idx, choices, strict=True)):
                    starts.append(idx)
        for idx in starts:
            visit(idx)
        beam = sorted(((i, seen[i]) for i in dict.fromkeys(starts)), key=_key)[:beam_width]
        best = beam[0]
        for _ in range(4 * len(fields) + 4):
            frontier = {}
            for idx, _cand in beam:
                for j, ch in enumerate(choices):
                    for i in ch:
                        nb = (*idx[:j], i, *idx[j + 1 :])
                        visit(nb)
                        frontier[nb] = seen[nb]
            beam = sorted(frontier.items(), key=_key)[:beam_width]
            if _key(beam[0]) >= _key(best):
                break
            best = beam[0]

    ranked = sorted(seen.items(), key=_key)
    _best_idx, best = ranked[0]
    informative = (
        prior is not None
        or bool(best.hits)
        or any(w != 0.0 for f in fields for w in scorer.table[f])
    )
    return SoftResult(
        best=best,
        candidates=tuple(c for _, c in ranked[:keep]),
        method=method,
        evaluated=scorer.evaluated,
        unmatched=scorer.unmatched,
        informative=informative,
    )
