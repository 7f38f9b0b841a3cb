"""The `spiraljax` command line: demo/embed parsing, a tiny embed run, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from spiraljax import cli

TREE_TSV = "".join(f"{c}\t{p}\n" for c, p in [("b", "a"), ("c", "a"), ("d", "b"), ("e", "b")])


@pytest.fixture
def tiny(tmp_path) -> Path:
    p = tmp_path / "tiny.tsv"
    p.write_text("# tiny tree\n" + TREE_TSV, encoding="utf-8")
    return p


def test_embed_tiny_tsv(tiny, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["embed", "--data", str(tiny), "--closure", "--dim", "2", "--epochs", "2",
            "--burn-in", "1", "--batch-size", "3", "--negatives", "3", "--lr", "0.1",
            "--seed", "3", "--dtype", "float32", "--output", str(out), "--quiet"]  # fmt: skip
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    assert "5 nodes, 6 edges" in text  # closure adds d->a, e->a
    assert "mean rank" in text and "MAP" in text
    assert sorted(p.name for p in out.iterdir()) == [
        "embedding.npz",
        "metrics.json",
        "poincare_disk.png",
    ]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"] == {
        "dim": 2, "epochs": 2, "lr": 0.1, "negatives": 3, "burn_in": 1, "batch_size": 3,
        "seed": 3, "curvature": -1.0, "dtype": "float32", "retraction": "expmap",
        "optimizer": "rsgd", "lr_schedule": "constant", "time_budget": None, "max_step": None,
        "manifold": "poincare", "burn_in_lr_factor": 0.1, "burn_in_negatives": None,
        "burn_in_unigram_power": 0.75,
    }  # fmt: skip
    assert metrics["num_edges"] == 6 and 1.0 <= metrics["mean_rank"]
    assert 0.0 < metrics["map"] <= 1.0
    assert metrics["environment"]["jax"]


def test_embed_bad_data_reports_file_and_line(tmp_path, capsys):
    bad = tmp_path / "bad.tsv"
    bad.write_text("a\tb\nc\tc\n", encoding="utf-8")
    out = tmp_path / "out"
    assert cli.main(["embed", "--data", str(bad), "--output", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "bad.tsv:2: self-loop 'c'" in err
    assert not out.exists()
    assert cli.main(["embed", "--data", str(tmp_path / "missing.tsv"), "--quiet"]) == 2
    assert "missing.tsv" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["embed", "--dim", "0"],
        ["embed", "--epochs", "-3"],
        ["embed", "--lr", "nan"],
        ["embed", "--burn-in", "-1"],
        ["demo", "--negatives", "zero"],
        ["bench"],
        [],
    ],
)
def test_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2
    assert "usage: spiraljax" in capsys.readouterr().err


def test_defaults():
    parser = cli.build_parser()
    demo = parser.parse_args(["demo"])
    assert {k: getattr(demo, k) for k in cli.DEMO_SETTINGS} == cli.DEMO_SETTINGS
    assert demo.data is None and demo.handler is cli.embed._run_demo
    embed = cli.embed._embed_config(parser.parse_args(["embed"]), "mammals")
    # embed defaults: the reference mammal recipe of Nickel & Kiela.
    assert (embed.dim, embed.lr, embed.negatives, embed.batch_size, embed.burn_in) == (
        5, 0.3, 50, 10, 20,
    )  # fmt: skip


def test_embed_dataset_recipes_and_lr_scaling():
    parser = cli.build_parser()
    args = parser.parse_args(["embed", "--dataset", "nouns"])
    nouns = cli.embed._embed_config(args, args.dataset)
    assert (nouns.dim, nouns.batch_size, nouns.lr, nouns.dtype) == (10, 4096, 240.0, "float64")
    # the reference's burn-in (train-nouns.sh) and the step cap, from the recipe
    burn = (nouns.burn_in, nouns.burn_in_lr_factor, nouns.burn_in_negatives)
    assert burn == (500, 0.01, 5) and (nouns.burn_in_unigram_power, nouns.max_step) == (1.0, 0.3)
    # A batch without an lr: the lr scales linearly with the batch; an explicit lr wins.
    args = parser.parse_args(["embed", "--dataset", "nouns", "--batch-size", "1024"])
    assert cli.embed._embed_config(args, "nouns").lr == pytest.approx(60.0)
    args = parser.parse_args(
        ["embed", "--batch-size", "1024", "--lr", "7", "--time-budget", "9", "--max-step", "0.3"]
    )
    cfg = cli.embed._embed_config(args, "mammals")
    assert (cfg.lr, cfg.batch_size, cfg.time_budget, cfg.max_step) == (7.0, 1024, 9.0, 0.3)
    assert cfg.manifold == "poincare"
    # --manifold reaches the recipe (it was dropped: `embed --manifold lorentz` trained the ball)
    args = parser.parse_args(["embed", "--dataset", "nouns", "--manifold", "lorentz"])
    assert cli.embed._embed_config(args, "nouns").manifold == "lorentz"


def test_embed_lorentz_trains_the_hyperboloid(tiny, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["embed", "--data", str(tiny), "--closure", "--dim", "2", "--epochs", "2",
            "--burn-in", "1", "--batch-size", "3", "--negatives", "3", "--lr", "0.1",
            "--manifold", "lorentz", "--output", str(out), "--quiet", "--no-plot"]  # fmt: skip
    assert cli.main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["manifold"] == "lorentz"
    table = np.load(out / "embedding.npz")
    rows = next(v for v in table.values() if v.ndim == 2)
    assert rows.shape[1] == 3  # dim + 1 coordinates on the hyperboloid


@pytest.mark.parametrize(
    "argv",
    [
        ["embed", "--dataset", "birds"],
        ["embed", "--dataset", "nouns", "--data", "x.tsv"],
        ["embed", "--time-budget", "0"],
        ["embed", "--max-step", "-1"],
        ["embed", "--optimizer", "lbfgs"],
        ["embed", "--burn-in-lr-factor", "0"],
        ["embed", "--burn-in-lr-factor", "inf"],
        ["embed", "--burn-in-negatives", "0"],
        ["embed", "--burn-in-negatives", "2.5"],
        ["embed", "--burn-in-unigram-power", "-1"],
        ["embed", "--burn-in-unigram-power", "nan"],
    ],
)
def test_embed_bad_dataset_options_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    if "birds" in argv:
        assert "mammals" in err and "nouns" in err  # the error lists the choices


def test_load_dataset_unknown_name_lists_choices():
    from spiraljax.embedding.recipes import load_dataset, recipe

    with pytest.raises(ValueError, match=r"dataset='birds' is not one of \['mammals', 'nouns'\]"):
        load_dataset("birds")
    with pytest.raises(ValueError, match="birds"):
        recipe("birds")


def test_commands_add_subcommands(capsys):
    calls = []

    def register(subparsers):
        p = subparsers.add_parser("hello")
        p.add_argument("--name", default="world")
        p.set_defaults(handler=lambda args: calls.append(args.name) or 0)

    assert cli.main(["hello", "--name", "ball"], commands=(*cli.COMMANDS, register)) == 0
    assert calls == ["ball"]


def test_python_dash_m_runs_the_cli(tiny, tmp_path):
    out = tmp_path / "sub"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "spiraljax",
            "embed",
            "--data",
            str(tiny),
            "--epochs",
            "1",
            "--burn-in",
            "0",
            "--dim",
            "2",
            "--negatives",
            "2",
            "--no-plot",
            "--quiet",
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "MAP" in proc.stdout
    assert sorted(p.name for p in out.iterdir()) == ["embedding.npz", "metrics.json"]


def test_demo_short_run_prints_rank_k_neighbours(tmp_path, capsys):
    out = tmp_path / "demo"
    argv = ["demo", "--epochs", "1", "--burn-in", "0", "--dim", "2", "--negatives", "5",
            "--batch-size", "100", "--no-plot", "--quiet", "--output", str(out)]  # fmt: skip
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    assert "1180 nodes, 6540 edges" in text
    assert "nearest neighbours (Rank-K" in text
    metrics = json.loads((out / "metrics.json").read_text())
    shown = metrics["nearest_neighbours"]
    assert set(shown) == set(cli.DEMO_QUERIES)
    assert all(len(v) == 5 and q not in v for q, v in shown.items())


def test_embed_without_matplotlib_skips_the_plot_with_a_note(tiny, tmp_path, monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name)
    )
    out = tmp_path / "noplot"
    argv = ["embed", "--data", str(tiny), "--epochs", "1", "--burn-in", "0", "--dim", "2",
            "--negatives", "2", "--quiet", "--output", str(out)]  # fmt: skip
    assert cli.main(argv) == 0
    assert "matplotlib is not installed" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["embedding.npz", "metrics.json"]


def test_embed_burn_in_options_reach_the_config():
    parser = cli.build_parser()
    argv = ["embed", "--dataset", "nouns", "--burn-in-lr-factor", "0.01",
            "--burn-in-negatives", "5", "--burn-in-unigram-power", "1"]  # fmt: skip
    cfg = cli.embed._embed_config(parser.parse_args(argv), "nouns")
    assert (cfg.burn_in_lr_factor, cfg.burn_in_negatives, cfg.burn_in_unigram_power) == (
        0.01, 5, 1.0,
    )  # fmt: skip
    default = cli.embed._embed_config(parser.parse_args(["embed"]), "mammals")
    assert (default.burn_in_lr_factor, default.burn_in_negatives) == (0.1, None)
    assert default.burn_in_unigram_power == 0.75


def test_embed_burn_in_negatives_above_negatives_is_refused(tiny, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["embed", "--data", str(tiny), "--negatives", "3", "--burn-in-negatives", "4",
            "--output", str(out), "--quiet"]  # fmt: skip
    assert cli.main(argv) == 2
    assert "burn_in_negatives=4" in capsys.readouterr().err
    assert not out.exists()


def test_embed_records_the_burn_in_settings(tiny, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["embed", "--data", str(tiny), "--closure", "--dim", "2", "--epochs", "2",
            "--burn-in", "1", "--batch-size", "3", "--negatives", "3", "--lr", "0.1",
            "--burn-in-lr-factor", "0.01", "--burn-in-negatives", "2", "--burn-in-unigram-power",
            "1.0", "--output", str(out), "--quiet", "--no-plot"]  # fmt: skip
    assert cli.main(argv) == 0
    assert "burn-in 1 at lr×0.01, 2 negatives" in capsys.readouterr().out
    config = json.loads((out / "metrics.json").read_text())["config"]
    assert (config["burn_in_lr_factor"], config["burn_in_negatives"]) == (0.01, 2)
    assert config["burn_in_unigram_power"] == 1.0
