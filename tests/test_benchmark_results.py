"""benchmarks/collect_results.py: plots and the results page from (partial) JSON files."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("matplotlib")


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


cr = _load("collect_results", ROOT / "benchmarks" / "collect_results.py")

PNG = b"\x89PNG\r\n\x1a\n"
GPU_SHAPES = [(1024, 65536, 16), (1024, 65536, 1024), (1, 67108864, 128)]
CPU_SHAPES = [(256, 4096, 16), (1, 1048576, 128)]


def _gpu_rows(speedup: float) -> list[dict]:
    """rankk.py rows; spiraljax ``speedup``× faster than the faster peer on every shape."""
    rows = []
    for r, c, k in GPU_SHAPES:
        for kind, dtype in (("top", "float32"), ("bottom", "float32"), ("top", "bfloat16")):
            rows.append(
                {
                    "kind": kind,
                    "rows": r,
                    "cols": c,
                    "k": k,
                    "dtype": dtype,
                    "ours": 1.0 / speedup,
                    "lax_unstable": 1.0,
                    "torch": 1.5,
                    "plan": "Choice()",
                    "floor": 0.1,
                }
            )
        rows.append(
            {
                "kind": "mid",
                "rows": r,
                "cols": c,
                "k": k,
                "dtype": "float32",
                "ours": 1.2 / speedup,
                "lax_sort_slice": 4.0,
                "lax_top_k_same_k": 1.0,
                "floor": 0.1,
            }
        )
    return rows


def _cpu_rows() -> list[dict]:
    rows = []
    for r, c, k in CPU_SHAPES:
        rows.append(dict(kind="top", rows=r, cols=c, k=k, dtype="float32", ours=1, lax_stable=2))
        rows.append(
            dict(kind="mid", rows=r, cols=c, k=k, dtype="float32", ours=3, lax_top_k_same_k=1)
        )
    return rows


def _rankk(gpu_speedup: float = 0.5, cpu: bool = True) -> dict:
    meta = {"device": "NVIDIA H200", "backend": "gpu", "jax": "0.11.2", "date": "2026-12-02"}
    doc = {"gpu": {"meta": meta, "results": _gpu_rows(gpu_speedup)}}
    if cpu:
        cpu_meta = {"device": "cpu", "backend": "cpu", "jax": "0.10.2", "date": "2026-12-02"}
        doc["cpu"] = {"meta": cpu_meta, "results": _cpu_rows()}
    return doc


def _embedding(nodes: int = 1180) -> dict:
    runs = [
        {"label": "spiraljax demo defaults", "dim": 5, "epochs": 100, "dtype": "float64"}
        | {"map": 0.95, "mean_rank": 1.3, "train_seconds": 10.0},
        {"label": "spiraljax recipe dim 10", "dim": 10, "epochs": 300, "dtype": "float32"}
        | {"map": 0.88, "mean_rank": 4.0, "train_seconds": 90.0},
        {"label": "geoopt recipe dim 5", "dim": 5, "epochs": 300, "dtype": "float32"}
        | {"map": 0.72, "mean_rank": 3.3, "train_seconds": 280.0}
        | {"trajectory": [{"epoch": 150, "map": 0.7, "mean_rank": 3.5}, {"epoch": 300} | {}]},
        {"label": "broken run without a time", "map": 0.5, "mean_rank": 2.0},
    ]
    env = {"device": "cpu: cpu", "cpu_count": 2, "jax": "0.10.2", "date": "2026-12-02T00:00"}
    speed = {"speedup_vs_geoopt_float32": {"geoopt_float32": 1.0, "spiraljax_demo": 12.0}}
    return {"environment": env, "data": {"nodes": nodes}, "speed": speed, "quality": runs}


def _write(tmp_path: Path, name: str, doc) -> None:
    text = doc if isinstance(doc, str) else json.dumps(doc)
    (tmp_path / name).write_text(text, encoding="utf-8")


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG) and len(data) > 5000, path


def test_every_plot_is_written_from_complete_inputs(tmp_path):
    _write(tmp_path, "rankk.json", _rankk())
    _write(tmp_path, "poincare_embedding.json", _embedding())
    _write(tmp_path, "nouns_embedding.json", _embedding(nodes=cr.NOUNS_NODES))
    plots = cr.make_plots(tmp_path)
    assert [p.name for p in plots] == ["rankk_gpu", "rankk_cpu", "embedding_quality"]
    for plot in plots:
        assert plot.reason is None and plot.path == tmp_path / f"{plot.name}.png"
        _assert_png(plot.path)
    assert not list(tmp_path.glob(".*.tmp")), "temporary files left behind"


def test_missing_inputs_are_reported_not_raised(tmp_path, capsys):
    plots = cr.make_plots(tmp_path)
    assert all(p.path is None and p.reason for p in plots)
    assert "rankk.json does not exist" in plots[0].reason
    out = capsys.readouterr().out
    assert out.count("skipped") == 3
    assert not list(tmp_path.glob("*.png"))
    # The page is still written, saying what was not drawn.
    assert cr.main(["--results", str(tmp_path), "--page", str(tmp_path / "R.md")]) == 0
    page = (tmp_path / "R.md").read_text(encoding="utf-8")
    assert "Not drawn: rankk.json does not exist" in page
    assert "not measured by a benchmark yet" in page


def test_malformed_and_partial_inputs(tmp_path):
    _write(tmp_path, "rankk.json", "{not json")
    _write(tmp_path, "poincare_embedding.json", {"quality": "nothing here"})
    plots = cr.make_plots(tmp_path)
    assert "not valid JSON" in plots[0].reason and plots[2].reason
    # GPU section only, no torch column, a None baseline, a row without a time.
    doc = _rankk(cpu=False)
    for row in doc["gpu"]["results"]:
        row.pop("torch", None)
        row["lax_unstable"] = None if row["k"] == 16 else row.get("lax_unstable")
    doc["gpu"]["results"].append({"kind": "top", "rows": 1, "cols": 2, "k": 1, "ours": None})
    doc["gpu"]["results"].append({"kind": "new", "rows": 1, "cols": 2, "k": 1, "ours": 0.5})
    _write(tmp_path, "rankk.json", doc)
    gpu, cpu, _ = cr.make_plots(tmp_path)
    _assert_png(gpu.path)
    assert cpu.path is None and "no CPU results" in cpu.reason
    rows = cr.computed_rows(tmp_path)
    assert any(r.startswith("| Rank-K top-k float32") for r in rows)
    # Shapes that are not numbers: the rows are skipped, the page still builds.
    doc["gpu"]["results"][0]["rows"] = "many"
    _write(tmp_path, "rankk.json", doc)
    assert not any(r.startswith("| Rank-K") for r in cr.computed_rows(tmp_path))
    assert cr.main(["--results", str(tmp_path), "--page", str(tmp_path / "R.md")]) == 0


def test_single_section_layout_of_older_rankk_files(tmp_path):
    old = _rankk(cpu=False)["gpu"]
    assert set(cr.rankk_sections(old)) == {"gpu"}
    old["meta"]["backend"] = "cpu"
    assert set(cr.rankk_sections(old)) == {"cpu"}
    assert cr.rankk_sections([1, 2]) == {} and cr.rankk_sections(None) == {}


@pytest.mark.parametrize(("speedup", "met"), [(0.5, False), (1.2, False), (3.0, True)])
def test_gpu_target_rows_judge_the_measured_figures(speedup, met):
    rows = cr.rankk_gpu_rows(cr.rankk_sections(_rankk(speedup))["gpu"])
    top = next(r for r in rows if r.startswith("| Rank-K top-k float32"))
    # 1.2× beats both peers on every shape but misses the geometric-mean and k = 1024 targets.
    assert top.endswith("| yes |") is met, top
    wins = 3 if speedup > 1 else 0
    assert f"faster on {wins} of 3 shapes" in top
    assert f"geometric mean {speedup:.2f}×" in top
    floor = next(r for r in rows if "one-read floor" in r)
    assert f"{10 / speedup:.1f}×" in floor


def test_cpu_and_embedding_rows():
    rows = cr.rankk_cpu_rows(cr.rankk_sections(_rankk())["cpu"])
    top = next(r for r in rows if "top-k float32" in r)
    mid = next(r for r in rows if "mid-k float32" in r)
    assert "2.00× the speed" in top and top.endswith("| yes |")
    assert "3.00× the time" in mid and mid.endswith("| **no** |")  # target: within 2×
    docs = [("a.json", _embedding(), cr.quality_runs(_embedding()))]
    docs.append(("n.json", _embedding(nodes=cr.NOUNS_NODES), cr.quality_runs(_embedding())))
    rows = cr.embedding_rows(docs)
    assert len(docs[0][2]) == 3  # the run without a time is left out
    nouns = next(r for r in rows if r.startswith("| WordNet nouns"))
    assert "MAP 0.880, mean rank 4.00, 90 s" in nouns and nouns.endswith("| yes |")
    demo = next(r for r in rows if "spiraljax demo" in r)
    assert demo.endswith("| yes |") and "CPU (2 cores)" in demo


def test_page_links_every_drawn_plot(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    _write(results, "rankk.json", _rankk())
    _write(
        results,
        "_summary.md",
        f"## Targets\n\n| a | b | c | d |\n|---|---|---|---|\n"
        f"{cr.COMPUTED_MARKER}\n| hand row | t | m | yes |\n",
    )
    assert cr.main(["--results", str(results)]) == 0
    page = (tmp_path / "RESULTS.md").read_text(encoding="utf-8")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page)
    assert links == ["results/rankk_gpu.png", "results/rankk_cpu.png"]
    assert cr.COMPUTED_MARKER not in page
    table = page[page.index("| a | b") : page.index("| hand row")]
    assert "| Rank-K top-k float32, NVIDIA H200 |" in table


def test_repository_page_images_exist_and_are_served():
    """Every image benchmarks/RESULTS.md links is a PNG in the repository and the docs hook
    serves it with the site (so the built benchmarks page shows it)."""
    pytest.importorskip("mkdocs")
    from mkdocs.config import load_config
    from mkdocs.structure.files import Files

    page = ROOT / "benchmarks" / "RESULTS.md"
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page.read_text(encoding="utf-8"))
    assert links, "RESULTS.md shows no plot"
    hooks = _load("spiraljax_docs_hooks", ROOT / "docs" / "_tools" / "hooks.py")
    config = load_config(str(ROOT / "mkdocs.yml"))
    config.plugins._current_plugin = None  # set by mkdocs while it runs the hooks
    files = hooks.on_files(Files([]), config)
    for link in links:
        _assert_png(page.parent / link)
        assert files.get_file_from_path(f"_included/benchmarks/{link}") is not None, link


def test_hook_turns_a_missing_image_into_a_note(tmp_path):
    pytest.importorskip("mkdocs")
    hooks = _load("spiraljax_docs_hooks", ROOT / "docs" / "_tools" / "hooks.py")
    (tmp_path / "R.md").write_text("# R\n\n![plot](results/none.png)\n", encoding="utf-8")
    text = hooks._include("R.md", tmp_path)
    assert "image `results/none.png` did not exist" in text and "![" not in text


def test_compile_time_and_nouns_evaluation_rows():
    doc = _rankk()
    rows = cr.rankk_gpu_rows(cr.rankk_sections(doc)["gpu"])
    assert any("compile time" in r and "not recorded yet" in r for r in rows)
    doc["gpu"]["results"][0]["compile_s"] = 3.0
    doc["gpu"]["results"][1]["compile_s"] = 7.5
    rows = cr.rankk_gpu_rows(cr.rankk_sections(doc)["gpu"])
    row = next(r for r in rows if "compile time" in r)
    assert "3.0 s–7.5 s; met on 1 of 2" in row and row.endswith("| **no** |")
    run = {"map": 0.9, "mean_rank": 4.0, "seconds": 100.0, "dim": 10}
    assert cr._nouns_evaluation_row([run]).endswith("| — |")
    row = cr._nouns_evaluation_row([run | {"eval_seconds": 30.0, "peak_bytes": 3 * 2**30}])
    assert "30.0 s, peak 3.00 GiB" in row and row.endswith("| yes |")
    row = cr._nouns_evaluation_row([run | {"eval_seconds": 30.0}])
    assert "peak not recorded" in row and row.endswith("| **no** |")


def test_lorentz_pairs_from_the_lorentz_benchmark(tmp_path):
    row = dict(impl="spiraljax", dim=5, dtype="float64", epochs=300)
    doc = {
        "environment": {"device": "cpu"},
        "rows": [
            {**row, "manifold": "poincare", "map": 0.945, "mean_rank": 1.2, "train_seconds": 17},
            {**row, "manifold": "lorentz", "map": 0.942, "mean_rank": 1.3, "train_seconds": 42},
            {**row, "dim": 2, "manifold": "lorentz", "map": 0.7, "train_seconds": 30},  # no ball
        ],
    }
    path = tmp_path / "lorentz_embedding.json"
    path.write_text(json.dumps(doc))
    text = cr.lorentz_pairs(path)
    assert "dim 5 float64: MAP 0.942 vs 0.945 in 42 vs 17 s" in text and "dim 2" not in text
    assert "nouns" not in text and "geoopt" not in text  # sections the file does not hold
    # the nouns and geoopt sections, where the file has them
    nouns = {"environment": {"device": "NVIDIA H200", "backend": "gpu"}, "rows": []}
    for m, v in (("lorentz", 0.8516), ("poincare", 0.8454)):
        nouns["rows"].append(dict(manifold=m, map=v, mean_rank=7.1, time_budget=90.0))
    geo = {"rows": [{**row, "manifold": "lorentz", "map": 0.942, "finite": True}]}
    geo["rows"].append({**row, "impl": "geoopt", "map": 0.005, "finite": False})
    path.write_text(json.dumps({**doc, "nouns": nouns, "geoopt": geo}))
    text = cr.lorentz_pairs(path)
    assert "Lorentz MAP 0.852 / mean rank 7.10 vs ball 0.845" in text
    assert "dim 5 float64: MAP 0.942 vs geoopt 0.005 (NaN)" in text
    assert cr.lorentz_pairs(tmp_path / "missing.json") is None
    path.write_text(json.dumps({"rows": [doc["rows"][2]]}))
    assert cr.lorentz_pairs(path) is None
