"""Tuned tables (schema, lookup, atomic write), tune() with exactness checks, and the
self-rewrite loop (A/B trials → Wilson → heur file → plan_rank reads it back)."""

import dataclasses
import json
import math
import time

import numpy as np
import pytest

from spiraljax.kernels import Choice, DeviceCaps, plan_rank, timing, tuner
from spiraljax.kernels import table as tables
from spiraljax.kernels.plan import default_choice
from spiraljax.spiralk import HeurStore, parse, wilson_interval

CPU = DeviceCaps.cpu()
SMALL = dict(rows=2, cols=300, k=7)  # one interpreted compile per variant


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for name in ("SPIRAL_HEUR_K", "SPIRAL_HEUR_SOFT", "SPIRAL_HEUR_GEN_WEIGHT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("SPIRAL_HEUR_ON_ERROR", raising=False)
    monkeypatch.delenv("SPIRAL_HEUR_TABLE", raising=False)
    monkeypatch.setenv("SPIRAL_HEUR_FILE", str(tmp_path / "heur.kdsl"))
    return tmp_path


def fake_timer(cost):
    """A deterministic stand-in for ``timing.time_variants``: ``cost(choice) -> ms``."""
    calls = []

    def timer(kind, inputs, k, choices, **kw):
        calls.append((kind, k, list(choices), kw))
        return sorted(((c, float(cost(c)), None) for c in choices), key=lambda t: t[1])

    timer.calls = calls
    return timer


def _entry(kind="top", rows=1024, cols=65536, k=128, ranges=None, dtype="float32", **choice):
    e = {"kind": kind, "dtype": dtype, "rows": rows, "cols": cols, "k": k, "sg": False}
    for ax in ("rows", "cols", "k"):
        e[f"{ax}_min"], e[f"{ax}_max"] = (ranges or {}).get(ax, (None, None))
    e.update(choice=dataclasses.asdict(Choice(**choice)), ms=1.0)
    return e


def _table(*entries):
    return {"schema": tables.SCHEMA, "caps": dataclasses.asdict(CPU), "entries": list(entries)}


# ----------------------------------------------------------------------------- lookup


def test_no_table_for_this_device_means_none():
    assert tables.device_class() == "cpu"
    assert tables.default_table_path() is None  # nothing measured on this device class
    assert tables.choose(1024, 65536, 128, False) is None


def test_device_class_names():
    class Dev:
        platform = "gpu"
        device_kind = "NVIDIA H100 80GB HBM3"

    assert tables.device_class(Dev()) == "h100"
    Dev.device_kind = "NVIDIA H200"
    assert tables.device_class(Dev()) == "h200"


def test_lookup_containing_range_then_nearest():
    a = _entry(rows=64, cols=4096, k=16, ranges={"cols": (0, 16384)}, digit_bits=1)
    b = _entry(rows=64, cols=65536, k=16, ranges={"cols": (16385, None)}, digit_bits=3)
    t = _table(a, b)
    assert tables.choose(64, 20000, 16, False, t).digit_bits == 3  # inside b's range, nearer a
    assert tables.choose(64, 16384, 16, False, t).digit_bits == 1
    # Overlapping ranges: the nearest measured shape wins.
    c = _entry(rows=64, cols=2048, k=16, ranges={"cols": (0, 16384)}, digit_bits=4)
    assert tables.choose(64, 2000, 16, False, _table(a, c)).digit_bits == 4
    # No containing range: nearest in log2 distance.
    d = _entry(rows=64, cols=4096, k=16, ranges={"cols": (4000, 5000)}, digit_bits=2)
    e = _entry(rows=64, cols=1 << 20, k=16, ranges={"cols": (1 << 19, None)}, digit_bits=4)
    assert tables.choose(64, 8192, 16, False, _table(d, e)).digit_bits == 2
    assert tables.choose(64, 1 << 18, 16, False, _table(d, e)).digit_bits == 4


def test_lookup_filters_kind_dtype_sg():
    t = _table(
        _entry(kind="bottom", digit_bits=3), _entry(kind="top", dtype="bfloat16", digit_bits=4)
    )
    assert tables.choose(1024, 65536, 128, False, t, kind="mid") is None
    assert tables.choose(1024, 65536, 128, False, t, kind="bottom").digit_bits == 3
    assert tables.choose(1024, 65536, 128, False, t, kind="top", dtype="float32") is None
    assert tables.choose(1024, 65536, 128, False, t, kind="topk").digit_bits == 4
    assert tables.choose(1024, 65536, 128, True, t, kind="bottom") is None  # sg differs
    # dtype=None prefers float32 at equal distance
    t2 = _table(_entry(dtype="bfloat16", digit_bits=4), _entry(dtype="float32", digit_bits=2))
    assert tables.choose(1024, 65536, 128, False, t2).digit_bits == 2


def test_bad_tables_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="schema"):
        tables.choose(1, 2, 1, False, {"entries": []})
    with pytest.raises(ValueError, match=r"entries\[0\].*digit_bits"):
        tables.choose(1, 2, 1, False, _table({**_entry(), "choice": {"digit_bits": 9}}))
    with pytest.raises(ValueError, match=r"rows_min=5 exceeds rows_max=2"):
        tables.choose(1, 2, 1, False, _table(_entry(ranges={"rows": (5, 2)})))
    with pytest.raises(ValueError, match="ms=nan"):
        tables.choose(1, 2, 1, False, _table({**_entry(), "ms": math.nan}))
    path = tmp_path / "corrupt.json"
    path.write_text('{"schema": ')
    with pytest.raises(ValueError, match="corrupt.json is not valid JSON"):
        tables.choose(1, 2, 1, False, path)
    with pytest.raises(FileNotFoundError):
        tables.choose(1, 2, 1, False, tmp_path / "missing.json")


def test_write_table_is_atomic_and_validated(tmp_path):
    path = tmp_path / "sub" / "t.json"
    tables.write_table(_table(_entry(digit_bits=3)), path)
    assert json.loads(path.read_text())["entries"][0]["choice"]["digit_bits"] == 3
    with pytest.raises(ValueError):
        tables.write_table({"schema": "nope"}, path)
    assert json.loads(path.read_text())["entries"][0]["choice"]["digit_bits"] == 3  # untouched
    assert [p.name for p in path.parent.iterdir()] == ["t.json"]  # no temporary left


def test_grid_ranges_cover_every_problem():
    r = tuner._ranges([4096, 65536, 1024])
    assert r[1024] == (0, 2048) and r[4096] == (2049, 16384) and r[65536] == (16385, None)


def test_default_candidates_are_legal_and_include_the_builtin():
    for kind, rows, cols, k in [("top", 1, 1 << 24, 128), ("mid", 1024, 65536, 512)]:
        caps = DeviceCaps.cuda()
        cands = tuner.default_candidates(kind, rows, cols, k, caps)
        assert cands[0] == default_choice(kind, rows, cols, k, caps)
        assert len(set(cands)) == len(cands) > 5
        for ch in cands:
            ch.validate(caps, k)
            assert kind != "mid" or ch.filter_capacity == 0
        assert any(ch.multiblock for ch in cands)


def test_default_candidates_keep_rows_resident_only_up_to_twice_the_builtin_limit():
    caps = DeviceCaps.cuda()

    def resident(cols):
        cands = tuner.default_candidates("top", 1024, cols, 16, caps)
        return [ch for ch in cands if ch.tile >= cols and not ch.multiblock]

    assert resident(16384)  # 2 · RESIDENT_MAX: still tried
    assert not resident(16385)  # 32768-wide register rows: slow to compile, spilled
    assert not resident(65536)


# ----------------------------------------------------------------------------- tune


def test_tune_refuses_interpret_mode_by_default():
    with pytest.raises(ValueError, match="interpret mode"):
        tuner.tune(rows=[2], cols=[300], ks=[7])


def test_tune_with_a_fake_timer_writes_the_fastest(tmp_path):
    timer = fake_timer(
        lambda c: {1: 9.0, 2: 5.0, 3: 1.0, 4: 2.0}[c.digit_bits] + 0.1 * c.multiblock
    )
    out = tmp_path / "cpu.json"
    table = tuner.tune(
        rows=[2],
        cols=[300, 5000],
        ks=[7, 300, 5000],
        kinds=["top", "mid"],
        caps=CPU,
        allow_interpret=True,
        timer=timer,
        output=out,
    )
    assert json.loads(out.read_text()) == table
    assert table["schema"] == tables.SCHEMA and table["interpret"] is True
    assert table["caps"] == dataclasses.asdict(CPU) and table["versions"]["jax"]
    # k ≥ cols skipped: (300, k=7), (5000, k=7), (5000, k=300) per kind
    assert len(table["entries"]) == 2 * 3
    for e in table["entries"]:
        assert e["choice"]["digit_bits"] == 3 and e["ms"] == 1.0
        assert e["measured"][0]["ms"] == 1.0 and e["builtin_ms"] == 5.0
        assert e["kind"] != "mid" or all(m["choice"]["filter_capacity"] == 0 for m in e["measured"])
    assert all(kw["check"] is not None for *_, kw in timer.calls)
    assert tables.choose(64, 5000, 300, False, out).digit_bits == 3
    assert tables.choose(2, 5000, 300, False, out, kind="bottom") is None


def test_tune_excludes_variants_that_differ_from_xla(tmp_path):
    def lying_timer(kind, inputs, k, choices, check, **kw):
        x = np.asarray(inputs[0])
        out = []
        for c in choices:
            idx = np.argsort(x, axis=-1)[:, :k].astype(np.int32)  # the k smallest: wrong
            if c.digit_bits == 3:
                try:
                    check((np.take_along_axis(x, idx, -1), idx), 0)
                    err = None
                except AssertionError as e:
                    err = f"{type(e).__name__}: {e}"
                out.append((c, math.inf, err))
            else:
                out.append((c, 2.0, None))
        return out

    with pytest.warns(UserWarning, match="differs from the XLA path"):
        table = tuner.tune(
            rows=[2], cols=[300], ks=[7], caps=CPU, allow_interpret=True, timer=lying_timer
        )
    assert table["mismatches"] and table["mismatches"][0]["choice"]["digit_bits"] == 3
    assert all(m["choice"]["digit_bits"] != 3 for m in table["entries"][0]["measured"])


def test_tune_real_timer_checks_every_output(tmp_path):
    base = default_choice("top", 2, 300, 7, CPU)
    cands = [base, dataclasses.replace(base, digit_bits=4)]
    table = tuner.tune(
        rows=[2], cols=[300], ks=[7], caps=CPU, candidates=cands, repeats=1, batch=1,
        warmup=1, allow_interpret=True,
    )  # fmt: skip
    (e,) = table["entries"]
    assert not table["mismatches"]
    assert len(e["measured"]) == 2 and all(
        m["ms"] > 0 and m["error"] is None for m in e["measured"]
    )
    assert e["ms"] == min(m["ms"] for m in e["measured"])


def test_compile_variants_compiles_side_by_side_and_keeps_the_results():
    import jax.numpy as jnp

    base = default_choice("top", 2, 300, 7, CPU)
    cands = [base, dataclasses.replace(base, digit_bits=4), dataclasses.replace(base, digit_bits=3)]
    x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 300)).astype(np.float32))
    fns = timing.compile_variants("top", x, 7, cands, workers=3)
    assert set(fns) == set(cands)
    want = np.argsort(-np.asarray(x), axis=1, kind="stable")[:, :7]
    for ch in cands:
        _, idx = fns[ch](x)
        np.testing.assert_array_equal(np.asarray(idx), want)
        assert timing.COMPILE_SECONDS[("top", 7, ch, (2, 300), "float32")] > 0
    again = timing.compile_variants("top", x, 7, cands[::-1], workers=1)
    assert all(again[ch] is fns[ch] for ch in cands)  # kept, not compiled again


def test_compile_variants_reports_a_failing_variant_without_ending_the_sweep(monkeypatch):
    import jax.numpy as jnp

    base = default_choice("top", 2, 300, 5, CPU)
    bad = dataclasses.replace(base, digit_bits=3)
    real = timing._kernel_fn

    def kernel_fn(kind, k, choice):
        if choice == bad:
            raise RuntimeError("this variant does not lower")
        return real(kind, k, choice)

    monkeypatch.setattr(timing, "_kernel_fn", kernel_fn)
    x = jnp.zeros((2, 300), jnp.float32)
    res = timing.time_variants("top", [x], 5, [bad, base], reps=1, batch=1, warmup=0)
    assert res[0][0] == base and res[0][2] is None
    assert res[1][0] == bad and res[1][1] == math.inf and "does not lower" in res[1][2]
    with pytest.raises(ValueError, match="workers=0"):
        timing.compile_variants("top", x, 5, [base], workers=0)


# ----------------------------------------------------------------------------- self-rewrite


BAD_DEFAULT = "soft(mkd, 1, 0.5, true);"  # a deliberately bad default: 1-bit digits


def test_self_rewrite_moves_a_bad_default_to_the_measured_winner(monkeypatch, clean_env):
    monkeypatch.setenv("SPIRAL_HEUR_K", BAD_DEFAULT)
    before = plan_rank("top", **SMALL)
    assert before.source == "soft" and before.choice.digit_bits == 1
    timer = fake_timer(lambda c: {1: 9.0, 2: 5.0, 3: 1.0, 4: 2.0}[c.digit_bits])
    res = tuner.self_rewrite("top", **SMALL, allow_interpret=True, timer=timer)
    assert res.incumbent == before.choice
    assert res.candidate == dataclasses.replace(before.choice, digit_bits=3)
    assert res.status == "adopted" and res.wins == res.trials == 8  # min_trials
    assert res.interval == wilson_interval(8, 8)
    assert set(res.rules) == {
        'soft(mkd, 3, 1, kind == "topk" && r >= 2 && r < 4 && c >= 256 && c < 512 '
        "&& k >= 4 && k < 8);",
        'soft(mkd, 1, -1, kind == "topk" && r >= 2 && r < 4 && c >= 256 && c < 512 '
        "&& k >= 4 && k < 8);",
    }
    assert res.written == 2
    # The heur file is a valid program, read back by plan_rank: source "rewrite".
    store = HeurStore()
    parse((clean_env / "heur.kdsl").read_text())
    assert len(store.rules()) == 2
    after = plan_rank("top", **SMALL)
    assert after.source == "rewrite" and after.choice.digit_bits == 3 and res.plan_after == after
    # Scoped: another shape keeps the (bad) default.
    assert plan_rank("top", 2, 5000, 7).choice.digit_bits == 1
    # Running the loop again: the incumbent is now the fastest, nothing is written.
    again = tuner.self_rewrite("top", **SMALL, allow_interpret=True, timer=timer)
    assert again.status == "incumbent_best" and again.written == 0
    assert len(store.rules()) == 2


def test_self_rewrite_does_not_adopt_a_coin_flip(monkeypatch, clean_env):
    monkeypatch.setenv("SPIRAL_HEUR_K", BAD_DEFAULT)
    flips = iter([True, False] * 20)
    inc = plan_rank("top", **SMALL).choice
    cand = dataclasses.replace(inc, digit_bits=3)

    def timer(kind, inputs, k, choices, **kw):
        fast = cand if next(flips) else inc
        return [(c, 1.0 if c == fast else 2.0, None) for c in choices]

    res = tuner.self_rewrite(
        "top", **SMALL, candidate=cand, trials=12, allow_interpret=True, timer=timer
    )
    assert res.status == "below_threshold" and res.trials == 12 and res.wins == 6
    assert res.rules == () and res.written == 0
    assert not (clean_env / "heur.kdsl").exists()
    assert plan_rank("top", **SMALL).choice.digit_bits == 1


def test_self_rewrite_argument_errors():
    inc = plan_rank("top", **SMALL).choice
    with pytest.raises(ValueError, match="filter_capacity"):
        tuner.self_rewrite(
            "top", **SMALL, candidate=dataclasses.replace(inc, filter_capacity=1024),
            allow_interpret=True, timer=fake_timer(lambda c: 1.0),
        )  # fmt: skip
    with pytest.raises(ValueError, match="trials=3"):
        tuner.self_rewrite("top", **SMALL, trials=3, allow_interpret=True)
    with pytest.raises(ValueError, match="interpret mode"):
        tuner.self_rewrite("top", **SMALL)


def test_self_rewrite_real_timer_mechanics(clean_env):
    inc = plan_rank("top", **SMALL).choice
    cand = dataclasses.replace(inc, digit_bits=4)
    res = tuner.self_rewrite(
        "top", **SMALL, candidate=cand, trials=2, min_trials=2, repeats=1, batch=1,
        allow_interpret=True,
    )  # fmt: skip
    assert res.trials == 2 and 0 <= res.wins <= 2
    assert all(math.isfinite(a) and math.isfinite(b) for a, b in res.timings)
    assert res.status in ("adopted", "below_threshold")
    assert (res.written > 0) == (res.status == "adopted")
    assert res.plan_after.choice.validate(CPU, SMALL["k"])
    if res.written:
        parse((clean_env / "heur.kdsl").read_text())


def test_tune_explicit_shapes():
    timer = fake_timer(lambda c: 1.0 + c.digit_bits)
    table = tuner.tune(
        shapes=[(2, 300, 7), (1, 5000, 9)], caps=CPU, allow_interpret=True, timer=timer
    )
    got = [(e["rows"], e["cols"], e["k"]) for e in table["entries"]]
    assert got == [(2, 300, 7), (1, 5000, 9)]
    assert table["entries"][1]["rows_max"] == 1 and table["entries"][0]["rows_min"] == 2
    assert all(
        e["choice"]["digit_bits"] == 2 for e in table["entries"]
    )  # candidates: digit_bits ≥ 2
    with pytest.raises(ValueError, match="triples"):
        tuner.tune(shapes=[(2, 300)], allow_interpret=True, timer=timer)


def test_time_interleaved_times_every_entry_and_checks_every_batch():
    from spiraljax.kernels.timing import time_interleaved

    seen = {"a": [], "b": []}
    calls = {"a": 0, "b": 0}

    def make(name, delay):
        def fn(x):
            calls[name] += 1
            time.sleep(delay)
            return x

        return fn

    entries = {
        name: (make(name, d), [0, 1, 2], lambda o, i, name=name: seen[name].append((o, i)), None)
        for name, d in (("a", 0.0), ("b", 0.002))
    }
    out = time_interleaved(entries, reps=4, batch=3, warmup=1)
    assert set(out) == {"a", "b"} and out["b"] > out["a"] >= 0.0
    assert out["b"] >= 2.0  # ms: the sleep is in the timed batches
    assert calls == {"a": 1 + 4 * 3, "b": 1 + 4 * 3}
    # one check per batch (warmup included), on the input that produced that output
    assert len(seen["a"]) == 5 and all(o == i for o, i in seen["a"])
