"""The Rank-K subcommands: ``spiraljax tune``, ``heur explain`` and ``bench topk``."""

import json

import pytest

from spiraljax.cli import main
from spiraljax.kernels import table as tables


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for name in (
        "SPIRAL_HEUR_K",
        "SPIRAL_HEUR_SOFT",
        "SPIRAL_HEUR_GEN_WEIGHT",
        "SPIRAL_HEUR_ON_ERROR",
        "SPIRAL_HEUR_TABLE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SPIRAL_HEUR_FILE", str(tmp_path / "heur.kdsl"))
    return tmp_path


def test_heur_explain_prints_the_decision(monkeypatch, capsys, clean_env):
    monkeypatch.setenv("SPIRAL_HEUR_K", "soft(mkd, 3, 0.5, c > 1000); soft(mkd, 4, 0.2, true);")
    (clean_env / "heur.kdsl").write_text('soft(warps, 4, 0.3, kind == "topk");\n')
    argv = ["heur", "explain", "--kind", "topk", "--rows", "64", "--cols", "4096", "--k", "16"]
    assert main([*argv, "--device", "cuda"]) == 0
    out = capsys.readouterr().out
    assert "problem: kind=topk rows=64 cols=4096 k=16 sg=True" in out
    assert "[hit] soft(mkd, 3, 0.5, c > 1000);" in out
    assert "soft(warps, 4, 0.3" in out
    assert "candidates:" in out and "soft" in out and "rewrite" in out
    assert "winner:" in out and "mkd=3" in out and "warps=4" in out
    assert "source: soft  score: 0.8000" in out or "source: rewrite  score: 0.8000" in out


def test_heur_explain_builtin_and_errors(monkeypatch, capsys):
    argv = ["heur", "explain", "--kind", "midk", "--rows", "1", "--cols", "1048576", "--k", "9"]
    assert main([*argv, "--device", "cuda", "--sm-count", "16"]) == 0
    out = capsys.readouterr().out
    assert "source: builtin" in out and "multiblock=True" in out
    assert main(["heur", "explain", "--rows", "2", "--cols", "8", "--k", "9"]) == 2
    assert "k=9 exceeds cols=8" in capsys.readouterr().err
    monkeypatch.setenv("SPIRAL_HEUR_K", "mkd: (;")
    assert main(["heur", "explain", "--rows", "2", "--cols", "8", "--k", "3"]) == 2
    err = capsys.readouterr().err
    assert "SPIRAL_HEUR_K:1:7: expected an expression" in err and "^" in err


def test_tune_refuses_on_cpu(capsys, tmp_path):
    assert main(["tune", "--output", str(tmp_path / "t.json")]) == 2
    assert "refusing to tune on 'cpu'" in capsys.readouterr().out
    assert not (tmp_path / "t.json").exists()


def test_tune_allow_interpret_writes_a_table(capsys, tmp_path):
    out = tmp_path / "t.json"
    argv = ["tune", "--allow-interpret", "--rows", "2", "--cols", "300", "--k", "7,300"]
    argv += ["--repeats", "1", "--batch", "1", "--max-candidates", "1", "--output", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert f"wrote {out}: 1 entries, 0 mismatching" in text
    table = json.loads(out.read_text())
    assert table["interpret"] is True and len(table["entries"]) == 1
    e = table["entries"][0]
    assert (e["rows"], e["cols"], e["k"]) == (2, 300, 7) and e["ms"] > 0
    assert tables.choose(2, 300, 7, False, out) is not None


def test_tune_bad_options(capsys):
    with pytest.raises(SystemExit):
        main(["tune", "--rows", "0"])
    assert main(["tune", "--allow-interpret", "--dtypes", "float64", "--output", "x.json"]) == 2
    assert "dtype='float64'" in capsys.readouterr().err


def test_bench_topk_prints_a_verified_table(capsys, tmp_path):
    argv = ["bench", "topk", "--shapes", "4x256x5", "--reps", "1", "--batch", "1"]
    assert main([*argv, "--no-torch", "--json", str(tmp_path / "b.json")]) == 0
    out = capsys.readouterr().out
    assert "spiraljax" in out and "lax_top_k" in out
    line = [s for s in out.splitlines() if s.split()[:3] == ["4", "256", "5"]]
    assert line and all(float(v) > 0 for v in line[0].split()[3:])
    data = json.loads((tmp_path / "b.json").read_text())
    assert data["results"][0]["k"] == 5
    assert main(["bench", "topk", "--shapes", "4x256x300"]) == 2
    assert "--shapes entry '4x256x300'" in capsys.readouterr().err
