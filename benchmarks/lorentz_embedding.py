#!/usr/bin/env python3
"""Lorentz (hyperboloid) vs Poincaré-ball embeddings: WordNet mammals and nouns, and geoopt.

Nickel & Kiela 2018 report that the Lorentz model optimises better than the ball for the
same embedding task, most in low dimensions. This script measures four things, each a
section of one result file:

* ``rows`` — the mammal closure (1,180 nodes, 6,540 edges), both models with one recipe
  (``train-mammals.sh``: lr 0.3, 50 negatives, batch 10, burn-in min(20, epochs/5) epochs
  at lr × 0.1, exact expmap RSGD; ``spiraljax.embedding.train`` with ``manifold=``) for
  each dimension, dtype and epoch count asked for: reconstruction MAP and mean rank
  (exact, ``reconstruction_metrics`` with the model's own distance), training seconds
  (compilation included), steady seconds per epoch and relations/s.
* ``geoopt`` (``--geoopt DIM:DTYPE ...``, CPU) — the same mammal recipe trained with
  geoopt: a ``geoopt.ManifoldParameter`` on ``geoopt.Lorentz()`` (curvature −1),
  ``geoopt.optim.RiemannianSGD`` (exact expmap), the same softmax loss over
  ``Lorentz.dist`` and the same initial distribution (uniform [−10⁻³, 10⁻³] spatial
  coordinates lifted onto the hyperboloid; torch's draws, not jax's), negatives as in
  ``benchmarks/poincare_embedding.py``'s ``GeooptTrainer`` (rejected candidates resampled
  up to 10 times, then masked; spiraljax masks them at once), beside spiraljax's Lorentz
  run of the same dim, dtype and epochs in the same call. geoopt's final table is
  evaluated by spiraljax's ``reconstruction_metrics``. torch runs with
  ``--torch-threads`` intra-op threads (default: the faster of 1 and the machine's
  cores in a probe of a few epochs, both probes recorded).
* ``speed`` (``--speed DIM:DTYPE ...``, CPU) — seconds per epoch, wall and process CPU, of
  the two Lorentz trainers in alternating rounds (``--speed-rounds`` of
  ``--speed-epochs`` epochs), so that both see the same load on a shared machine.
* ``nouns`` (``--nouns``, meant for a GPU) — the WordNet noun closure (82,115 nodes,
  743,241 edges), dim 10, both models with the same settings for ``--time-budget``
  seconds each (``EmbedConfig.time_budget``, compilation included): the nouns recipe
  (``spiraljax.embedding.recipes.recipe("nouns")``) with the overrides of
  ``benchmarks/nouns_embedding.py``'s candidate ``--nouns-candidate`` (default
  ``rsgd-b4096-lr240-cap0.3``: batch 4,096, lr 240, ``max_step`` 0.3, the best ball
  recipe measured on an H200). Exact MAP and mean rank over all pairs, evaluation
  seconds and the peak device memory.

Same settings for both models, on purpose: RSGD with the exact exponential map, and the
step cap measured in the metric, are intrinsic — the two models are isometric, so they run
the same algorithm and differ only in arithmetic (the ball's boundary margin, the
hyperboloid's coordinates growing as e^distance). The 2018 paper's ball baseline instead
used the first-order retraction ``project(θ − lr·rgrad)``.

    python benchmarks/lorentz_embedding.py --quick                 # smoke, no files
    python benchmarks/lorentz_embedding.py                         # mammals, defaults below
    python benchmarks/lorentz_embedding.py --no-mammals --merge \\
        --geoopt 2:float64 5:float64 10:float64 5:float32          # CPU: add geoopt's rows
    python benchmarks/lorentz_embedding.py --no-mammals --merge --speed 2 5 10 5:float32
    python3 benchmarks/lorentz_embedding.py --out "$OUT" --nouns   # GPU: mammals + nouns

Mammal defaults: dims 2 5 10, float64, 300 epochs, plus float32 at dim 5 (the dtype where
the ball's boundary margin hurts most). ``--total-budget`` (default 340 s) bounds the call:
each nouns run's budget is shrunk to what is left of it (minus ``--eval-reserve`` per run
to come), so the GPU call above ends in about 6 minutes (314 s on an H200: mammals 122 s,
nouns 2 × 90 s of training plus data, compilation and evaluation). Writes
``lorentz_embedding.{json,md}`` under ``--out`` (default ``$OUT`` if set, else
``benchmarks/results/``) after every run, with device, versions and date; ``--merge``
keeps the sections of an existing file there that this call does not run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, environment, write_results

from spiraljax.data import load_mammal_closure
from spiraljax.embedding import EmbedConfig, reconstruction_metrics, train

RECIPE = {"lr": 0.3, "negatives": 50, "batch_size": 10, "burn_in": 20}
NAME = "lorentz_embedding"
MANIFOLDS = ("poincare", "lorentz")
MAMMAL_EDGES = 6540


def _burn_in(epochs: int) -> int:
    return min(RECIPE["burn_in"], max(epochs // 5, 1))


def run_spiraljax(graph, *, manifold, dim, dtype, epochs, log) -> dict:
    cfg = EmbedConfig(
        dim=dim,
        epochs=epochs,
        dtype=dtype,
        manifold=manifold,
        **{**RECIPE, "burn_in": _burn_in(epochs)},
    )
    res = train(graph, cfg, progress=False)
    m = reconstruction_metrics(res.embedding, graph, manifold=manifold)
    row = {
        "impl": "spiraljax",
        "manifold": manifold,
        "dim": dim,
        "dtype": dtype,
        "epochs": epochs,
        "burn_in": cfg.burn_in,
        "map": m.map,
        "mean_rank": m.mean_rank,
        "final_loss": float(res.losses[-1]),
        "train_seconds": res.train_seconds,
        "seconds_per_epoch": graph.num_edges / res.steady_relations_per_second,
        "relations_per_second": res.steady_relations_per_second,
        "finite": bool(np.isfinite(res.embedding).all()),
    }
    log(_fmt(row))
    return row


# ------------------------------------------------------------------------- geoopt side


def _geoopt_trainer(graph, *, dim, dtype, epochs):
    """``poincare_embedding.GeooptTrainer`` (loss, negatives, burn-in, batches) with its
    ball parameter replaced by the same initial points lifted onto ``geoopt.Lorentz()``."""
    import geoopt
    import torch
    from poincare_embedding import GeooptTrainer

    g = GeooptTrainer(graph, dim=dim, dtype=dtype, **{**RECIPE, "burn_in": _burn_in(epochs)})
    s = g.emb.detach()
    x0 = torch.sqrt(1 + (s * s).sum(-1, keepdim=True))  # x₀ = √(1/c + ‖x‖²), c = 1
    g.ball = geoopt.Lorentz()  # run_epoch's distance: g.ball.dist
    g.emb = geoopt.ManifoldParameter(torch.cat([x0, s], -1), manifold=g.ball)
    g.opt = geoopt.optim.RiemannianSGD([g.emb], lr=g.lr)
    return g


def probe_torch_threads(graph, *, epochs: int = 3) -> dict[int, float]:
    """Median seconds per epoch of geoopt's Lorentz trainer (dim 5, float64) for 1 thread
    and for the machine's cores."""
    import torch

    out = {}
    for threads in sorted({1, os.cpu_count() or 1}):
        torch.set_num_threads(threads)
        g = _geoopt_trainer(graph, dim=5, dtype="float64", epochs=300)
        times = []
        for _ in range(epochs):
            t0 = time.perf_counter()
            g.run_epoch()
            times.append(time.perf_counter() - t0)
        out[threads] = float(np.median(times))
    return out


def run_geoopt_lorentz(graph, *, dim, dtype, epochs, log) -> dict:
    g = _geoopt_trainer(graph, dim=dim, dtype=dtype, epochs=epochs)
    times, loss = [], float("nan")
    for _ in range(epochs):
        t0 = time.perf_counter()
        loss = g.run_epoch()
        times.append(time.perf_counter() - t0)
    emb = g.embedding()
    finite = bool(np.isfinite(emb).all())
    m = reconstruction_metrics(np.nan_to_num(emb), graph, manifold="lorentz")
    wall = float(np.sum(times))
    row = {
        "impl": "geoopt",
        "manifold": "lorentz",
        "dim": dim,
        "dtype": dtype,
        "epochs": epochs,
        "burn_in": g.burn_in,
        "map": m.map,
        "mean_rank": m.mean_rank,
        "final_loss": loss,
        "train_seconds": wall,
        "seconds_per_epoch": float(np.median(times)),
        "relations_per_second": graph.num_edges / float(np.median(times)),
        "finite": finite,
    }
    log(_fmt(row))
    return row


def _torch_environment() -> dict:
    import geoopt
    import torch

    env = environment()
    env["versions"].update(torch=torch.__version__, geoopt=geoopt.__version__)
    return env


def geoopt_section(graph, specs, *, epochs, threads, log, save) -> dict:
    import torch

    t0 = time.perf_counter()
    probe = None
    if threads is None:
        probe = probe_torch_threads(graph)
        threads = min(probe, key=probe.get)
        log(f"  torch threads probe (s/epoch): {probe} -> {threads}")
    torch.set_num_threads(threads)
    section = {
        "environment": _torch_environment(),
        "load_average": os.getloadavg(),
        "torch_threads": threads,
        "torch_threads_probe_seconds_per_epoch": probe,
        "rows": [],
    }
    for dim, dtype in specs:
        section["rows"].append(
            run_spiraljax(graph, manifold="lorentz", dim=dim, dtype=dtype, epochs=epochs, log=log)
        )
        section["rows"].append(
            run_geoopt_lorentz(graph, dim=dim, dtype=dtype, epochs=epochs, log=log)
        )
        section["seconds"] = time.perf_counter() - t0
        section["load_average_end"] = os.getloadavg()
        save(section)
    return section


def interleaved_speed(graph, specs, *, rounds, epochs, threads, log) -> dict:
    """Seconds per epoch, wall and process CPU, of geoopt's and spiraljax's Lorentz
    trainers in alternating rounds of ``epochs`` epochs each, so that both see the same
    load (the training rows above run one after the other, minutes apart, on a shared
    machine). Main phase (uniform negatives, full lr); both warmed up (spiraljax compiled)
    before the first round. Per spec: the median over rounds."""
    import torch

    if threads is None:
        probe = probe_torch_threads(graph)
        threads = min(probe, key=probe.get)
    torch.set_num_threads(threads)
    section = {
        "environment": _torch_environment(),
        "load_average": os.getloadavg(),
        "torch_threads": threads,
        "rounds": rounds,
        "epochs_per_round": epochs,
        "rows": [],
    }
    for dim, dtype in specs:
        g = _geoopt_trainer(graph, dim=dim, dtype=dtype, epochs=300)
        g.epoch = g.burn_in  # main phase
        g.run_epoch()
        cfg = EmbedConfig(
            dim=dim, dtype=dtype, manifold="lorentz", epochs=epochs, **{**RECIPE, "burn_in": 0}
        )
        train(graph, cfg, progress=False)  # compiles; later calls reuse the epoch function
        wall, cpu = {"geoopt": [], "spiraljax": []}, {"geoopt": [], "spiraljax": []}
        for _ in range(rounds):
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(epochs):
                g.run_epoch()
            wall["geoopt"].append((time.perf_counter() - t0) / epochs)
            cpu["geoopt"].append((time.process_time() - c0) / epochs)
            c0 = time.process_time()
            res = train(graph, cfg, progress=False)
            wall["spiraljax"].append(res.train_seconds / epochs)
            cpu["spiraljax"].append((time.process_time() - c0) / epochs)
        row = {"dim": dim, "dtype": dtype}
        for impl in ("geoopt", "spiraljax"):
            row[f"{impl}_seconds_per_epoch"] = float(np.median(wall[impl]))
            row[f"{impl}_cpu_seconds_per_epoch"] = float(np.median(cpu[impl]))
        row["speedup"] = row["geoopt_seconds_per_epoch"] / row["spiraljax_seconds_per_epoch"]
        row["cpu_speedup"] = (
            row["geoopt_cpu_seconds_per_epoch"] / row["spiraljax_cpu_seconds_per_epoch"]
        )
        section["rows"].append(row)
        log(
            f"  speed dim {dim} {dtype}: geoopt {row['geoopt_seconds_per_epoch']:.3f} s/epoch "
            f"({row['geoopt_cpu_seconds_per_epoch']:.3f} CPU), spiraljax "
            f"{row['spiraljax_seconds_per_epoch']:.3f} "
            f"({row['spiraljax_cpu_seconds_per_epoch']:.3f} CPU): {row['speedup']:.1f}× "
            f"({row['cpu_speedup']:.1f}× CPU)"
        )
    return section


# -------------------------------------------------------------------------- WordNet nouns


def run_nouns(graph, *, manifold, dim, overrides, budget, eval_sample, log) -> dict:
    from nouns_embedding import MAX_EPOCHS, _peak_bytes

    from spiraljax.embedding.recipes import recipe

    cfg = recipe(
        "nouns",
        **overrides,
        dim=dim,
        epochs=MAX_EPOCHS,
        time_budget=budget,
        manifold=manifold,
    )
    res = train(graph, cfg, progress=False)
    t0 = time.perf_counter()
    m = reconstruction_metrics(res.embedding, graph, manifold=manifold, sample=eval_sample)
    row = {
        "impl": "spiraljax",
        "manifold": manifold,
        "dim": dim,
        "dtype": cfg.dtype,
        "epochs": len(res.losses),
        "time_budget": budget,
        "map": m.map,
        "mean_rank": m.mean_rank,
        "eval_exact": eval_sample is None,
        "final_loss": float(res.losses[-1]),
        "train_seconds": res.train_seconds,
        "seconds_per_epoch": graph.num_edges / res.steady_relations_per_second,
        "relations_per_second": res.steady_relations_per_second,
        "eval_seconds": time.perf_counter() - t0,
        "peak_bytes_in_use": _peak_bytes(),
        "finite": bool(np.isfinite(res.embedding).all()),
        "config": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__},
    }
    log(_fmt(row))
    return row


# ------------------------------------------------------------------------------- output


def _fmt(r: dict) -> str:
    return (
        f"  {r['impl']:9s} {r['manifold']:8s} dim {r['dim']:2d} {r['dtype']} {r['epochs']:5d} ep: "
        f"MAP {r['map']:.4f}  mean rank {r['mean_rank']:8.3f}  loss {r['final_loss']:.4f}  "
        f"{r['train_seconds']:7.1f} s  {r['seconds_per_epoch']:.4f} s/epoch  "
        f"{r['relations_per_second']:>12,.0f} rel/s"
    )


def _header(env: dict, load=None) -> str:
    v = env["versions"]
    extra = "".join(f" · {k} {v[k]}" for k in ("torch", "geoopt") if k in v)
    tail = f" · load average {load[0]:.1f}" if load else ""
    return (
        f"{env['date']} · {env['backend']} ({env['device']}) · Python {env['python']} · "
        f"jax {v['jax']} · spiraljax {v['spiraljax']}{extra}{tail}"
    )


def _table(rows, edges: int, *, extra: tuple[str, ...] = ()) -> list[str]:
    """Markdown rows; MAP marked † where the final table had non-finite points (their
    MAP is that of the table with NaN/Inf replaced by numbers, meaningless)."""
    head = (
        "| impl | manifold | dim | dtype | epochs | MAP | mean rank | loss | train s "
        "| s/epoch | rel/s |"
    )
    lines = [head + "".join(f" {e} |" for e in extra), "|---" * (11 + len(extra)) + "|"]
    for r in rows:
        cells = [
            r["impl"],
            r["manifold"],
            r["dim"],
            r["dtype"],
            r["epochs"],
            f"{r['map']:.4f}" + ("" if r.get("finite", True) else " †"),
            f"{r['mean_rank']:.3f}",
            f"{r['final_loss']:.4f}",
            f"{r['train_seconds']:.1f}",
            # rows written before seconds_per_epoch was stored: the same edges / steady rate
            f"{r.get('seconds_per_epoch', edges / r['relations_per_second']):.4f}",
            f"{r['relations_per_second']:,.0f}",
        ]
        for e in extra:
            cells.append(f"{r[e]:.1f}" if isinstance(r.get(e), float) else f"{r.get(e, '—')}")
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return lines


def markdown(result: dict) -> str:
    lines = ["# Lorentz vs Poincaré embeddings of WordNet hierarchies", ""]
    if result.get("rows"):
        lines += [
            "## Mammals (1,180 nodes, 6,540 edges)",
            "",
            _header(result["environment"], result.get("load_average")),
            "",
            "Recipe: lr 0.3, 50 negatives, batch 10, burn-in min(20, epochs/5) at lr × 0.1, "
            "exact expmap RSGD.",
            "",
            *_table(result["rows"], MAMMAL_EDGES),
            "",
        ]
    geo = result.get("geoopt")
    if geo:
        probe = geo.get("torch_threads_probe_seconds_per_epoch")
        probe_text = (
            " (probe, s/epoch: "
            + ", ".join(f"{k} thread(s) {v:.3f}" for k, v in probe.items())
            + ")"
            if probe
            else ""
        )
        lines += [
            "## Mammals: spiraljax vs geoopt, Lorentz model, same CPU",
            "",
            _header(geo["environment"], geo.get("load_average")),
            "",
            "geoopt: `ManifoldParameter` on `geoopt.Lorentz()`, `RiemannianSGD`, the same loss, "
            f"recipe and initialisation; torch with {geo['torch_threads']} intra-op thread(s)"
            f"{probe_text}. Both evaluated by `reconstruction_metrics(manifold='lorentz')`. "
            "spiraljax's train s includes compilation (unless an earlier run of the call "
            "compiled the same epoch); s/epoch is the median epoch.",
            "",
            *_table(geo["rows"], MAMMAL_EDGES),
            "",
            "The rows ran one after the other, minutes apart, on a shared machine (load "
            f"average {geo['load_average'][0]:.1f} at the start"
            + (
                f", {geo['load_average_end'][0]:.1f} at the end"
                if geo.get("load_average_end")
                else ""
            )
            + "): their seconds compare quality per run, not speed; the interleaved table "
            "below is the fairer speed comparison.",
            "",
        ]
        if not all(r.get("finite", True) for r in geo["rows"]):
            lines += ["† the final table had non-finite points (NaN/Inf).", ""]
        lines += [*(f"Note: {n}" for n in geo.get("notes", [])), ""] if geo.get("notes") else []
    speed = result.get("speed")
    if speed:
        lines += [
            "## Mammals: seconds per epoch, geoopt vs spiraljax (Lorentz), interleaved",
            "",
            _header(speed["environment"], speed.get("load_average")),
            "",
            f"{speed['rounds']} alternating rounds of {speed['epochs_per_round']} epochs each "
            "(main phase, after warm-up and compilation); median per-epoch wall and process "
            f"CPU seconds; torch with {speed['torch_threads']} intra-op thread(s).",
            "",
            "| dim | dtype | geoopt s/epoch | spiraljax s/epoch | speed-up | geoopt CPU s "
            "| spiraljax CPU s | CPU speed-up |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in speed["rows"]:
            lines.append(
                f"| {r['dim']} | {r['dtype']} | {r['geoopt_seconds_per_epoch']:.3f} | "
                f"{r['spiraljax_seconds_per_epoch']:.3f} | {r['speedup']:.1f}× | "
                f"{r['geoopt_cpu_seconds_per_epoch']:.3f} | "
                f"{r['spiraljax_cpu_seconds_per_epoch']:.3f} | {r['cpu_speedup']:.1f}× |"
            )
        lines.append("")
    nouns = result.get("nouns")
    if nouns:
        lines += [
            "## WordNet nouns (82,115 nodes, 743,241 edges), dim 10",
            "",
            _header(nouns["environment"]),
            "",
            f"Settings: the nouns recipe with `{nouns['candidate']}` "
            f"({nouns['overrides']}), float64, for both models; each run trains until the "
            "first epoch that ends past its budget (compilation included). "
            + ("Exact evaluation over all pairs." if nouns.get("eval_sample") is None else
               f"Evaluation on a sample of {nouns['eval_sample']} source nodes (approximate)."),
            "",
            *_table(nouns["rows"], nouns["data"]["edges"], extra=("time_budget", "eval_seconds")),
            "",
        ]  # fmt: skip
    return "\n".join(lines)


def _parse_spec(text: str) -> tuple[int, str]:
    dim, _, dtype = text.partition(":")
    dtype = dtype or "float64"
    if not dim.isdigit() or dtype not in ("float32", "float64"):
        raise argparse.ArgumentTypeError(f"{text!r}: want DIM:DTYPE, e.g. 5:float64")
    return int(dim), dtype


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 5, 10])
    parser.add_argument("--dtypes", nargs="+", default=["float64"])
    parser.add_argument("--epochs", type=int, nargs="+", default=[300])
    parser.add_argument(
        "--float32-dims",
        type=int,
        nargs="*",
        default=[5],
        help="extra float32 runs at these dims (default: 5)",
    )
    parser.add_argument("--no-mammals", action="store_true", help="skip the mammal rows")
    parser.add_argument(
        "--geoopt",
        type=_parse_spec,
        nargs="*",
        default=[],
        metavar="DIM:DTYPE",
        help="geoopt Lorentz runs (CPU), each beside spiraljax's",
    )
    parser.add_argument("--geoopt-epochs", type=int, default=300)
    parser.add_argument(
        "--speed",
        type=_parse_spec,
        nargs="*",
        default=[],
        metavar="DIM:DTYPE",
        help="interleaved s/epoch, geoopt vs spiraljax Lorentz (CPU)",
    )
    parser.add_argument("--speed-rounds", type=int, default=5)
    parser.add_argument("--speed-epochs", type=int, default=5)
    parser.add_argument("--torch-threads", type=int, default=None, help="default: probe")
    parser.add_argument("--nouns", action="store_true", help="WordNet nouns (GPU)")
    parser.add_argument("--nouns-dim", type=int, default=10)
    parser.add_argument("--nouns-candidate", default="rsgd-b4096-lr240-cap0.3")
    parser.add_argument("--time-budget", type=float, default=90.0, help="s per nouns run")
    parser.add_argument("--total-budget", type=float, default=340.0, help="s for the call")
    parser.add_argument("--eval-reserve", type=float, default=15.0, help="s per nouns eval")
    parser.add_argument("--eval-sample", type=int, default=None, help="approximate eval")
    parser.add_argument("--out", type=Path, default=None, help="default: $OUT or results/")
    parser.add_argument("--merge", action="store_true", help="keep sections not re-run")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run, no result files")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    if args.quick:
        args.dims, args.dtypes, args.epochs, args.float32_dims = [2], ["float64"], [2], []
        args.geoopt_epochs = min(args.geoopt_epochs, 2)
        args.speed_rounds, args.speed_epochs = min(args.speed_rounds, 2), 1
        args.time_budget = min(args.time_budget, 1.0)
        args.eval_sample = args.eval_sample or 50
    out = args.out or (Path(os.environ["OUT"]) if os.environ.get("OUT") else RESULTS)

    def log(msg):
        print(msg, flush=True)

    result: dict = {"benchmark": NAME}
    if args.merge and (out / f"{NAME}.json").exists():
        result = json.loads((out / f"{NAME}.json").read_text())
    graph = load_mammal_closure()
    load = os.getloadavg()
    log(f"mammals: {graph.num_nodes} nodes, {graph.num_edges} edges; load average {load[0]:.1f}")
    if not args.no_mammals:
        result.update(
            environment=environment(),
            load_average=load,
            data={"nodes": graph.num_nodes, "edges": graph.num_edges, "source": graph.source},
            recipe=RECIPE,
            rows=[],
        )
    elif "environment" not in result:
        result["environment"] = environment()

    def save():
        if not args.quick:
            write_results(NAME, result, markdown(result), out=out)

    if not args.no_mammals:
        runs = [(d, t, e) for e in args.epochs for t in args.dtypes for d in args.dims]
        runs += [
            (d, "float32", e)
            for e in args.epochs
            for d in args.float32_dims
            if "float32" not in args.dtypes
        ]
        for dim, dtype, epochs in runs:
            for manifold in MANIFOLDS:
                result["rows"].append(
                    run_spiraljax(
                        graph, manifold=manifold, dim=dim, dtype=dtype, epochs=epochs, log=log
                    )
                )
            save()
        result["mammals_seconds"] = time.perf_counter() - start
    if args.geoopt:

        def save_geoopt(section):
            result["geoopt"] = section
            save()

        geoopt_section(
            graph,
            args.geoopt,
            epochs=args.geoopt_epochs,
            threads=args.torch_threads,
            log=log,
            save=save_geoopt,
        )
    if args.speed:
        result["speed"] = interleaved_speed(
            graph,
            args.speed,
            rounds=args.speed_rounds,
            epochs=args.speed_epochs,
            threads=args.torch_threads,
            log=log,
        )
        save()
    if args.nouns:
        from nouns_embedding import CANDIDATES

        from spiraljax.data import load_noun_closure

        if args.nouns_candidate not in CANDIDATES:
            raise SystemExit(f"unknown candidate {args.nouns_candidate!r}: {sorted(CANDIDATES)}")
        overrides = CANDIDATES[args.nouns_candidate]
        nouns_start = time.perf_counter()
        nouns_graph = load_noun_closure()
        log(f"nouns: {nouns_graph.num_nodes} nodes, {nouns_graph.num_edges} edges")
        result["nouns"] = {
            "environment": environment(),
            "data": {
                "nodes": nouns_graph.num_nodes,
                "edges": nouns_graph.num_edges,
                "source": nouns_graph.source,
            },
            "candidate": args.nouns_candidate,
            "overrides": overrides,
            "eval_sample": args.eval_sample,
            "rows": [],
        }
        for i, manifold in enumerate(MANIFOLDS):
            runs_left = len(MANIFOLDS) - i
            left = args.total_budget - (time.perf_counter() - start)
            budget = max(min(args.time_budget, left / runs_left - args.eval_reserve), 1.0)
            result["nouns"]["rows"].append(
                run_nouns(
                    nouns_graph,
                    manifold=manifold,
                    dim=args.nouns_dim,
                    overrides=overrides,
                    budget=budget,
                    eval_sample=args.eval_sample,
                    log=log,
                )
            )
            result["nouns"]["seconds"] = time.perf_counter() - nouns_start
            save()
    print(markdown(result))
    save()
    total = time.perf_counter() - start
    log(f"{total:.0f} s in all" + ("" if args.quick else f"; wrote {out}/{NAME}.{{json,md}}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
