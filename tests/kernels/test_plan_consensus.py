"""plan_rank through SpiralK consensus: each source wins when it should, the environment is
respected, bad programs are reported, and the plan really drives the Pallas kernel."""

import dataclasses
import json
import math
import os
import warnings

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rankk_reference import pallas_grids, random_input, ref_indices

from spiraljax.kernels import Choice, DeviceCaps, candidate_domain, plan_rank, topk
from spiraljax.kernels.choice import DSL_FIELDS
from spiraljax.kernels.plan import SOURCES, default_choice, explain_plan
from spiraljax.kernels.table import SCHEMA
from spiraljax.spiralk import SpiralKError, SpiralKWarning

CUDA = DeviceCaps.cuda()
SHAPE = ("top", 1024, 65536, 16)  # streamed, filtered, many rows
ENV = (
    "SPIRAL_HEUR_K",
    "SPIRAL_HEUR_SOFT",
    "SPIRAL_HEUR_GEN_WEIGHT",
    "SPIRAL_HEUR_ON_ERROR",
    "SPIRAL_HEUR_TABLE",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SPIRAL_HEUR_FILE", str(tmp_path / "heur.kdsl"))
    return tmp_path


def _builtin(kind="top", rows=1024, cols=65536, k=16, caps=CUDA):
    return default_choice(kind, rows, cols, k, caps)


def _table(tmp_path, choice: Choice, caps=CUDA, kind="top", name="table.json"):
    table = {
        "schema": SCHEMA,
        "caps": dataclasses.asdict(caps),
        "sg": caps.subgroup,
        "entries": [
            {
                "kind": kind,
                "dtype": "float32",
                "rows": 1024,
                "cols": 65536,
                "k": 16,
                "rows_min": 0,
                "rows_max": None,
                "cols_min": 0,
                "cols_max": None,
                "k_min": 0,
                "k_max": None,
                "sg": caps.subgroup,
                "choice": dataclasses.asdict(choice),
                "ms": 1.0,
            }
        ],
    }
    path = tmp_path / name
    path.write_text(json.dumps(table))
    return path


def test_sources_are_documented():
    assert set(SOURCES) == {"hard", "soft", "table", "rewrite", "fallback", "builtin"}


def test_no_input_is_the_builtin_policy():
    plan = plan_rank(*SHAPE, CUDA)
    assert plan.source == "builtin" and plan.score == 0.0
    assert plan.choice == _builtin()


def test_hard_assignments_win_and_leave_other_fields_builtin(monkeypatch):
    monkeypatch.setenv("SPIRAL_HEUR_K", "mkd: 4; tile: sel(c > 32768, 1024, 512); ch: 4;")
    plan = plan_rank(*SHAPE, CUDA)
    assert plan.source == "hard"
    want = dataclasses.replace(_builtin(), digit_bits=4, tile=1024, chunks=4)
    assert plan.choice == want


def test_hard_beats_soft_and_table(monkeypatch, tmp_path):
    monkeypatch.setenv("SPIRAL_HEUR_K", "mkd: 1; soft(mkd, 3, 5.0, true);")
    monkeypatch.setenv("SPIRAL_HEUR_TABLE", str(_table(tmp_path, Choice(digit_bits=4))))
    plan = plan_rank(*SHAPE, CUDA)
    assert plan.source == "hard" and plan.choice.digit_bits == 1


def test_soft_rule_wins_and_is_scored(monkeypatch):
    monkeypatch.setenv("SPIRAL_HEUR_K", "soft(mkd, 3, 0.5, c > 1000); soft(mkd, 4, 0.2, true);")
    plan = plan_rank(*SHAPE, CUDA)
    assert plan.source == "soft" and plan.score == pytest.approx(0.5)
    assert plan.choice == dataclasses.replace(_builtin(), digit_bits=3)
    # A condition that does not hold leaves the plan alone.
    plan = plan_rank("top", 1024, 512, 16, CUDA)
    assert plan.choice.digit_bits == 4 and plan.score == pytest.approx(0.2)


def test_soft_switch_off_ignores_soft_rules(monkeypatch):
    monkeypatch.setenv("SPIRAL_HEUR_K", "soft(mkd, 3, 0.5, true);")
    monkeypatch.setenv("SPIRAL_HEUR_SOFT", "0")
    plan = plan_rank(*SHAPE, CUDA)
    assert plan.choice == _builtin() and plan.source == "fallback"
    monkeypatch.setenv("SPIRAL_HEUR_SOFT", "maybe")
    with pytest.raises(ValueError, match="SPIRAL_HEUR_SOFT='maybe'"):
        plan_rank(*SHAPE, CUDA)


def test_table_entry_wins_weighted_by_gen_weight(monkeypatch, tmp_path):
    tuned = dataclasses.replace(_builtin(), digit_bits=4, warps=4)
    monkeypatch.setenv("SPIRAL_HEUR_TABLE", str(_table(tmp_path, tuned)))
    plan = plan_rank(*SHAPE, CUDA)
    assert plan.source == "table" and plan.choice == tuned
    assert plan.score == pytest.approx(0.10)  # SPIRAL_HEUR_GEN_WEIGHT default
    # A soft rule of weight 0.5 for another mkd beats the table's 0.10 bonus …
    monkeypatch.setenv("SPIRAL_HEUR_K", "soft(mkd, 3, 0.5, true);")
    plan = plan_rank(*SHAPE, CUDA)
    assert plan.source == "soft" and plan.choice.digit_bits == 3
    # … but not a bonus of 1.0.
    monkeypatch.setenv("SPIRAL_HEUR_GEN_WEIGHT", "1.0")
    plan = plan_rank(*SHAPE, CUDA)
    assert plan.source == "table" and plan.choice == tuned and plan.score == pytest.approx(1.0)
    monkeypatch.setenv("SPIRAL_HEUR_GEN_WEIGHT", "-1")
    with pytest.raises(ValueError, match="SPIRAL_HEUR_GEN_WEIGHT='-1'"):
        plan_rank(*SHAPE, CUDA)


def test_table_of_another_device_or_kind_is_not_used(monkeypatch, tmp_path):
    tuned = dataclasses.replace(_builtin(), digit_bits=4)
    monkeypatch.setenv("SPIRAL_HEUR_TABLE", str(_table(tmp_path, tuned, caps=DeviceCaps.cuda(64))))
    assert plan_rank(*SHAPE, CUDA).source == "builtin"
    monkeypatch.setenv("SPIRAL_HEUR_TABLE", str(_table(tmp_path, tuned, kind="bottom", name="b")))
    assert plan_rank(*SHAPE, CUDA).source == "builtin"
    assert plan_rank("bottom", 1024, 65536, 16, CUDA).source == "table"


def test_table_entry_is_adapted_to_the_problem(monkeypatch, tmp_path):
    # ordering=1 is illegal above k=256, filter_capacity is Top/Bottom-K only: the entry is adapted.
    tuned = dataclasses.replace(_builtin(), ordering=1, filter_capacity=4096, digit_bits=4)
    monkeypatch.setenv("SPIRAL_HEUR_TABLE", str(_table(tmp_path, tuned, kind="mid")))
    plan = plan_rank("mid", 1024, 65536, 1000, CUDA)
    assert plan.source == "table" and plan.choice.ordering == 0 and plan.choice.filter_capacity == 0
    assert plan.choice.digit_bits == 4


def test_broken_table_is_reported(monkeypatch, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    monkeypatch.setenv("SPIRAL_HEUR_TABLE", str(bad))
    with pytest.raises(ValueError, match="bad.json"):
        plan_rank(*SHAPE, CUDA)
    monkeypatch.setenv("SPIRAL_HEUR_ON_ERROR", "warn")
    with pytest.warns(SpiralKWarning, match="bad.json"):
        assert plan_rank(*SHAPE, CUDA).choice == _builtin()


def test_rewrite_rules_from_the_heur_file_win(clean_env):
    heur = clean_env / "heur.kdsl"
    heur.write_text('soft(mkd, 3, 1, kind == "topk" && c >= 65536);\n')
    plan = plan_rank(*SHAPE, CUDA)
    assert plan.source == "rewrite" and plan.choice == dataclasses.replace(_builtin(), digit_bits=3)
    assert plan_rank("bottom", 1024, 65536, 16, CUDA).source == "fallback"  # condition false
    # An edit of the file is read back (plans are cached per file mtime).
    heur.write_text('soft(mkd, 4, 1, kind == "topk");\n')
    st = os.stat(heur)
    os.utime(heur, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert plan_rank(*SHAPE, CUDA).choice.digit_bits == 4


def test_bad_program_raises_with_position(monkeypatch):
    monkeypatch.setenv("SPIRAL_HEUR_K", "mkd: 4;\ntile: sel(c > 1, 2048;")
    with pytest.raises(SpiralKError) as info:
        plan_rank(*SHAPE, CUDA)
    assert "SPIRAL_HEUR_K:2:22" in str(info.value) and "^" in str(info.value)


def test_bad_program_warns_loudly_in_warn_mode(monkeypatch):
    monkeypatch.setenv("SPIRAL_HEUR_K", "mkd: 4 +;")
    monkeypatch.setenv("SPIRAL_HEUR_ON_ERROR", "warn")
    with pytest.warns(SpiralKWarning, match="SPIRAL_HEUR_K"):
        plan = plan_rank(*SHAPE, CUDA)
    assert plan.source == "fallback" and plan.choice == _builtin()
    assert any("SPIRAL_HEUR_K" in n for n in explain_plan(*SHAPE, CUDA).notes)


def test_evaluation_error_is_reported(monkeypatch):
    monkeypatch.setenv("SPIRAL_HEUR_K", "tile: 1024 / (k - 16);")
    with pytest.raises(SpiralKError, match="division"):
        plan_rank(*SHAPE, CUDA)


def test_illegal_hard_value_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("SPIRAL_HEUR_K", "mk: 2;")  # the seed's warp merge: no such kernel
    with pytest.raises(ValueError, match=r"mk=2 is not a legal value"):
        plan_rank(*SHAPE, CUDA)
    monkeypatch.setenv("SPIRAL_HEUR_K", "mk: 1;")  # counting rank needs k ≤ 256
    with pytest.raises(ValueError, match=r"mk=1 is not a legal value"):
        plan_rank("top", 64, 65536, 1000, CUDA)
    monkeypatch.setenv("SPIRAL_HEUR_K", "tile: 300;")
    with pytest.raises(ValueError, match=r"plan_rank\('top', rows=1024.*tile=300"):
        plan_rank(*SHAPE, CUDA)


def test_fields_without_a_kernel_warn(monkeypatch):
    monkeypatch.setenv("SPIRAL_HEUR_K", "wg: 256; mkd: 3;")
    with pytest.warns(SpiralKWarning, match="wg"):
        plan = plan_rank("top", 999, 65536, 16, CUDA)
    assert plan.source == "hard" and plan.choice.digit_bits == 3


def test_seed_readme_program_plans_on_cpu(monkeypatch):
    from pathlib import Path

    seed = (Path(__file__).parents[1] / "spiralk" / "conftest.py").read_text()
    program = seed.split('SEED_README_PROGRAM = """')[1].split('"""')[0]
    monkeypatch.setenv("SPIRAL_HEUR_K", program)
    caps = DeviceCaps.cpu()  # sg false: mk = sel(k<=2048, 1, 0) = 1, mkd = 1
    plan = plan_rank("top", 64, 65536, 16, caps)
    assert plan.source == "hard"
    assert (
        plan.choice.ordering,
        plan.choice.digit_bits,
        plan.choice.tile,
        plan.choice.compact_tile,
    ) == (
        1,
        1,
        2048,
        1024,
    )
    # On a GPU with k ≤ 128 the program asks for mk = 2, a kernel spiraljax does not have.
    with pytest.raises(ValueError, match="mk=2"):
        plan_rank("top", 64, 65536, 16, CUDA)


def test_plans_are_cached_and_cheap(monkeypatch):
    monkeypatch.setenv("SPIRAL_HEUR_K", "soft(mkd, 3, 0.5, true);")
    a = plan_rank(*SHAPE, CUDA)
    assert plan_rank(*SHAPE, CUDA) is a
    monkeypatch.setenv("SPIRAL_HEUR_K", "soft(mkd, 4, 0.5, true);")
    assert plan_rank(*SHAPE, CUDA).choice.digit_bits == 4


@pytest.mark.parametrize("kind", ["top", "bottom", "mid"])
@pytest.mark.parametrize("rows,cols,k", [(1, 1 << 26, 128), (8192, 4096, 8), (64, 1 << 20, 300)])
def test_every_plan_is_legal(kind, rows, cols, k, monkeypatch):
    monkeypatch.setenv("SPIRAL_HEUR_K", "soft(mk, 1, 0.3, true); soft(ch, 64, 0.2, r < 8);")
    plan = plan_rank(kind, rows, cols, k, CUDA)
    assert plan.choice.validate(CUDA, k) is plan.choice
    if k > 256:
        assert plan.choice.ordering == 0  # the illegal preference is never chosen
    if kind == "mid":
        assert plan.choice.filter_capacity == 0


# ------------------------------------------------------------- plans drive the kernel


@pytest.mark.parametrize(
    "program,grids",
    [
        # multi-block: one radix-pass kernel (a while loop launches it per pass), then count
        # and write, each on a rows × ch grid
        ("u2: true; ch: 2; mkd: 4; tile: 256; ctile: 256;", [(3, 2)] * 3),
        # fused (one program per row, one launch), chosen by a soft rule
        ("soft(mkd, 4, 1.0, true); soft(u2, false, 2.0, true); soft(tile, 2048, 1, true);", [(3,)]),
    ],
)
def test_plan_selects_the_kernel_variant(program, grids, monkeypatch):
    monkeypatch.setenv("SPIRAL_HEUR_K", program)
    x = random_input(np.random.default_rng(3), (3, 1100), jnp.float32, ties=True)
    plan = plan_rank("top", 3, 1100, 9)  # what topk(implementation="pallas") plans on CPU
    f = lambda a: topk(a, 9, implementation="pallas")  # noqa: E731
    assert [g for g, _ in pallas_grids(f, jnp.asarray(x))] == grids
    assert plan.choice.digit_bits == 4
    _, idx = f(jnp.asarray(x))
    np.testing.assert_array_equal(np.asarray(idx), ref_indices(x, 9, "top"))


def test_without_input_the_kernel_gets_the_builtin_plan():
    # Sanity: without SpiralK input the kernel runs the built-in plan's shape.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plan = plan_rank("top", 3, 1100, 9)
    assert plan.source == "builtin" and not plan.choice.multiblock


_DOM = candidate_domain(CUDA)


@settings(deadline=None)
@given(
    rules=st.lists(
        st.tuples(
            st.sampled_from(sorted(_DOM)),
            st.integers(0, 70000),
            st.floats(-2, 2, allow_nan=False),
            st.booleans(),
        ),
        max_size=6,
    ),
    kind=st.sampled_from(["top", "bottom", "mid"]),
    rows=st.integers(1, 1 << 14),
    cols=st.integers(1, 1 << 22),
    kfrac=st.floats(0, 1),
)
def test_property_any_soft_program_gives_a_legal_plan(rules, kind, rows, cols, kfrac):
    k = int(kfrac * cols)
    src = []
    for field, value, w, pick_legal in rules:
        vals = _DOM[field]
        v = vals[value % len(vals)] if pick_legal else value
        name = DSL_FIELDS.get(field, field)
        if name == "fcap":
            continue  # no SpiralK field
        text = ("true" if v else "false") if name == "use_2ce" else str(int(v))
        src.append(f"soft({name}, {text}, {w!r}, true);")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPIRAL_HEUR_K", " ".join(src))
        plan = plan_rank(kind, rows, cols, k, CUDA)
    assert plan.source in SOURCES and math.isfinite(plan.score)
    assert plan.choice.validate(CUDA, k) is plan.choice
    if not src:
        assert plan.source == "builtin"
