"""Consensus policy, the environment variables, decide() with the heur file read back,
and the explain printout."""

import logging
import warnings

import pytest

from spiraljax.spiralk import (
    ABTest,
    HeurStore,
    SoftRule,
    SpiralKError,
    SpiralKWarning,
    consensus,
    decide,
    format_decision,
    load_config,
    parse,
)

DOMAIN = {
    "mk": (0, 1, 2),
    "mkd": (0, 1, 2, 3, 4, 5),
    "tile": (256, 512, 1024, 2048),
    "ctile": (128, 256, 512, 1024),
    "use_2ce": (False, True),
}
FALLBACK = {"mk": 1, "mkd": 1, "tile": 512, "ctile": 256, "use_2ce": False}
CTX = dict(rows=512, cols=65536, k=128, sg=True, kind="topk")


def R(field, value, weight):
    return SoftRule(field, value, weight)


# ---------------------------------------------------------------- consensus policy


def test_fallback_when_nothing_else():
    d = consensus(DOMAIN, fallback=FALLBACK, gen_weight=0.1)
    assert d.source == "fallback" and d.assignment == FALLBACK
    # Missing fallback fields take the domain's first value.
    d = consensus(DOMAIN, fallback={"tile": 1024}, gen_weight=0.1)
    assert d.assignment == {"mk": 0, "mkd": 0, "tile": 1024, "ctile": 128, "use_2ce": False}
    with pytest.raises(ValueError, match="fallback tile=3 is not a legal value"):
        consensus(DOMAIN, fallback={"tile": 3}, gen_weight=0.1)
    # Checked even when another source wins.
    with pytest.raises(ValueError, match="fallback tile=3 is not a legal value"):
        consensus(DOMAIN, fallback={"tile": 3}, table={"tile": 512}, gen_weight=0.1)
    d = consensus(DOMAIN, fallback={**FALLBACK, "wg": 64}, gen_weight=0.1)
    assert d.assignment == FALLBACK and any("fallback wg=64 ignored" in n for n in d.notes)


def test_hard_covering_the_domain_wins_over_everything():
    hard = {"mk": 0, "mkd": 3, "tile": 256, "ctile": 128, "use_2ce": True}
    d = consensus(
        DOMAIN,
        hard=hard,
        soft_rules=[R("mk", 2, 5.0)],
        table={"mk": 2, "tile": 2048},
        rewrite_rules=[R("tile", 2048, 9.0)],
        fallback=FALLBACK,
        gen_weight=0.1,
    )
    assert d.source == "hard" and d.completed_by is None
    assert d.assignment == hard and d.hard == hard


def test_partial_hard_is_completed_by_the_next_source():
    d = consensus(DOMAIN, hard={"mk": 0}, soft_rules=[R("mk", 2, 5.0), R("tile", 1024, 0.3)])
    assert d.source == "hard" and d.completed_by == "soft"
    assert d.assignment["mk"] == 0 and d.assignment["tile"] == 1024
    d = consensus(DOMAIN, hard={"mk": 0}, fallback=FALLBACK, gen_weight=0.1)
    assert d.completed_by == "fallback" and d.assignment == {**FALLBACK, "mk": 0}


def test_hard_outside_domain_noted_and_illegal_value_raises():
    d = consensus(DOMAIN, hard={"wg": 256, "mk": 1}, gen_weight=0.1)
    assert d.hard == {"mk": 1}
    assert any("hard wg=256 ignored" in n for n in d.notes)
    with pytest.raises(ValueError, match="hard assignment mk=7 is not a legal value"):
        consensus(DOMAIN, hard={"mk": 7}, gen_weight=0.1)


def test_soft_vs_table_decided_by_gen_weight():
    soft = [R("tile", 2048, 0.2)]
    table = {"tile": 1024, "mk": 2}
    # soft best scores 0.2; the table entry scores 0 + gen_weight.
    d = consensus(DOMAIN, soft_rules=soft, table=table, gen_weight=0.1)
    assert d.source == "soft" and d.assignment["tile"] == 2048
    d = consensus(DOMAIN, soft_rules=soft, table=table, gen_weight=0.3)
    assert d.source == "table" and d.assignment["tile"] == 1024 and d.assignment["mk"] == 2
    assert d.score == pytest.approx(0.3)
    [table_cand] = [c for c in d.candidates if c.source == "table"]
    assert table_cand.bonus == 0.3 and table_cand.rule_score == 0.0
    # A table entry agreeing with the rules collects their score too: 0.2 + 0.1.
    d = consensus(DOMAIN, soft_rules=soft, table={"tile": 2048}, gen_weight=0.1)
    assert d.source == "table" and d.score == pytest.approx(0.3)


def test_table_alone_beats_fallback_and_is_completed():
    d = consensus(DOMAIN, table={"tile": 2048}, fallback=FALLBACK, gen_weight=0.1)
    assert d.source == "table" and d.assignment["tile"] == 2048
    assert [c.source for c in d.candidates] == ["table"]


def test_illegal_table_entry_is_dropped_with_a_note():
    d = consensus(DOMAIN, table={"tile": 4096, "wg": 3}, fallback=FALLBACK, gen_weight=0.1)
    assert d.source == "fallback"
    assert any("dropped" in n for n in d.notes) and any("wg=3 ignored" in n for n in d.notes)


def test_rewrite_rules_compete_and_win_ties():
    # Rewrite rule agrees with the SoftLogic optimum → equal score → "rewrite" (measured).
    d = consensus(DOMAIN, soft_rules=[R("mk", 1, 0.1)], rewrite_rules=[R("tile", 2048, 1.0)])
    assert d.source == "rewrite" and d.assignment["tile"] == 2048 and d.assignment["mk"] == 1
    # A stronger program rule on the same field beats a weaker rewrite rule.
    d = consensus(DOMAIN, soft_rules=[R("tile", 512, 0.8)], rewrite_rules=[R("tile", 2048, 0.5)])
    assert d.source == "soft" and d.assignment["tile"] == 512
    # Rewrite without program rules.
    d = consensus(DOMAIN, rewrite_rules=[R("use_2ce", True, 1.0)], fallback=FALLBACK)
    assert d.source == "rewrite" and d.assignment["use_2ce"] is True


def test_prior_makes_soft_candidate_and_is_shared_by_all_candidates():
    def prior(a):
        return 0.5 if a["tile"] == 1024 else 0.0

    d = consensus(DOMAIN, table={"tile": 512}, prior=prior, gen_weight=0.1)
    assert d.source == "soft" and d.assignment["tile"] == 1024
    [table_cand] = [c for c in d.candidates if c.source == "table"]
    assert table_cand.score == pytest.approx(0.1) and table_cand.prior == 0.0


def test_unmatched_rules_are_noted():
    d = consensus(DOMAIN, soft_rules=[R("tile", 4096, 1.0), R("mk", 2, 0.1)], gen_weight=0.1)
    assert any("soft(tile, 4096, 1, true)" in n for n in d.notes)


def test_gen_weight_default_from_environment(monkeypatch):
    monkeypatch.setenv("SPIRAL_HEUR_GEN_WEIGHT", "0.5")
    d = consensus(DOMAIN, soft_rules=[R("tile", 2048, 0.2)], table={"tile": 1024})
    assert d.gen_weight == 0.5 and d.source == "table"
    monkeypatch.delenv("SPIRAL_HEUR_GEN_WEIGHT")
    assert consensus(DOMAIN, table={"tile": 1024}).gen_weight == 0.10


# ---------------------------------------------------------------- environment


def test_config_defaults_and_values(tmp_path):
    cfg = load_config({})
    assert (cfg.program, cfg.soft, cfg.gen_weight, cfg.on_error) == (None, True, 0.10, "raise")
    cfg = load_config(
        {
            "SPIRAL_HEUR_K": "wg: 64",
            "SPIRAL_HEUR_SOFT": "0",
            "SPIRAL_HEUR_GEN_WEIGHT": "0.25",
            "SPIRAL_HEUR_FILE": str(tmp_path / "h.kdsl"),
            "SPIRAL_HEUR_ON_ERROR": "warn",
        }
    )
    assert cfg.program == parse("wg: 64") and cfg.program.filename == "SPIRAL_HEUR_K"
    assert (cfg.soft, cfg.gen_weight, cfg.on_error) == (False, 0.25, "warn")
    assert cfg.heur_file == tmp_path / "h.kdsl"
    assert load_config({"SPIRAL_HEUR_K": "  \n "}).program is None


@pytest.mark.parametrize(
    ("env", "exc", "match"),
    [
        ({"SPIRAL_HEUR_K": "mk: sel(sg,"}, SpiralKError, "SPIRAL_HEUR_K:1:12: expected"),
        ({"SPIRAL_HEUR_K": "mk: 1\ntile: 2 +* 3"}, SpiralKError, "SPIRAL_HEUR_K:2:10"),
        ({"SPIRAL_HEUR_SOFT": "yes"}, ValueError, "SPIRAL_HEUR_SOFT='yes'"),
        ({"SPIRAL_HEUR_GEN_WEIGHT": "abc"}, ValueError, "SPIRAL_HEUR_GEN_WEIGHT='abc'"),
        ({"SPIRAL_HEUR_GEN_WEIGHT": "-1"}, ValueError, "SPIRAL_HEUR_GEN_WEIGHT='-1'"),
        ({"SPIRAL_HEUR_GEN_WEIGHT": "nan"}, ValueError, "SPIRAL_HEUR_GEN_WEIGHT='nan'"),
    ],
)
def test_bad_environment_raises_by_default(env, exc, match):
    with pytest.raises(exc, match=match):
        load_config(env)
    with pytest.raises(exc, match=match):
        decide(DOMAIN, **CTX, environ=env, store=False)


@pytest.mark.parametrize(
    "env",
    [
        {"SPIRAL_HEUR_K": "mk: sel(sg,"},
        {"SPIRAL_HEUR_SOFT": "yes"},
        {"SPIRAL_HEUR_GEN_WEIGHT": "abc"},
    ],
)
def test_bad_environment_warns_loudly_in_warn_mode(env, caplog):
    env = {**env, "SPIRAL_HEUR_ON_ERROR": "warn"}
    with caplog.at_level(logging.ERROR, logger="spiraljax.spiralk"):
        with pytest.warns(SpiralKWarning, match="ignored .SPIRAL_HEUR_ON_ERROR=warn.") as rec:
            d = decide(DOMAIN, **CTX, environ=env, store=False, fallback=FALLBACK)
    reason = str(rec[0].message)
    assert any(reason in r.getMessage() for r in caplog.records)
    assert reason in d.notes
    assert d.source == "fallback"


def test_bad_on_error_value_always_raises():
    with pytest.raises(ValueError, match="SPIRAL_HEUR_ON_ERROR='loud'"):
        load_config({"SPIRAL_HEUR_ON_ERROR": "loud"})
    with pytest.raises(ValueError, match="on_error"):
        load_config({}, on_error="sometimes")


def test_evaluation_error_of_env_program_is_reported():
    env = {"SPIRAL_HEUR_K": "tile: c / (k - 128)"}  # k = 128 → division by zero
    with pytest.raises(SpiralKError, match=r"division by zero in `c / \(k - 128\)`"):
        decide(DOMAIN, **CTX, environ=env, store=False)
    with pytest.warns(SpiralKWarning, match="division by zero"):
        d = decide(DOMAIN, **CTX, environ=env, store=False, on_error="warn")
    assert d.source != "hard"
    # Other shapes evaluate fine: 65536 / (256 − 128) = 512.
    d = decide(DOMAIN, **{**CTX, "k": 256}, environ=env, store=False)
    assert d.source == "hard" and d.assignment["tile"] == 512


def test_illegal_hard_value_from_env_is_reported():
    env = {"SPIRAL_HEUR_K": "tile: 3000"}
    with pytest.raises(ValueError, match="hard assignment tile=3000"):
        decide(DOMAIN, **CTX, environ=env, store=False)
    with pytest.warns(SpiralKWarning, match="tile=3000"):
        d = decide(DOMAIN, **CTX, environ=env, store=False, on_error="warn", fallback=FALLBACK)
    assert d.source == "fallback"


# ---------------------------------------------------------------- decide()


def test_decide_with_seed_program(seed_readme_program, tmp_path):
    env = {"SPIRAL_HEUR_K": seed_readme_program, "SPIRAL_HEUR_FILE": str(tmp_path / "h.kdsl")}
    d = decide(DOMAIN, **CTX, environ=env, fallback=FALLBACK)
    # Seed program at c=65536, k=128, sg: mk 2, mkd 4, tile 2048, ctile 1024 (hard);
    # use_2ce is left open and completed by SoftLogic (domain order → false).
    assert d.source == "hard" and d.completed_by == "soft"
    assert d.assignment == {"mk": 2, "mkd": 4, "tile": 2048, "ctile": 1024, "use_2ce": False}
    assert [(r.field, r.value) for r in d.rules] == [("mk", 2), ("tile", 2048)]
    assert d.context["cols"] == 65536 and d.context["heur_file"] == str(tmp_path / "h.kdsl")


def test_soft_switch_disables_soft_rules(tmp_path):
    env = {"SPIRAL_HEUR_K": "soft(tile, 2048, 1, true)", "SPIRAL_HEUR_SOFT": "0"}
    d = decide(DOMAIN, **CTX, environ=env, store=False, fallback=FALLBACK)
    assert d.source == "fallback" and d.rules == ()
    env["SPIRAL_HEUR_SOFT"] = "1"
    d = decide(DOMAIN, **CTX, environ=env, store=False, fallback=FALLBACK)
    assert d.source == "soft" and d.assignment["tile"] == 2048


def test_self_rewrite_moves_a_bad_default_to_the_measured_winner(tmp_path):
    """The whole loop, with simulated timings: a deliberately bad hand-written default
    (tile 256) loses A/B trials to tile 2048; the adopted rule is written to the heur
    file, read back by decide(), and the plan moves to 2048 with source "rewrite"."""
    path = tmp_path / "heur.kdsl"
    env = {"SPIRAL_HEUR_K": "soft(tile, 256, 0.5, true);", "SPIRAL_HEUR_FILE": str(path)}
    before = decide(DOMAIN, **CTX, environ=env)
    assert before.source == "soft" and before.assignment["tile"] == 256

    timing = {256: 3.0e-3, 2048: 1.0e-3}  # the "measurement"
    ab = ABTest({"tile": 256}, {"tile": 2048}, cond="c > 32768 && k <= 128", weight=1.0)
    while ab.status == "collecting":
        ab.record_timing(timing[256], timing[2048])
    assert ab.status == "adopted" and ab.commit(HeurStore(path), shape="512x65536") == 2

    after = decide(DOMAIN, **CTX, environ=env)
    assert after.source == "rewrite" and after.assignment["tile"] == 2048
    assert {r.origin.rsplit(":", 1)[0] for r in after.rewrite_rules} == {str(path)}
    # Outside the rule's condition the old default still holds.
    small = decide(DOMAIN, **{**CTX, "cols": 4096}, environ=env)
    assert small.source == "soft" and small.assignment["tile"] == 256


def test_corrupt_heur_file_reported_by_decide(tmp_path):
    path = tmp_path / "heur.kdsl"
    path.write_text("soft(tile, 2048, 1, true)\nsoft(tile 512, 1, true)\n")
    env = {"SPIRAL_HEUR_FILE": str(path)}
    with pytest.raises(SpiralKError) as info:
        decide(DOMAIN, **CTX, environ=env)
    assert info.value.filename == str(path) and info.value.line == 2
    with pytest.warns(SpiralKWarning, match=str(path)):
        d = decide(DOMAIN, **CTX, environ=env, on_error="warn", fallback=FALLBACK)
    assert d.source == "fallback" and any(str(path) in n for n in d.notes)


def test_heur_file_hard_assignments_yield_to_env(tmp_path):
    path = tmp_path / "heur.kdsl"
    path.write_text("tile: 512\nmk: 0\n")
    env = {"SPIRAL_HEUR_FILE": str(path), "SPIRAL_HEUR_K": "tile: 1024"}
    d = decide(DOMAIN, **CTX, environ=env)
    assert d.hard == {"tile": 1024, "mk": 0}


def test_decide_without_a_heur_file_on_disk(tmp_path):
    env = {"SPIRAL_HEUR_FILE": str(tmp_path / "missing" / "heur.kdsl")}
    d = decide(DOMAIN, **CTX, environ=env, fallback=FALLBACK)
    assert d.source == "fallback"
    assert not (tmp_path / "missing").exists()  # reading never creates files


def test_decide_is_silent_when_all_is_well(tmp_path):
    env = {"SPIRAL_HEUR_K": "soft(mk, 2, 1, sg)", "SPIRAL_HEUR_FILE": str(tmp_path / "h")}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = decide(DOMAIN, **CTX, environ=env)
    assert d.notes == () and d.source == "soft"


# ---------------------------------------------------------------- explain


def test_format_decision_lists_candidates_rules_and_winner(seed_readme_program, tmp_path):
    path = tmp_path / "heur.kdsl"
    HeurStore(path).append("soft(use_2ce, true, 1, c > 32768);", wins=10, trials=10)
    env = {"SPIRAL_HEUR_K": seed_readme_program, "SPIRAL_HEUR_FILE": str(path)}
    d = decide(DOMAIN, **CTX, environ=env, table={"use_2ce": False})
    text = format_decision(d)
    assert "problem: kind=topk rows=512 cols=65536 k=128 sg=True" in text
    assert "hard: mk=2 mkd=4 tile=2048 ctile=1024" in text
    assert "[hit] soft(mk, 2, 0.25, sg && k <= 128);   # SPIRAL_HEUR_K:14" in text
    assert f"[hit] soft(use_2ce, true, 1, c > 32768);   # {path}:4" in text
    lines = text.splitlines()
    cand = [ln for ln in lines if ln.startswith("  * ")]
    assert len(cand) == 1 and cand[0].split()[1] == "rewrite"
    assert any(ln.split()[:1] == ["table"] for ln in lines)
    assert lines[-1] == (
        "winner: mk=2 mkd=4 tile=2048 ctile=1024 use_2ce=true  source=hard "
        "(other fields by rewrite)  score=1.4500"
    )
    assert "SoftLogic: separable" in text


def test_unreadable_heur_file_is_reported(tmp_path):
    env = {"SPIRAL_HEUR_FILE": str(tmp_path)}  # a directory, not a file
    with pytest.raises(IsADirectoryError):
        decide(DOMAIN, **CTX, environ=env)
    with pytest.warns(SpiralKWarning, match="heur file"):
        d = decide(DOMAIN, **CTX, environ=env, on_error="warn", fallback=FALLBACK)
    assert d.source == "fallback"


def test_consensus_reads_only_the_gen_weight_variable(monkeypatch):
    monkeypatch.setenv("SPIRAL_HEUR_K", "this is not a program")
    assert consensus(DOMAIN, table={"tile": 1024}).gen_weight == 0.10
    monkeypatch.setenv("SPIRAL_HEUR_GEN_WEIGHT", "-0.5")
    with pytest.raises(ValueError, match="SPIRAL_HEUR_GEN_WEIGHT='-0.5'"):
        consensus(DOMAIN, table={"tile": 1024})
