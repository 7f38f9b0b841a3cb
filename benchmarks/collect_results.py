"""Rebuild ``benchmarks/RESULTS.md`` and its plots from the files in ``benchmarks/results/``.

    python benchmarks/collect_results.py              # plots, then RESULTS.md
    python benchmarks/collect_results.py --plots-only

Each benchmark script writes ``results/<area>.md`` (its table) and ``results/<area>.json``
(raw numbers with device, versions and date). This script

* draws the headline plots with matplotlib (Agg backend) into ``results/*.png``: Rank-K time
  per shape against the peers and the one-read floor (GPU and CPU, from ``rankk.json``) and
  embedding quality against training time (from every JSON file with a ``quality`` list of
  runs, e.g. ``poincare_embedding.json``);
* computes the Rank-K and embedding rows of the targets table from the same JSON files, so
  a re-run of ``benchmarks/rankk.py`` updates the page without hand edits;
* stitches the page: introduction, where the numbers come from, the targets table
  (hand-kept rows from ``results/_summary.md`` plus the computed rows), the plots, then
  every area's table.

A missing or malformed input skips its plot or row with a printed reason; it never stops
the page from being written. Every file is written atomically (temporary file, fsync,
rename).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
COMPUTED_MARKER = "<!-- collect_results: computed rows -->"

ORDER = [
    ("poincare_embedding", "Poincaré embeddings (`benchmarks/poincare_embedding.py`)"),
    ("nouns_embedding", "WordNet nouns, H200 GPU (`benchmarks/nouns_embedding.py`)"),
    ("nouns_burn_in", "WordNet nouns, burn-in sweep, H200 GPU (`nouns_embedding.py`)"),
    ("nouns_sweep_20261203", "WordNet nouns, recipe sweep of 2026-12-02/03, H200 GPU"),
    ("nouns_embedding_cpu", "WordNet nouns, CPU vs geoopt (`benchmarks/nouns_embedding.py`)"),
    ("burn_in_proxy", "Burn-in at large batch, CPU proxy (`benchmarks/burn_in_proxy.py`)"),
    ("geometry", "Geometry, CPU (`benchmarks/geometry.py`)"),
    ("geometry_h200", "Geometry, H200 GPU (`benchmarks/geometry.py`)"),
    ("geometry_regression", "Geometry before / after (`benchmarks/geometry_regression.py`)"),
    ("lorentz_embedding", "Lorentz vs Poincaré embeddings (`benchmarks/lorentz_embedding.py`)"),
    ("lorentz_embedding_h200", "Lorentz vs Poincaré embeddings, H200 GPU (mammals, nouns)"),
    ("optim", "Riemannian optimizers (`benchmarks/optim.py`)"),
    ("hypergrad", "Hypergradients (`benchmarks/hypergrad.py`)"),
    ("zspace", "Z-space encoder, CPU (`benchmarks/zspace.py`)"),
    ("zspace_h200", "Z-space encoder, H200 GPU (`benchmarks/zspace.py`)"),
    ("rankk", "Rank-K (`benchmarks/rankk.py`)"),
    ("rankk_interleaved", "Rank-K, ours and the peers timed interleaved (`benchmarks/rankk.py`)"),
    ("rankk_between", "Rank-K between the GPU.md shapes (`benchmarks/rankk.py --shapes between`)"),
    ("rankk_sample", "Rank-K sampled path (`benchmarks/rankk_sample.py`)"),
    ("launch_overhead", "Rank-K per-call overhead, legacy vs FFI launches (`launch_overhead.py`)"),
    ("launch_overhead_nocb", "Rank-K per-call overhead, XLA command buffers off"),
    ("kernel_ir", "Rank-K kernel IR size, rolled radix passes (`benchmarks/kernel_ir.py`)"),
    ("kernel_ir_unrolled", "Rank-K kernel IR size, before: unrolled passes"),
    ("spiralk", "SpiralK planning overhead (`benchmarks/spiralk_overhead.py`)"),
    ("distributed", "Distributed (`benchmarks/distributed.py`)"),
    ("link_prediction", "Link prediction on WordNet (`benchmarks/link_prediction.py`)"),
    ("hgcn", "HGCN on a 10⁵-node graph (`benchmarks/hgcn.py`)"),
]

# The project's targets, worded once here for the computed rows and the plots.
NOUNS_NODES = 82115
NOUNS_TARGET = {"dim": 10, "map": 0.87, "mean_rank": 4.5, "seconds": 120.0}
MAMMAL_TARGET = {"map": 0.86, "mean_rank": 6.0, "seconds": 180.0, "keep_map": 0.948}
FLOAT32_MAMMAL_MAP = 0.94
GPU_GEOMEAN_TARGET = 1.5
GPU_HARD_SHAPE_TARGET = 2.0
FLOOR_GOAL = 3.0
FLOOR_GOAL_BYTES = 64 * 2**20
MIDK_TARGET = 1.5
COMPILE_TARGET_S = 5.0
COMPILE_KEYS = ("compile_s", "first_call_s", "compile_seconds")
NOUNS_EVAL = {"seconds": 60.0, "peak_gib": 4.0}
CPU_OTHER_TARGET = 2.0

# Rank-K columns written by benchmarks/rankk.py, with the names a reader knows.
PEER_LABELS = {
    "lax_unstable": "lax.top_k(is_stable=False)",
    "lax_stable": "lax.top_k",
    "torch": "torch.topk",
    "lax_sort_slice": "jnp.sort + slice",
    "lax_top_k_same_k": "lax.top_k, same k",
}
ITEMSIZE = {"float32": 4, "int32": 4, "uint32": 4, "float64": 8, "bfloat16": 2, "float16": 2}


# --------------------------------------------------------------------------- files


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file, fsync, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load_json(path: Path) -> tuple[object | None, str | None]:
    """``(document, None)``, or ``(None, reason)`` if the file is missing or not JSON."""
    if not path.is_file():
        return None, f"{path.name} does not exist"
    try:
        return json.loads(path.read_text(encoding="utf-8")), None
    except (OSError, ValueError) as exc:
        return None, f"{path.name} is not valid JSON ({exc})"


def _number(value) -> float | None:
    """A positive finite time or score, or ``None``; dicts give their median / ms entry."""
    if isinstance(value, dict):
        for key in ("median", "ms", "batched", "median_ms"):
            if key in value:
                return _number(value[key])
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) and value > 0 else None


# --------------------------------------------------------------------------- Rank-K data


def rankk_sections(doc) -> dict[str, dict]:
    """``{"gpu": {"meta", "results"}, "cpu": ...}`` from either layout rankk.py has written.

    Today's rankk.py keeps one section per mode in one file; an older one wrote a single
    ``{"meta", "results"}`` object, whose mode is its ``meta.backend``.
    """
    if not isinstance(doc, dict):
        return {}
    if "results" in doc:
        backend = str((doc.get("meta") or {}).get("backend", "gpu"))
        doc = {"cpu" if backend == "cpu" else "gpu": doc}
    out = {}
    for mode in ("gpu", "cpu"):
        section = doc.get(mode)
        if not isinstance(section, dict):
            continue
        rows = [r for r in section.get("results") or [] if isinstance(r, dict)]
        rows = [r for r in rows if _ours(r) is not None and {"kind", "rows", "cols", "k"} <= set(r)]
        if rows:
            out[mode] = {"meta": section.get("meta") or {}, "results": rows}
    return out


def _ours(row: dict) -> float | None:
    """spiraljax's time of a row (``ours``; else the first ``ours_*`` column)."""
    if "ours" in row:
        return _number(row["ours"])
    for key in sorted(row):
        if key.startswith("ours"):
            return _number(row[key])
    return None


def _peers(row: dict, gpu: bool) -> list[str]:
    """The columns the row's target compares against (as rankk.py's table does)."""
    if row.get("kind") == "mid":
        return ["lax_top_k_same_k"] if not gpu else ["lax_sort_slice"]
    names = ("lax_unstable", "torch") if gpu else ("lax_stable", "lax_unstable")
    return [n for n in names if _number(row.get(n)) is not None]


def _best_peer(row: dict, gpu: bool) -> float | None:
    times = [_number(row.get(n)) for n in _peers(row, gpu)]
    times = [t for t in times if t is not None]
    return min(times) if times else None


def _shape(row: dict) -> str:
    return f"{row['rows']}×{row['cols']}, k={row['k']}"


def _groups(rows: list[dict]) -> dict[tuple[str, str], list[dict]]:
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((str(r["kind"]), str(r.get("dtype", "float32"))), []).append(r)
    return groups


def _geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def _device(meta: dict) -> str:
    """A device name a reader knows: "NVIDIA H200 × 2", "CPU (2 cores)"."""
    device = meta.get("device", meta.get("backend", "?"))
    count = meta.get("device_count")
    if isinstance(device, dict):  # {"platform", "kind", "count"}
        device, count = device.get("kind", "?"), device.get("count", count)
    device = str(device).removeprefix("cpu: ").removeprefix("gpu: ")
    if device.lower() == "cpu":
        cores = meta.get("cpu_count") or (meta.get("host") or {}).get("cpu_count")
        device = f"CPU ({cores} cores)" if cores else "CPU"
    elif isinstance(count, int) and count > 1:
        device += f" × {count}"
    return device


def _jax(meta: dict) -> str | None:
    versions = meta.get("versions") if isinstance(meta.get("versions"), dict) else {}
    return meta.get("jax") or versions.get("jax")


def _meta_line(meta: dict) -> str:
    parts = [_device(meta)]
    parts += [f"{k} {meta[k]}" for k in ("jax", "torch", "triton") if meta.get(k)]
    if meta.get("date"):
        parts.append(str(meta["date"])[:10])
    return ", ".join(parts)


# --------------------------------------------------------------------------- plots


@dataclass
class Plot:
    """One generated (or skipped) figure: ``path`` is None when ``reason`` says why not."""

    name: str
    title: str
    caption: str
    path: Path | None = None
    reason: str | None = None


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    write_atomic(path, buf.getvalue())


def _rankk_series(kind: str, gpu: bool) -> list[tuple[str, str]]:
    """(column, legend) drawn for a kind, spiraljax first, the floor last."""
    if kind == "mid":
        peers = ["lax_sort_slice", "lax_top_k_same_k"]
    elif gpu:
        peers = ["lax_unstable", "torch"]
    else:
        peers = ["lax_stable", "lax_unstable"]
    neg = " on −x" if kind == "bottom" else ""
    out = [("ours", "spiraljax")]
    for p in peers:
        label = PEER_LABELS[p] + (neg if p.startswith("lax_") and kind == "bottom" else "")
        if p == "torch" and kind == "bottom":
            label = "torch.topk(largest=False)"
        out.append((p, label))
    if gpu:
        out.append(("floor", "one-read floor"))
    return out


COLOURS = {
    "ours": "#1f4e9c",
    "lax_unstable": "#e08a1e",
    "lax_stable": "#e0b81e",
    "torch": "#c0392b",
    "lax_sort_slice": "#8e8e8e",
    "lax_top_k_same_k": "#e08a1e",
    "floor": "#2e8b57",
}


def plot_rankk(section: dict, gpu: bool, path: Path) -> None:
    """Grouped log-scale bars: ms per call for each shape, one panel per (kind, dtype)."""
    plt = _pyplot()
    groups = _groups(section["results"])
    kinds = ["top", "bottom", "mid"]
    order = sorted(
        groups, key=lambda g: (kinds.index(g[0]) if g[0] in kinds else 3, g[1] != "float32", g)
    )
    width = max(11.0, 1.2 * max(len(rows) for rows in groups.values()))
    fig, axes = plt.subplots(len(order), 1, figsize=(width, 3.6 * len(order)), squeeze=False)
    for ax, (kind, dtype) in zip(axes[:, 0], order, strict=True):
        rows = groups[(kind, dtype)]
        series = [
            (col, label)
            for col, label in _rankk_series(kind, gpu)
            if any((_ours(r) if col == "ours" else _number(r.get(col))) for r in rows)
        ]
        bar = 0.8 / len(series)
        for j, (col, label) in enumerate(series):
            xs, ys = [], []
            for i, r in enumerate(rows):
                v = _ours(r) if col == "ours" else _number(r.get(col))
                if v is not None:
                    xs.append(i + (j - (len(series) - 1) / 2) * bar)
                    ys.append(v)
            ax.bar(xs, ys, width=bar, label=label, color=COLOURS.get(col))
        for i, r in enumerate(rows):
            best = _best_peer(r, gpu)
            if best is None:
                continue
            ratio = best / _ours(r)
            ax.annotate(
                _ratio(ratio),
                (i, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(0, -2),
                textcoords="offset points",
                ha="center",
                va="top",
                fontsize=8,
                fontweight="bold",
                color="#1a7f37" if ratio > 1 else "#b42318",
            )
        ax.set_yscale("log")
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels([_shape(r).replace(", ", "\n") for r in rows], fontsize=8)
        ax.set_ylabel("ms per call (log)")
        ax.set_title(f"{kind}-k, {dtype}", loc="left", fontsize=10)
        ax.margins(y=0.25)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        ax.grid(axis="y", alpha=0.3)
    where = _meta_line(section["meta"])
    ref = "the faster peer" if gpu else "lax.top_k"
    fig.suptitle(
        f"Rank-K, {'GPU' if gpu else 'CPU'}: time per call (lower is better); "
        f"bold: {ref} ÷ spiraljax (> 1: spiraljax faster)\n{where}",
        fontsize=10,
    )
    fig.tight_layout()
    _save(fig, path)


def quality_runs(doc) -> list[dict]:
    """Runs with a MAP, a mean rank and training seconds, from a ``quality`` (or ``runs``)
    list; entries without all three are left out."""
    if not isinstance(doc, dict):
        return []
    listed = next((doc[k] for k in ("quality", "runs") if isinstance(doc.get(k), list)), [])
    runs = []
    for q in listed:
        if not isinstance(q, dict):
            continue
        seconds = next(
            (_number(q[k]) for k in ("train_seconds", "seconds", "train_s") if k in q), None
        )
        if seconds is None or _number(q.get("map")) is None or _number(q.get("mean_rank")) is None:
            continue
        runs.append({**q, "seconds": seconds})
    return runs


def embedding_documents(results: Path) -> list[tuple[str, dict, list[dict]]]:
    """``(file name, document, runs)`` for every JSON file in ``results`` holding runs."""
    out = []
    for path in sorted(results.glob("*.json")):
        doc, _ = load_json(path)
        runs = quality_runs(doc)
        if runs:
            out.append((path.name, doc, runs))
    return out


def _nodes(doc: dict) -> int | None:
    data = doc.get("data")
    nodes = data.get("nodes") if isinstance(data, dict) else doc.get("nodes", doc.get("num_nodes"))
    return nodes if isinstance(nodes, int) else None


def _environment(doc: dict) -> dict:
    for key in ("environment", "meta"):
        if isinstance(doc.get(key), dict):
            return doc[key]
    return {}


def _short_label(run: dict) -> str:
    """``demo``, ``dim 5``, ``geoopt dim 5``: the label without repeated words."""
    label = str(run.get("label") or f"dim {run.get('dim')}")
    if "demo" in label:
        return "spiraljax demo"
    short = f"dim {run.get('dim')}" if run.get("dim") is not None else label
    if str(run.get("manifold", "")) == "lorentz":
        short = "Lorentz " + short
    return ("geoopt " if _library(run) == "geoopt" else "") + short


def _library(run: dict) -> str:
    label = str(run.get("label", "")).lower()
    return "geoopt" if "geoopt" in label else "spiraljax"


def plot_embedding(docs: list[tuple[str, dict, list[dict]]], path: Path) -> None:
    """MAP and mean rank against training seconds, one row of panels per result file."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(docs), 2, figsize=(11, 4.2 * len(docs)), squeeze=False)
    for (name, doc, runs), (ax_map, ax_rank) in zip(docs, axes, strict=True):
        nodes = _nodes(doc)
        for i, run in enumerate(runs):
            lib = _library(run)
            colour = "#c0392b" if lib == "geoopt" else "#1f4e9c"
            marker = "s" if run.get("dtype") == "float32" else "o"
            text = _short_label(run)
            for ax, key in ((ax_map, "map"), (ax_rank, "mean_rank")):
                traj = [t for t in run.get("trajectory") or [] if isinstance(t, dict)]
                epochs = _number(run.get("epochs"))
                pts = [
                    (
                        _number(t.get("seconds"))
                        or (run["seconds"] * t["epoch"] / epochs if epochs else None),
                        _number(t.get(key)),
                    )
                    for t in traj
                    if isinstance(t.get("epoch"), int | float)
                ]
                pts = [(s, v) for s, v in pts if s and v]
                if len(pts) > 1:
                    ax.plot(*zip(*pts, strict=True), color=colour, alpha=0.4, lw=1)
                ax.scatter(run["seconds"], run[key], color=colour, marker=marker, zorder=3)
                ax.annotate(
                    text,
                    (run["seconds"], run[key]),
                    xytext=(5, 4 if i % 2 else -9),
                    textcoords="offset points",
                    fontsize=7,
                )
        if nodes == NOUNS_NODES:
            t = NOUNS_TARGET
            ax_map.axhline(t["map"], color="#2e8b57", ls="--", lw=1)
            ax_rank.axhline(t["mean_rank"], color="#2e8b57", ls="--", lw=1)
            for ax in (ax_map, ax_rank):
                ax.axvline(t["seconds"], color="#2e8b57", ls=":", lw=1)
            note = f"target (dim {t['dim']}): MAP ≥ {t['map']}, mean rank ≤ {t['mean_rank']}"
            note += f", ≤ {t['seconds']:.0f} s"
        else:
            t = MAMMAL_TARGET
            ax_map.axhline(t["map"], color="#2e8b57", ls="--", lw=1)
            ax_map.axhline(FLOAT32_MAMMAL_MAP, color="#2e8b57", ls=":", lw=1)
            ax_rank.axhline(t["mean_rank"], color="#2e8b57", ls="--", lw=1)
            note = (
                f"targets: demo MAP ≥ {t['map']} and mean rank ≤ {t['mean_rank']:.0f} (dashed); "
                f"float32 MAP ≥ {FLOAT32_MAMMAL_MAP} (dotted)"
            )
        env = _environment(doc)
        where = _device(env) + (f", jax {_jax(env)}" if _jax(env) else "")
        date = str(env.get("date", ""))[:10]
        head = f"{name}: {nodes:,} nodes" if nodes else name
        ax_map.set_title(f"{head} ({where}, {date})\n{note}", loc="left", fontsize=8)
        for ax, ylabel in ((ax_map, "MAP (higher is better)"), (ax_rank, "mean rank (log)")):
            ax.set_xscale("log")
            ax.set_xlabel("training seconds (log)")
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.25, which="both")
        ax_rank.set_yscale("log")
    fig.suptitle(
        "Embedding quality against training time (blue: spiraljax, red: geoopt; "
        "circles float64, squares float32; lines: evaluations during training)",
        fontsize=9,
    )
    fig.tight_layout()
    _save(fig, path)


def make_plots(results: Path = RESULTS) -> list[Plot]:
    """Draw every plot whose input exists; print and record why any other is skipped."""
    doc, missing = load_json(results / "rankk.json")
    sections = rankk_sections(doc)
    plots = []
    for mode, title in (("gpu", "Rank-K on the GPU"), ("cpu", "Rank-K on the CPU")):
        plot = Plot(
            f"rankk_{mode}",
            f"{title}: time per shape against the peers"
            + (" and the one-read floor" if mode == "gpu" else ""),
            "Median milliseconds per call (log scale; lower is better) for each shape "
            "(rows×cols, k). Bold figures: the faster peer's time divided by spiraljax's "
            "(above 1 means spiraljax is faster)."
            + (
                " The one-read floor is the time to read the input once at the measured "
                "copy bandwidth."
                if mode == "gpu"
                else ""
            ),
        )
        if mode not in sections:
            plot.reason = missing or f"rankk.json has no {mode.upper()} results"
        plots.append(plot)
    plots.append(
        Plot(
            "embedding_quality",
            "Embedding quality against training time",
            "MAP (higher is better) and mean rank (lower is better) of every recorded "
            "embedding run against its training seconds, with the project's targets as "
            "green lines. Points of one panel were measured on the device its title names.",
        )
    )
    docs = embedding_documents(results)
    if not docs:
        plots[-1].reason = "no results/*.json file with a `quality` list of runs"
    if not any(_nodes(d) == NOUNS_NODES for _, d, _ in docs):
        print("embedding_quality: no WordNet-nouns results file yet; plotting the others")
    for plot in plots:
        if plot.reason:
            print(f"skipped {plot.name}.png: {plot.reason}")
            continue
        target = results / f"{plot.name}.png"
        try:
            if plot.name == "embedding_quality":
                plot_embedding(docs, target)
            else:
                mode = plot.name.removeprefix("rankk_")
                plot_rankk(sections[mode], mode == "gpu", target)
        except Exception as exc:  # a broken input must not stop the page
            plot.reason = f"{type(exc).__name__}: {exc}"
            print(f"skipped {plot.name}.png: {plot.reason}")
            continue
        plot.path = target
        print(f"wrote {target}")
    return plots


# --------------------------------------------------------------------------- targets


def _row(capability: str, target: str, measured: str, met: str) -> str:
    return f"| {capability} | {target} | {measured} | {met} |"


def _ratio(x: float) -> str:
    return f"{x:.0f}×" if x >= 10 else f"{x:.2f}×"


def _range(values: list[float], fmt=_ratio) -> str:
    lo, hi = fmt(min(values)), fmt(max(values))
    return lo if lo == hi else f"{lo}–{hi}"


def rankk_gpu_rows(section: dict) -> list[str]:
    meta, groups = section["meta"], _groups(section["results"])
    device = meta.get("device", "GPU")
    out = []
    for (kind, dtype), peers_text in (
        (("top", "float32"), "`lax.top_k(is_stable=False)` and `torch.topk`"),
        (("bottom", "float32"), "`lax.top_k(-x, is_stable=False)` and `torch.topk(largest=False)`"),
        (("top", "bfloat16"), "`lax.top_k(is_stable=False)` and `torch.topk`"),
    ):
        rows = [r for r in groups.get((kind, dtype), []) if _best_peer(r, True)]
        if not rows:
            continue
        ratios = [_best_peer(r, True) / _ours(r) for r in rows]
        wins = sum(x > 1 for x in ratios)
        target = f"faster than the faster of {peers_text} on every shape"
        measured = (
            f"faster on {wins} of {len(rows)} shapes; {_range(ratios)} the faster peer's "
            f"speed (geometric mean {_geomean(ratios):.2f}×)"
        )
        met = wins == len(rows)
        if (kind, dtype) == ("top", "float32"):
            target += (
                f"; geometric mean ≥ {GPU_GEOMEAN_TARGET}× its speed; "
                f"≥ {GPU_HARD_SHAPE_TARGET}× at k = 1024 and at batch 1"
            )
            hard = [(r, x) for r, x in zip(rows, ratios, strict=True) if r["k"] >= 1024]
            hard += [(r, x) for r, x in zip(rows, ratios, strict=True) if r["rows"] == 1]
            hard = list({id(r): (r, x) for r, x in hard}.values())
            if hard:
                measured += "; " + ", ".join(f"{_shape(r)}: {x:.2f}×" for r, x in hard)
            met = (
                met
                and _geomean(ratios) >= GPU_GEOMEAN_TARGET
                and all(x >= GPU_HARD_SHAPE_TARGET for _, x in hard)
            )
        out.append(_row(f"Rank-K {kind}-k {dtype}, {device}", target, measured, _met(met)))
    mids = [r for r in groups.get(("mid", "float32"), [])]
    tops = {(r["rows"], r["cols"], r["k"]): _ours(r) for r in groups.get(("top", "float32"), [])}
    pairs = [(r, _ours(r) / tops[(r["rows"], r["cols"], r["k"])]) for r in mids if _key(r) in tops]
    if pairs:
        ok = sum(x <= MIDK_TARGET for _, x in pairs)
        out.append(
            _row(
                f"Rank-K mid-k float32, {device}",
                f"within {MIDK_TARGET}× of spiraljax's top-k time on the same shape",
                f"{_range([x for _, x in pairs])} the top-k time; met on {ok} of "
                f"{len(pairs)} shapes",
                _met(ok == len(pairs)),
            )
        )
    big = [
        _ours(r) / _number(r["floor"])
        for r in section["results"]
        if _number(r.get("floor"))
        and r["rows"] * r["cols"] * ITEMSIZE.get(str(r.get("dtype")), 4) >= FLOOR_GOAL_BYTES
    ]
    if big:
        ok = sum(x <= FLOOR_GOAL for x in big)
        out.append(
            _row(
                f"Rank-K against the one-read floor, {device}",
                f"goal beyond the target: within {FLOOR_GOAL:.0f}× of the one-read floor "
                "for every input of 64 MiB or more",
                f"{_range(big, lambda x: f'{x:.1f}×')} the floor; met on {ok} of {len(big)} cases",
                _met(ok == len(big)),
            )
        )
    compile_s = [
        v for r in section["results"] for k in COMPILE_KEYS if (v := _number(r.get(k))) is not None
    ]
    target = f"first-call compile time of a new shape under {COMPILE_TARGET_S:.0f} s"
    if compile_s:
        ok = sum(x < COMPILE_TARGET_S for x in compile_s)
        measured = f"{_range(compile_s, lambda x: f'{x:.1f} s')}; met on {ok} of {len(compile_s)}"
        out.append(
            _row(f"Rank-K compile time, {device}", target, measured, _met(ok == len(compile_s)))
        )
    else:
        out.append(_row(f"Rank-K compile time, {device}", target, "not recorded yet", "—"))
    return out


def _key(row: dict) -> tuple[int, int, int]:
    return row["rows"], row["cols"], row["k"]


def _met(met: bool) -> str:
    return "yes" if met else "**no**"


def rankk_cpu_rows(section: dict) -> list[str]:
    groups = _groups(section["results"])
    out = []
    for (kind, dtype), limit in (
        (("top", "float32"), 1.0),
        (("top", "bfloat16"), 1.0),
        (("bottom", "float32"), CPU_OTHER_TARGET),
        (("mid", "float32"), CPU_OTHER_TARGET),
    ):
        rows = [r for r in groups.get((kind, dtype), []) if _best_peer(r, False)]
        if not rows:
            continue
        ref = "`lax.top_k(x, k)`" if kind == "mid" else "`lax.top_k`"
        if limit == 1.0:
            speeds = [_best_peer(r, False) / _ours(r) for r in rows]
            ok = sum(x >= 1 for x in speeds)
            target = f"no slower than {ref}"
            measured = f"{_range(speeds)} the speed of {ref}"
        else:
            times = [_ours(r) / _best_peer(r, False) for r in rows]
            ok = sum(x <= limit for x in times)
            target = f"within {limit:.0f}× of {ref}'s time"
            measured = f"{_range(times)} the time of {ref} (below 1: faster)"
        out.append(
            _row(
                f"Rank-K {kind}-k {dtype}, CPU",
                target,
                f"{measured}; met on {ok} of {len(rows)} shapes",
                _met(ok == len(rows)),
            )
        )
    return out


def embedding_rows(docs: list[tuple[str, dict, list[dict]]]) -> list[str]:
    out = []
    mammals = [(n, d, runs) for n, d, runs in docs if _nodes(d) != NOUNS_NODES]
    nouns = [(n, d, runs) for n, d, runs in docs if _nodes(d) == NOUNS_NODES]
    for name, doc, runs in mammals[:1]:
        where = _device(_environment(doc))
        demo = next((r for r in runs if "demo" in str(r.get("label", ""))), None)
        if demo:
            t = MAMMAL_TARGET
            ok = (
                demo["map"] >= t["map"]
                and demo["mean_rank"] <= t["mean_rank"]
                and demo["seconds"] < t["seconds"]
            )
            out.append(
                _row(
                    "WordNet mammals, `spiraljax demo` (1,180 nodes)",
                    f"MAP ≥ {t['map']} and mean rank ≤ {t['mean_rank']:.0f} in under "
                    f"{t['seconds'] / 60:.0f} min on a 2-core CPU; keep MAP ≥ {t['keep_map']}",
                    f"MAP {demo['map']:.3f}, mean rank {demo['mean_rank']:.2f}, "
                    f"{demo['seconds']:.1f} s of training on {where} (`{name}`)",
                    _met(ok and demo["map"] >= t["keep_map"]),
                )
            )
        speed = (doc.get("speed") or {}).get("speedup_vs_geoopt_float32") or {}
        ours = {k: v for k, v in speed.items() if k.startswith("spiraljax") and _number(v)}
        if ours:
            out.append(
                _row(
                    "Embedding training speed against geoopt (same CPU, one run)",
                    "≥ 10× geoopt's relations per second",
                    ", ".join(f"{k.removeprefix('spiraljax_')} {v:.1f}×" for k, v in ours.items()),
                    _met(all(v >= 10 for v in ours.values())),
                )
            )
        f32 = [r for r in runs if r.get("dtype") == "float32" and _library(r) == "spiraljax"]
        if f32:
            best = max(f32, key=lambda r: r["map"])
            out.append(
                _row(
                    "float32 mammal embeddings",
                    f"MAP ≥ {FLOAT32_MAMMAL_MAP} (as float64 reaches)",
                    f"MAP {best['map']:.3f} ({best.get('label', '')}, float32)",
                    _met(best["map"] >= FLOAT32_MAMMAL_MAP),
                )
            )
    t = NOUNS_TARGET
    target = (
        f"dimension {t['dim']}: MAP ≥ {t['map']} and mean rank ≤ {t['mean_rank']} with "
        f"≤ {t['seconds'] / 60:.0f} min of training on one H200"
    )
    runs = [r for _, _, rs in nouns for r in rs if r.get("dim") == t["dim"]]
    if runs:
        best = max(runs, key=lambda r: r["map"])
        ok = (
            best["map"] >= t["map"]
            and best["mean_rank"] <= t["mean_rank"]
            and best["seconds"] <= t["seconds"]
        )
        env = _environment(nouns[0][1])
        measured = (
            f"MAP {best['map']:.3f}, mean rank {best['mean_rank']:.2f}, "
            f"{best['seconds']:.0f} s of training ({_device(env)})"
        )
        out.append(_row("WordNet nouns (82,115 nodes)", target, measured, _met(ok)))
    else:
        out.append(
            _row("WordNet nouns (82,115 nodes)", target, "not measured by a benchmark yet", "—")
        )
    out.append(_nouns_evaluation_row([r for _, _, rs in nouns for r in rs]))
    lorentz = [r for _, _, rs in docs for r in rs if str(r.get("manifold", "")) == "lorentz"]
    parts = [
        f"{r.get('label', 'Lorentz')}: MAP {r['map']:.3f}, mean rank "
        f"{r['mean_rank']:.2f}, {r['seconds']:.0f} s"
        for r in lorentz
    ]
    for name in ("lorentz_embedding", "lorentz_embedding_h200"):
        pair = lorentz_pairs(RESULTS / f"{name}.json")
        if pair:
            parts.append(pair)
    measured = "; ".join(parts) if parts else "not measured yet"
    out.append(
        _row(
            "Lorentz (hyperboloid) model against the Poincaré ball",
            "MAP, mean rank and time of both models on mammals (CPU, GPU) and nouns (GPU), "
            "and against geoopt's Lorentz model; reported whichever way it goes",
            measured,
            "—",
        )
    )
    return out


def lorentz_pairs(path: Path) -> str | None:
    """ "Lorentz vs ball" per dim and dtype from ``lorentz_embedding.json`` (its ``rows``:
    one run per model), with the device, and what that file does not cover; None if the
    file is missing or holds no pair."""
    doc, _ = load_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("rows"), list):
        return None
    runs = {}
    for r in doc["rows"]:
        if isinstance(r, dict) and r.get("impl", "spiraljax") == "spiraljax":
            key = (r.get("dim"), r.get("dtype"), r.get("manifold"))
            if _number(r.get("map")) is not None and _number(r.get("train_seconds")) is not None:
                runs[key] = r
    cells = []
    order = sorted(runs.items(), key=lambda kv: (_number(kv[0][0]) or 0, str(kv[0][1])))
    for (dim, dtype, manifold), r in order:
        ball = runs.get((dim, dtype, "poincare"))
        if manifold != "lorentz" or ball is None:
            continue
        cells.append(
            f"dim {dim} {dtype}: MAP {r['map']:.3f} vs {ball['map']:.3f} in "
            f"{r['train_seconds']:.0f} vs {ball['train_seconds']:.0f} s"
        )
    if not cells:
        return None
    env = _environment(doc)
    epochs = next(iter(runs.values())).get("epochs")
    text = f"mammals, {epochs} epochs, Lorentz vs ball ({_device(env)}): " + ", ".join(cells)
    nouns = doc.get("nouns")
    if isinstance(nouns, dict) and isinstance(nouns.get("rows"), list):
        by = {r.get("manifold"): r for r in nouns["rows"] if isinstance(r, dict)}
        lo, ball = by.get("lorentz"), by.get("poincare")
        if lo and ball and _number(lo.get("map")) is not None:
            text += (
                f"; nouns dim 10, {lo.get('time_budget', 0):.0f} s each "
                f"({_device(_environment(nouns))}): Lorentz MAP {lo['map']:.3f} / mean rank "
                f"{lo['mean_rank']:.2f} vs ball {ball['map']:.3f} / {ball['mean_rank']:.2f}"
            )
    geo = doc.get("geoopt")
    if isinstance(geo, dict) and isinstance(geo.get("rows"), list):
        pairs = {}
        for r in geo["rows"]:
            if isinstance(r, dict):
                pairs.setdefault((r.get("dim"), r.get("dtype")), {})[r.get("impl")] = r
        geo_cells = []
        for (dim, dtype), d in sorted(pairs.items(), key=lambda kv: (kv[0][0] or 0, str(kv[0][1]))):
            ours, theirs = d.get("spiraljax"), d.get("geoopt")
            if not (ours and theirs):
                continue
            t_map = _number(theirs.get("map"))
            t_txt = f"{t_map:.3f}" if t_map is not None else "n/a"
            if not theirs.get("finite", True):
                t_txt += " (NaN)"
            geo_cells.append(f"dim {dim} {dtype}: MAP {ours['map']:.3f} vs geoopt {t_txt}")
        if geo_cells:
            text += "; vs geoopt's Lorentz (same CPU): " + ", ".join(geo_cells)
    return text


def _nouns_evaluation_row(runs: list[dict]) -> str:
    e = NOUNS_EVAL
    target = (
        f"exact mean rank and MAP over all pairs in under {e['seconds']:.0f} s on the GPU, "
        f"peak memory ≤ {e['peak_gib']:.0f} GiB"
    )
    seconds = [
        v
        for r in runs
        for k in ("eval_seconds", "evaluation_seconds")
        if (v := _number(r.get(k))) is not None
    ]
    peaks = [
        v / 2**30
        for r in runs
        for k in ("peak_bytes", "peak_memory_bytes", "eval_peak_bytes", "peak_bytes_in_use")
        if (v := _number(r.get(k))) is not None
    ]
    name = "WordNet nouns, evaluation"
    if not seconds:
        return _row(name, target, "not measured by a benchmark yet", "—")
    measured = f"{_range(seconds, lambda x: f'{x:.1f} s')}"
    measured += (
        f", peak {_range(peaks, lambda x: f'{x:.2f} GiB')}" if peaks else ", peak not recorded"
    )
    ok = max(seconds) < e["seconds"] and bool(peaks) and max(peaks) <= e["peak_gib"]
    return _row(name, target, measured, _met(ok))


def computed_rows(results: Path = RESULTS) -> list[str]:
    """Table rows for Rank-K and the embeddings, computed from the JSON files; a part whose
    input is missing or malformed is left out with a printed reason."""
    doc, reason = load_json(results / "rankk.json")
    sections = rankk_sections(doc)
    parts = [
        ("Rank-K GPU", rankk_gpu_rows, sections.get("gpu")),
        ("Rank-K CPU", rankk_cpu_rows, sections.get("cpu")),
        ("embedding", embedding_rows, embedding_documents(results)),
    ]
    rows = []
    for what, rows_of, data in parts:
        if data is None:
            mode = what.split()[-1]
            print(f"no {what} rows: {reason or f'rankk.json has no {mode} results'}")
            continue
        try:
            rows += rows_of(data)
        except Exception as exc:  # a malformed input must not stop the page
            print(f"no {what} rows: {type(exc).__name__}: {exc}")
    return rows


# --------------------------------------------------------------------------- page


def _dicts_with_date(obj, path=()):
    if isinstance(obj, dict):
        if "date" in obj and ("device" in obj or "backend" in obj):
            yield path, obj
            return
        for k, v in obj.items():
            yield from _dicts_with_date(v, (*path, str(k)))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _dicts_with_date(v, (*path, str(i)))


def provenance(results: Path = RESULTS) -> str:
    """A table of device, versions and date of every section of every JSON file."""
    lines = [
        "| results file | part | device | jax | Python | date |",
        "|---|---|---|---|---|---|",
    ]
    for path in sorted(results.glob("*.json")):
        doc, _ = load_json(path)
        for where, meta in _dicts_with_date(doc):
            versions = meta.get("versions") if isinstance(meta.get("versions"), dict) else {}
            python = meta.get("python") or versions.get("python") or "?"
            part = "/".join(
                p for p in where if not p.isdigit() and p not in ("meta", "environment")
            )
            line = (
                f"| `{path.name}` | {part or '—'} | {_device(meta)} | {_jax(meta) or '?'} | "
                f"{python} | {str(meta['date'])[:10]} |"
            )
            if line not in lines:
                lines.append(line)
    return "\n".join(lines) + "\n"


def _demote(text: str) -> str:
    """Shift headings so the file's top level becomes ``###`` (under its ``##`` title)."""
    lines = text.splitlines()
    levels = [len(h) - len(h.lstrip("#")) for h in lines if h.startswith("#")]
    shift = 3 - min(levels, default=3)
    return "\n".join("#" * shift + h if h.startswith("#") else h for h in lines).strip() + "\n"


INTRO = """\
# Benchmark results

What spiraljax measures, on which device and software, against which targets. Every table
below was written by the benchmark script named in its heading; the JSON file beside each
table (`benchmarks/results/*.json`) holds the raw numbers with the device, library versions
and date. This page and its plots are rebuilt from those files by
`python benchmarks/collect_results.py`.

GPU figures come from one NVIDIA H200 (Python 3.12, jax 0.11.2, torch 2.11, triton 3.6);
CPU figures from a 2-core development machine that other jobs shared at the time, so CPU
times are noisy: prefer the minima and the ratios to the absolute figures. Timings are
comparable only between rows of the same table.
"""


def _summary(results: Path, rows: list[str]) -> str:
    path = results / "_summary.md"
    text = path.read_text(encoding="utf-8").strip() if path.is_file() else ""
    block = "\n".join(rows)
    if COMPUTED_MARKER in text:
        return text.replace(COMPUTED_MARKER, block) + "\n"
    if not text:
        print("results/_summary.md is missing: the targets table has the computed rows only")
    header = "| capability | target | measured | met? |\n|---|---|---|---|\n"
    return (text + "\n\n" if text else "## Targets\n\n") + header + block + "\n"


def _plots_section(plots: list[Plot], page: Path) -> str:
    out = ["## Plots\n"]
    for plot in plots:
        out.append(f"### {plot.title}\n")
        if plot.path is None:
            out.append(f"Not drawn: {plot.reason}.\n")
            continue
        rel = os.path.relpath(plot.path, page.parent).replace(os.sep, "/")
        out.append(f"![{plot.title}]({rel})\n\n{plot.caption}\n")
    return "\n".join(out)


def build_page(results: Path, plots: list[Plot], page: Path) -> str:
    parts = [
        INTRO,
        "## Where the numbers come from\n\n" + provenance(results),
        _summary(results, computed_rows(results)),
        _plots_section(plots, page),
    ]
    for name, title in ORDER:
        path = results / f"{name}.md"
        if path.exists():
            parts.append(f"## {title}\n\n" + _demote(path.read_text(encoding="utf-8")))
        else:
            parts.append(f"## {title}\n\nNot measured yet.\n")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=RESULTS, help="results directory")
    parser.add_argument("--page", type=Path, default=None, help="default: RESULTS.md beside it")
    parser.add_argument("--plots-only", action="store_true", help="draw the plots only")
    args = parser.parse_args(argv)
    plots = make_plots(args.results)
    if args.plots_only:
        return 0
    page = args.page or args.results.parent / "RESULTS.md"
    write_atomic(page, build_page(args.results, plots, page).encode("utf-8"))
    print(f"wrote {page}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
