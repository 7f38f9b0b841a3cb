"""SoftLogic finite-domain search against a brute-force reference."""

import itertools
import math
import random

import pytest

from spiraljax.spiralk import SoftRule, parse, score_assignment, solve_soft

DOMAIN = {
    "mk": (0, 1, 2),
    "mkd": (0, 1, 2, 3, 4, 5),
    "tile": (256, 512, 1024, 2048),
    "use_2ce": (False, True),
}


def rules_of(src, **ctx):
    return parse(src).evaluate(**ctx).soft


def brute_force(rules, domain, fixed=None, prior=None):
    """Reference: enumerate every assignment; ties → smallest domain-index tuple."""
    fields = list(domain)
    best = None
    for idx in itertools.product(*(range(len(domain[f])) for f in fields)):
        a = {f: domain[f][i] for f, i in zip(fields, idx, strict=True)}
        if fixed and any(a[f] != v for f, v in fixed.items()):
            continue
        s = sum(r.weight for r in rules if r.field in a and a[r.field] == r.value)
        if prior is not None:
            s += prior(a) if callable(prior) else prior.get(tuple(a.values()), 0.0)
        key = (-round(s, 12), idx)
        if best is None or key < best[0]:
            best = (key, a, s)
    return best[1], best[2]


def random_rules(rng, domain, n):
    out = []
    for _ in range(n):
        f = rng.choice([*domain, "wg"])
        vals = domain.get(f, (64, 128))
        v = rng.choice([*vals, 7777]) if f != "use_2ce" else rng.choice([True, False])
        out.append(SoftRule(f, v, rng.choice([-0.5, 0.1, 0.2, 0.25, 1.0, 0.2])))
    return out


def test_seed_rules_pick_expected_values():
    # Seed README soft rules at c=65536, k=128, sg: rules 1 (mk=2, 0.25) and 3 (tile=2048, 0.2).
    from_seed = """
      soft(mk,   2, 0.25, sg && (k<=128));
      soft(mk,   1, 0.20, (k>128)&&(k<=2048));
      soft(tile, 2048, 0.20, log2(c)>15.0);
      soft(tile, 1024, 0.15, (log2(c)>13.0)&&(log2(c)<=15.0));
    """
    res = solve_soft(rules_of(from_seed, cols=65536, k=128, sg=True), DOMAIN)
    assert res.best.assignment == {"mk": 2, "mkd": 0, "tile": 2048, "use_2ce": False}
    assert res.best.score == pytest.approx(0.45)
    assert res.method == "separable" and res.informative
    assert [r.value for r in res.best.hits] == [2, 2048]
    # c=16384, k=512: rules 2 and 4 → mk=1 (0.2), tile=1024 (0.15).
    res = solve_soft(rules_of(from_seed, cols=16384, k=512, sg=True), DOMAIN)
    assert (res.best.assignment["mk"], res.best.assignment["tile"]) == (1, 1024)
    assert res.best.score == pytest.approx(0.35)


@pytest.mark.parametrize("seed", range(30))
def test_matches_brute_force_with_and_without_priors(seed):
    rng = random.Random(seed)
    rules = random_rules(rng, DOMAIN, rng.randint(0, 8))
    fixed = {"mk": rng.choice(DOMAIN["mk"])} if seed % 3 == 0 else None
    table = {idx: rng.choice([0.0, 0.1, 0.3]) for idx in itertools.product(*DOMAIN.values())}

    ref, ref_score = brute_force(rules, DOMAIN, fixed)
    res = solve_soft(rules, DOMAIN, fixed=fixed)
    assert res.best.assignment == ref and res.best.score == pytest.approx(ref_score)

    def prior(a):
        return table[tuple(a.values())]

    ref, ref_score = brute_force(rules, DOMAIN, fixed, prior)
    for p in (prior, table):
        res = solve_soft(rules, DOMAIN, fixed=fixed, prior=p)
        assert res.method == "enumerate"
        assert res.best.assignment == ref and res.best.score == pytest.approx(ref_score)
        assert res.evaluated == math.prod(
            1 if fixed and f in fixed else len(v) for f, v in DOMAIN.items()
        )


@pytest.mark.parametrize("seed", range(10))
def test_beam_search_finds_optimum_of_separable_prior(seed):
    # A prior that is a sum of per-field terms: single-field moves reach the optimum, so
    # the beam must return the brute-force answer even though it does not enumerate.
    rng = random.Random(100 + seed)
    domain = {f"f{i}": tuple(range(rng.randint(2, 6))) for i in range(7)}
    terms = {f: [rng.random() for _ in vs] for f, vs in domain.items()}
    rules = [SoftRule("mk", 1, 1.0)]  # outside the domain: reported, never matches

    def prior(a):
        return sum(terms[f][v] for f, v in a.items())

    res = solve_soft(rules, domain, prior=prior, max_enumerate=50, beam_width=4)
    assert res.method == "beam"
    ref, ref_score = brute_force([], domain, prior=prior)
    assert res.best.assignment == ref
    assert res.best.score == pytest.approx(ref_score)
    assert res.evaluated < math.prod(len(v) for v in domain.values())
    assert res.unmatched == tuple(rules)


def test_beam_search_starts_from_measured_mapping_entries():
    # A needle the local search cannot reach from the rule optimum: only the measured
    # entry (a mapping prior) can seed it.
    domain = {f"f{i}": tuple(range(5)) for i in range(6)}
    needle = (4, 3, 2, 1, 0, 4)
    res = solve_soft([], domain, prior={needle: 10.0}, max_enumerate=100, beam_width=2)
    assert res.method == "beam"
    assert tuple(res.best.assignment.values()) == needle
    assert res.best.prior == 10.0


def test_tie_break_is_domain_order_and_deterministic():
    rules = [SoftRule("tile", 512, 0.5), SoftRule("tile", 2048, 0.5)]
    for _ in range(3):
        res = solve_soft(rules, DOMAIN)
        assert res.best.assignment == {"mk": 0, "mkd": 0, "tile": 512, "use_2ce": False}
    reordered = {**DOMAIN, "tile": (2048, 1024, 512, 256)}
    assert solve_soft(rules, reordered).best.assignment["tile"] == 2048


def test_negative_weights_steer_away_and_weights_add():
    rules = [SoftRule("mk", 0, -1.0), SoftRule("mk", 1, 0.3), SoftRule("mk", 1, 0.3)]
    rules += [SoftRule("mk", 2, 0.5)]
    res = solve_soft(rules, DOMAIN)
    assert res.best.assignment["mk"] == 1
    assert res.best.rule_score == pytest.approx(0.6)
    # Only a negative rule: the winner avoids the penalised value, and it is informative.
    res = solve_soft([SoftRule("mk", 0, -1.0)], DOMAIN)
    assert res.best.assignment["mk"] == 1 and res.informative


def test_bool_rule_matches_bool_domain_and_unmatched_rules_are_reported():
    rules = rules_of("soft(u2, true, 1, true); soft(tile, 4096, 5, true); soft(wg, 1, 1, true)")
    res = solve_soft(rules, DOMAIN)
    assert res.best.assignment["use_2ce"] is True
    assert [r.field for r in res.unmatched] == ["tile", "wg"]


def test_uninformative_without_rules_or_prior():
    res = solve_soft([], DOMAIN)
    assert not res.informative
    assert res.best.assignment == {"mk": 0, "mkd": 0, "tile": 256, "use_2ce": False}
    assert not solve_soft([SoftRule("wg", 64, 1.0)], DOMAIN).informative


def test_candidates_breakdown_sorted_and_kept():
    rules = [SoftRule("tile", 1024, 0.4), SoftRule("mk", 2, 0.2)]
    res = solve_soft(rules, DOMAIN, prior=lambda a: 0.05 * a["mkd"], keep=5)
    scores = [c.score for c in res.candidates]
    assert len(scores) == 5 and scores == sorted(scores, reverse=True)
    best = res.candidates[0]
    assert best.score == pytest.approx(best.rule_score + best.prior)
    assert best.assignment == {"mk": 2, "mkd": 5, "tile": 1024, "use_2ce": False}
    again = score_assignment(best.assignment, rules, DOMAIN, prior=lambda a: 0.05 * a["mkd"])
    assert again.score == pytest.approx(best.score)


def test_prior_weight_scales():
    prior = {(0, 0, 256, False): 1.0}
    res = solve_soft([SoftRule("mk", 2, 0.5)], DOMAIN, prior=prior, prior_weight=0.25)
    assert res.best.assignment["mk"] == 2  # 0.5 beats 0.25·1.0
    res = solve_soft([SoftRule("mk", 2, 0.5)], DOMAIN, prior=prior, prior_weight=1.0)
    assert res.best.assignment == {"mk": 0, "mkd": 0, "tile": 256, "use_2ce": False}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(domain={}), "non-empty mapping"),
        (dict(domain={"mk": ()}), r"domain\['mk'\] is empty"),
        (dict(domain={"mk": (1, 1)}), "repeats the value 1"),
        (dict(domain={"mk": 3}), "must be a sequence"),
        (dict(domain={"mk": "012"}), "must be a sequence"),
        (dict(fixed={"mk": 7}), "fixed mk=7 is not a legal value"),
        (dict(fixed={"wg": 64}), "fixed field 'wg' is not in the domain"),
        (dict(beam_width=0), "beam_width=0"),
        (dict(max_enumerate=0), "max_enumerate=0"),
        (dict(keep=0), "keep=0"),
        (dict(prior=3.0), "must be a callable or a mapping"),
        (dict(prior=lambda a: math.nan), "prior for"),
        (dict(prior_weight=math.inf), "prior_weight=inf"),
        (dict(rules=[("mk", 1, 1.0)]), "SoftRule"),
        (dict(rules=[SoftRule("mk", 1, math.nan)]), "non-finite weight"),
    ],
)
def test_bad_input_names_argument(kwargs, match):
    args = dict(rules=[], domain=DOMAIN)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        solve_soft(args.pop("rules"), args.pop("domain"), **args)


def test_score_assignment_requires_complete_assignment():
    with pytest.raises(ValueError, match="lacks fields"):
        score_assignment({"mk": 1}, [], DOMAIN)


def test_overflowing_weights_are_an_error_not_inf():
    rules = rules_of("soft(mk, 1, 1e308, true); soft(mk, 1, 1e308, true)")
    with pytest.raises(ValueError, match="overflow"):
        solve_soft(rules, DOMAIN)
