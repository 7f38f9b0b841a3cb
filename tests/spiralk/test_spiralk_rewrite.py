"""Self-rewrite: Wilson interval, A/B adoption, the heur-file store (locking, dedupe,
corruption, concurrency)."""

import fcntl
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from scipy.stats import binomtest, norm

from spiraljax.spiralk import ABTest, HeurStore, SpiralKError, parse, wilson_interval
from spiraljax.spiralk.config import default_heur_path

# ---------------------------------------------------------------- Wilson interval


def test_wilson_eight_of_ten_by_hand():
    # p̂ = 0.8, n = 10, z = 1.96, z² = 3.8416, z²/n = 0.38416, 1 + z²/n = 1.38416
    # center = (0.8 + 3.8416/20) / 1.38416 = 0.99208 / 1.38416 = 0.716738
    # half   = 1.96 · sqrt(0.8·0.2/10 + 3.8416/400) / 1.38416
    #        = 1.96 · sqrt(0.016 + 0.009604) / 1.38416 = 1.96 · 0.160012 / 1.38416 = 0.226581
    lower, upper = wilson_interval(8, 10, z=1.96)
    assert lower == pytest.approx(0.716738 - 0.226581, abs=2e-6)  # 0.490157
    assert upper == pytest.approx(0.716738 + 0.226581, abs=2e-6)  # 0.943319
    assert wilson_interval(8, 10) == (lower, upper)  # z = 1.96 is the default


@pytest.mark.parametrize("n", [1, 2, 7, 10, 40, 1000])
def test_wilson_matches_scipy(n):
    z = float(norm.ppf(0.975))
    for s in sorted({0, 1, n // 3, n // 2, n - 1, n}):
        if not 0 <= s <= n:
            continue
        ci = binomtest(s, n).proportion_ci(confidence_level=0.95, method="wilson")
        lower, upper = wilson_interval(s, n, z=z)
        assert lower == pytest.approx(ci.low, abs=1e-12)
        assert upper == pytest.approx(ci.high, abs=1e-12)
        assert 0.0 <= lower <= s / n <= upper <= 1.0


def test_wilson_properties():
    assert wilson_interval(0, 5)[0] == 0.0
    assert wilson_interval(5, 5)[1] == 1.0
    # Narrower with more trials at the same rate; wider with larger z.
    w = [wilson_interval(3 * m, 4 * m) for m in (1, 10, 100)]
    widths = [u - l for l, u in w]
    assert widths[0] > widths[1] > widths[2]
    assert wilson_interval(6, 8, z=3.0)[0] < wilson_interval(6, 8, z=1.0)[0]
    lo, hi = wilson_interval(2**40, 2**41)
    assert lo < 0.5 < hi and hi - lo < 1e-5


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((1, 0), "trials=0"),
        ((-1, 3), "successes=-1"),
        ((4, 3), "successes=4"),
        ((1.5, 3), "successes=1.5"),
        ((1, 3.0), "trials=3.0"),
        ((True, 3), "successes=True"),
    ],
)
def test_wilson_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        wilson_interval(*args)


@pytest.mark.parametrize("z", [0.0, -1.0, math.inf, math.nan])
def test_wilson_bad_z(z):
    with pytest.raises(ValueError, match="z="):
        wilson_interval(1, 2, z=z)


# ---------------------------------------------------------------- A/B adoption


def _reference_status(wins, trials, min_trials=8, baseline=0.5, z=1.96):
    if trials < min_trials:
        return "collecting"
    ci = binomtest(wins, trials).proportion_ci(
        confidence_level=2 * norm.cdf(z) - 1, method="wilson"
    )
    return "adopted" if ci.low > baseline else "below_threshold"


@pytest.mark.parametrize("pattern", ["W" * 12, "WWWWWWLW", "WLWLWLWLWLWL", "WWWWWWLL" * 3])
def test_adoption_follows_wilson_rule(pattern):
    ab = ABTest({"tile": 256}, {"tile": 2048})
    wins = 0
    for i, outcome in enumerate(pattern, start=1):
        wins += outcome == "W"
        status = ab.record(outcome == "W")
        assert status == _reference_status(wins, i), (pattern, i)
        assert (ab.wins, ab.trials) == (wins, i)


def test_adoption_by_hand():
    # 8/8 wins: center = (1 + 3.8416/16)/(1 + 3.8416/8) = 1.2401/1.4802 = 0.83779,
    # half = 1.96·sqrt(3.8416/256)/1.4802 = 1.96·0.122500/1.4802 = 0.16221 → lower 0.6756 > 0.5.
    ab = ABTest({"mk": 1}, {"mk": 2}, min_trials=8)
    for _ in range(7):
        assert ab.record(True) == "collecting"
    assert ab.rules() == []
    assert ab.record(True) == "adopted"
    assert ab.interval()[0] == pytest.approx(0.6756, abs=1e-4)
    # 6/8: center = (0.75 + 0.2401)/1.4802 = 0.66889, half = 1.96·sqrt(0.0234375 + 0.0150063)
    # /1.4802 = 0.25963 → lower 0.4093 < 0.5: below threshold.
    ab = ABTest({"mk": 1}, {"mk": 2})
    for won in [True] * 6 + [False] * 2:
        ab.record(won)
    assert ab.status == "below_threshold"
    assert ab.interval()[0] == pytest.approx(0.4093, abs=1e-4)
    assert ab.rules() == []


def test_adopted_rules_parse_and_carry_provenance(tmp_path):
    ab = ABTest(
        {"tile": 256, "mk": 1, "u2": False},
        {"tile": 2048, "mk": 1, "use_2ce": True},
        cond="(c > 8192)&&(k<=128)",
        weight=0.75,
    )
    for _ in range(10):
        ab.record_timing(2.0e-3, 1.5e-3)
    assert ab.status == "adopted"
    rules = ab.rules()
    assert rules == [
        "soft(tile, 2048, 0.75, c > 8192 && k <= 128);",
        "soft(tile, 256, -0.75, c > 8192 && k <= 128);",
        "soft(use_2ce, true, 0.75, c > 8192 && k <= 128);",
        "soft(use_2ce, false, -0.75, c > 8192 && k <= 128);",
    ]
    out = parse("\n".join(rules)).evaluate(cols=16384, k=64)
    assert [(r.field, r.value, r.weight) for r in out.soft] == [
        ("tile", 2048, 0.75),
        ("tile", 256, -0.75),
        ("use_2ce", True, 0.75),
        ("use_2ce", False, -0.75),
    ]
    assert parse("\n".join(rules)).evaluate(cols=100, k=64).soft == []
    prov = ab.provenance()
    assert (prov["wins"], prov["trials"], prov["baseline"], prov["min_trials"]) == (10, 10, 0.5, 8)
    assert prov["wilson_lower"] == pytest.approx(wilson_interval(10, 10)[0], abs=1e-6)

    store = HeurStore(tmp_path / "heur.kdsl")
    assert ab.commit(store, shape="512x16384", trials=99) == 4  # extra keys may override
    assert ab.commit(store) == 0  # deduplicated
    text = (tmp_path / "heur.kdsl").read_text()
    comment = [ln for ln in text.splitlines() if ln.startswith("# rewrite ")]
    assert len(comment) == 1
    record = json.loads(comment[0][len("# rewrite ") :])
    assert record["wins"] == 10 and record["candidate"]["tile"] == 2048 and "time" in record
    assert record["shape"] == "512x16384" and record["trials"] == 99
    assert store.rules() == rules


def test_no_penalty_rule_when_disabled():
    ab = ABTest({"tile": 256}, {"tile": 2048}, penalize_incumbent=False, min_trials=1)
    # 6/6 wins: lower = (1 + 0.32013)/1.64027 − 1.96·sqrt(3.8416/144)/1.64027 = 0.6097 > 0.5
    for _ in range(6):
        ab.record(True)
    assert ab.rules() == ["soft(tile, 2048, 1, true);"]


def test_timing_ties_favour_the_incumbent():
    ab = ABTest({"tile": 256}, {"tile": 2048})
    ab.record_timing(1.0, 1.0)
    ab.record_timing(1.0, 0.5)
    assert (ab.wins, ab.trials) == (1, 2)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        (dict(candidate={"tile": 256}), ValueError, "does not differ"),
        (dict(candidate={"foo": 1}), ValueError, "not a SpiralK field"),
        (dict(candidate={"tile": 2.5}), ValueError, "must be an integer"),
        (dict(candidate={"u2": 1}), ValueError, "must be a bool"),
        (dict(incumbent=[1]), ValueError, "must be a mapping"),
        (dict(cond="c >"), SpiralKError, "expected an expression"),
        (dict(cond=3), ValueError, "cond=3"),
        (dict(weight=0), ValueError, "weight=0"),
        (dict(weight=math.inf), ValueError, "weight=inf"),
        (dict(min_trials=0), ValueError, "min_trials=0"),
        (dict(baseline=1.0), ValueError, "baseline=1.0"),
        (dict(z=-1), ValueError, "z=-1"),
    ],
)
def test_abtest_bad_input(kwargs, exc, match):
    args = dict(incumbent={"tile": 256}, candidate={"tile": 2048})
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        ABTest(args.pop("incumbent"), args.pop("candidate"), **args)


def test_abtest_bad_records():
    ab = ABTest({"tile": 256}, {"tile": 2048})
    with pytest.raises(ValueError, match="candidate_won=1"):
        ab.record(1)
    with pytest.raises(ValueError, match="incumbent_seconds=nan"):
        ab.record_timing(math.nan, 1.0)
    with pytest.raises(ValueError, match="candidate_seconds=-1"):
        ab.record_timing(1.0, -1)
    assert ab.trials == 0


# ---------------------------------------------------------------- HeurStore


def test_default_path(monkeypatch, tmp_path):
    monkeypatch.setenv("SPIRAL_HEUR_FILE", str(tmp_path / "x.kdsl"))
    assert HeurStore().path == tmp_path / "x.kdsl"
    monkeypatch.setenv("SPIRAL_HEUR_FILE", "")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert HeurStore().path == tmp_path / ".spiraljax" / "heur.kdsl"
    assert default_heur_path({"SPIRAL_HEUR_FILE": "~/y.kdsl"}) == tmp_path / "y.kdsl"


def test_append_dedupe_and_read_back(tmp_path):
    path = tmp_path / "sub" / "heur.kdsl"
    store = HeurStore(path)
    assert store.rules() == [] and store.program().statements == ()
    assert store.append("soft(tile, 2048, 0.5, c > 8192);", wins=9, trials=10)
    assert not store.append("soft( tile ,2048, .5 , (c>8192) )  # same rule, other spelling")
    assert store.append("soft(u2, true, 0.5, true)")
    assert store.rules() == [
        "soft(tile, 2048, 0.5, c > 8192);",
        "soft(use_2ce, true, 0.5, true);",
    ]
    # The whole file is a SpiralK program, read back by a fresh store too.
    program = parse(path.read_text())
    assert HeurStore(path).program() == program
    out = program.evaluate(cols=10000)
    assert [(r.field, r.value) for r in out.soft] == [("tile", 2048), ("use_2ce", True)]
    assert path.read_text().startswith("# spiraljax SpiralK heuristics")
    # No temporary files left behind; the lock file is a sibling.
    assert sorted(p.name for p in path.parent.iterdir()) == [".heur.kdsl.lock", "heur.kdsl"]


def test_append_rejects_non_rules(tmp_path):
    store = HeurStore(tmp_path / "h.kdsl")
    for bad in ["tile: 2048", "soft(mk,1,1,true); soft(mk,2,1,true)", "", 42]:
        with pytest.raises(ValueError, match="one soft"):
            store.append(bad)
    with pytest.raises(SpiralKError, match="expected"):
        store.append("soft(mk, 1, 1")
    with pytest.raises(ValueError, match="JSON"):
        store.append("soft(mk, 1, 1, true)", blob=object())
    assert not (tmp_path / "h.kdsl").exists()


def test_other_writers_are_seen(tmp_path):
    a, b = HeurStore(tmp_path / "h.kdsl"), HeurStore(tmp_path / "h.kdsl")
    assert a.append("soft(mk, 1, 1, true)")
    assert b.append("soft(mk, 2, 1, true)")
    assert not a.append("soft(mk, 2, 1, true)")  # written by b, seen by a
    assert len(a.rules()) == 2
    # A hand edit that rewrites the file (not an append) is re-read in full.
    (tmp_path / "h.kdsl").write_text("soft(mk, 0, 1, true)\n")
    assert not a.append("soft(mk, 0, 1, true)")
    assert a.append("soft(mk, 1, 1, true)")
    assert a.rules() == ["soft(mk, 0, 1, true);", "soft(mk, 1, 1, true);"]


def test_corrupt_file_error_names_file_line_and_column(tmp_path):
    path = tmp_path / "heur.kdsl"
    original = "soft(tile, 2048, 1, true);\n# fine\nsoft(tile, , 1, true);\n"
    path.write_text(original)
    store = HeurStore(path)
    for action in (store.rules, store.program, lambda: store.append("soft(mk, 1, 1, true)")):
        with pytest.raises(SpiralKError) as info:
            action()
        err = info.value
        assert err.filename == str(path)
        assert (err.line, err.column) == (3, 12)
        assert str(err).startswith(f"{path}:3:12: expected an expression")
    assert path.read_text() == original  # never overwritten


def test_invalid_utf8_is_a_positioned_error(tmp_path):
    path = tmp_path / "heur.kdsl"
    path.write_bytes(b"soft(mk, 1, 1, true);\nsoft(mk, \xff, 1, true);\n")
    with pytest.raises(SpiralKError) as info:
        HeurStore(path).rules()
    assert info.value.filename == str(path)
    assert (info.value.line, info.value.column) == (2, 10)
    assert "invalid UTF-8 byte 0xff" in str(info.value)


def test_corrupt_appended_tail_is_caught_incrementally(tmp_path):
    path = tmp_path / "h.kdsl"
    store = HeurStore(path)
    assert store.append("soft(mk, 1, 1, true)")
    with open(path, "a") as fh:
        fh.write("soft(mk, 2, 1, true\n")
    lines = path.read_text().count("\n")
    with pytest.raises(SpiralKError) as info:
        store.append("soft(mk, 3, 1, true)")
    assert info.value.line == lines + 1 and info.value.filename == str(path)


def test_invalid_utf8_appended_by_another_writer_names_the_file_line(tmp_path):
    path = tmp_path / "h.kdsl"
    store = HeurStore(path)
    assert store.append("soft(mk, 1, 1, true)")  # this store has now seen the file
    n = path.read_bytes().count(b"\n")
    with open(path, "ab") as fh:  # another writer
        fh.write(b"soft(mk, \xff, 1, true);\n")
    before = path.read_bytes()
    for action in (lambda: store.append("soft(mk, 2, 1, true)"), store.rules):
        with pytest.raises(SpiralKError) as info:
            action()
        err = info.value
        assert (err.filename, err.line, err.column) == (str(path), n + 1, 10)
        assert str(err).startswith(f"{path}:{n + 1}:10: invalid UTF-8 byte 0xff")
        assert err.excerpt.lstrip().startswith(f"{n + 1} | soft(mk, ")
    assert path.read_bytes() == before  # never overwritten


def test_append_through_a_symlink_writes_the_target(tmp_path):
    (tmp_path / "shared").mkdir()
    (tmp_path / "home").mkdir()
    target = tmp_path / "shared" / "heur.kdsl"
    link = tmp_path / "home" / "heur.kdsl"
    link.symlink_to(Path("..") / "shared" / "heur.kdsl")  # relative, dangling until written
    via_link, via_target = HeurStore(link), HeurStore(target)
    assert via_link.real_path == via_target.real_path == target.resolve()
    assert via_link.lock_path == via_target.lock_path == target.resolve().parent / ".heur.kdsl.lock"

    assert via_link.append("soft(mk, 1, 1, true)")  # creates the target
    assert link.is_symlink() and target.is_file() and not target.is_symlink()
    assert via_target.rules() == ["soft(mk, 1, 1, true);"]
    assert via_target.append("soft(mk, 2, 1, true)")
    assert not via_link.append("soft(mk, 2, 1, true)")  # written through the real path
    assert link.is_symlink() and via_link.rules() == via_target.rules()
    assert len(via_link.rules()) == 2
    # Lock and temporary files live beside the target only.
    assert [p.name for p in (tmp_path / "home").iterdir()] == ["heur.kdsl"]
    assert sorted(p.name for p in (tmp_path / "shared").iterdir()) == [
        ".heur.kdsl.lock",
        "heur.kdsl",
    ]


def test_writers_through_link_and_real_path_exclude_each_other(tmp_path):
    target = tmp_path / "real" / "heur.kdsl"
    link = tmp_path / "link.kdsl"
    link.symlink_to(target)
    with HeurStore(target)._locked() as real:
        assert real == target.resolve()
        fd = os.open(HeurStore(link).lock_path, os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)


def test_dangling_symlink_creates_the_target_and_its_directory(tmp_path):
    target = tmp_path / "missing" / "dir" / "heur.kdsl"
    link = tmp_path / "heur.kdsl"
    link.symlink_to(target)
    store = HeurStore(link)
    assert store.rules() == []  # reads as an empty file, like a missing plain path
    assert store.append("soft(tile, 2048, 1, true)")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert parse(target.read_text()).evaluate().soft[0].value == 2048


WRITER = textwrap.dedent(
    """
    import sys
    from spiraljax.spiralk import HeurStore
    store = HeurStore(sys.argv[1])
    wid = int(sys.argv[2])
    shared = 0
    for j in range(100):
        assert store.append(f"soft(wg, {wid * 1000 + j}, 1, k > {j});", writer=wid, j=j)
        shared += store.append("soft(mk, 1, 0.5, true);", writer=wid)
    print(shared)
    """
)


@pytest.fixture
def fast_dir(tmp_path):
    """A directory on tmpfs when there is one: this test is about locking and atomic
    replacement, and fsync on a slow CI disk would dominate its time."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        import tempfile

        with tempfile.TemporaryDirectory(dir=shm, prefix="spiralk-test-") as d:
            yield Path(d)
    else:
        yield tmp_path


def test_eight_concurrent_writers_lose_nothing(fast_dir):
    tmp_path = fast_dir
    path = tmp_path / "heur.kdsl"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(w)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for w in range(8)
    ]
    shared_wins = 0
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0, err
        shared_wins += int(out)
    assert shared_wins == 1  # exactly one writer added the shared rule
    rules = HeurStore(path).rules()
    expected = {f"soft(wg, {w * 1000 + j}, 1, k > {j});" for w in range(8) for j in range(100)}
    assert len(rules) == 801 and len(set(rules)) == 801
    assert set(rules) == expected | {"soft(mk, 1, 0.5, true);"}
    program = parse(path.read_text())
    assert len(program.evaluate(k=50).soft) == 8 * 50 + 1
    # One provenance comment per appended batch, each valid JSON.
    comments = [ln for ln in path.read_text().splitlines() if ln.startswith("# rewrite ")]
    assert len(comments) == 801
    assert all(json.loads(c[len("# rewrite ") :])["writer"] in range(8) for c in comments)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
