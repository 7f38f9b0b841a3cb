#!/usr/bin/env python3
"""Lorentz (hyperboloid) vs Poincaré-ball embeddings of the WordNet mammal closure.

Nickel & Kiela 2018 report that the Lorentz model optimises better than the ball for the
same embedding task, most in low dimensions. This script trains both with one recipe
(``train-mammals.sh``: lr 0.3, 50 negatives, batch 10, burn-in 20 epochs at lr × 0.1,
exact expmap RSGD; ``spiraljax.embedding.train`` with ``manifold=``) for each dimension,
dtype and epoch budget asked for, and reports reconstruction MAP and mean rank (exact,
``reconstruction_metrics`` with the model's own distance), training seconds (compilation
included) and steady relations/s. Optionally (``--geoopt-epochs N``, CPU) the same recipe
with geoopt's ``Lorentz`` manifold and ``RiemannianSGD`` for N epochs, beside spiraljax's
Lorentz run of N epochs.

    python benchmarks/lorentz_embedding.py --quick                       # smoke, no files
    python benchmarks/lorentz_embedding.py                               # defaults below
    python benchmarks/lorentz_embedding.py --dims 2 5 10 --dtypes float64 float32 \\
        --epochs 50 300 --geoopt-epochs 20

Defaults: dims 2 5 10, float64, 300 epochs, plus float32 at dim 5 (the dtype where the
ball's boundary margin hurts most), no geoopt. Writes ``lorentz_embedding.{json,md}``
under ``$OUT`` if set, else ``benchmarks/results/``, with device, versions and date.
"""

from __future__ import annotations

import argparse
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


def run_spiraljax(graph, *, manifold, dim, dtype, epochs, log) -> dict:
    burn_in = min(RECIPE["burn_in"], max(epochs // 5, 1))
    cfg = EmbedConfig(
        dim=dim, epochs=epochs, dtype=dtype, manifold=manifold, **{**RECIPE, "burn_in": burn_in}
    )
    res = train(graph, cfg, progress=False)
    m = reconstruction_metrics(res.embedding, graph, manifold=manifold)
    row = {
        "impl": "spiraljax",
        "manifold": manifold,
        "dim": dim,
        "dtype": dtype,
        "epochs": epochs,
        "burn_in": burn_in,
        "map": m.map,
        "mean_rank": m.mean_rank,
        "final_loss": float(res.losses[-1]),
        "train_seconds": res.train_seconds,
        "relations_per_second": res.steady_relations_per_second,
        "finite": bool(np.isfinite(res.embedding).all()),
    }
    log(_fmt(row))
    return row


def run_geoopt_lorentz(graph, *, dim, epochs, log) -> dict:
    """geoopt: ``ManifoldParameter`` on ``geoopt.Lorentz()`` + ``RiemannianSGD`` (float64)."""
    import torch
    from poincare_embedding import GeooptTrainer

    class GeooptLorentzTrainer(GeooptTrainer):
        def __init__(self, graph, **kw):
            super().__init__(graph, **kw)
            geoopt = self.geoopt
            s = self.emb.detach()
            x0 = torch.sqrt(1 + (s * s).sum(-1, keepdim=True))
            self.ball = geoopt.Lorentz()
            self.emb = geoopt.ManifoldParameter(torch.cat([x0, s], -1), manifold=self.ball)
            self.opt = geoopt.optim.RiemannianSGD([self.emb], lr=self.lr)

    torch.set_num_threads(1)
    burn_in = min(RECIPE["burn_in"], max(epochs // 5, 1))
    g = GeooptLorentzTrainer(graph, dim=dim, dtype="float64", **{**RECIPE, "burn_in": burn_in})
    t0 = time.perf_counter()
    loss = float("nan")
    for _ in range(epochs):
        loss = g.run_epoch()
    wall = time.perf_counter() - t0
    emb = g.embedding()
    finite = bool(np.isfinite(emb).all())
    m = reconstruction_metrics(np.nan_to_num(emb), graph, manifold="lorentz")
    row = {
        "impl": "geoopt",
        "manifold": "lorentz",
        "dim": dim,
        "dtype": "float64",
        "epochs": epochs,
        "burn_in": burn_in,
        "map": m.map,
        "mean_rank": m.mean_rank,
        "final_loss": loss,
        "train_seconds": wall,
        "relations_per_second": epochs * graph.num_edges / wall,
        "finite": finite,
    }
    log(_fmt(row))
    return row


def _fmt(r: dict) -> str:
    return (
        f"  {r['impl']:9s} {r['manifold']:8s} dim {r['dim']:2d} {r['dtype']} {r['epochs']:4d} ep: "
        f"MAP {r['map']:.4f}  mean rank {r['mean_rank']:8.3f}  loss {r['final_loss']:.4f}  "
        f"{r['train_seconds']:7.1f} s  {r['relations_per_second']:>10,.0f} rel/s"
    )


def markdown(result: dict) -> str:
    env = result["environment"]
    lines = [
        "# Lorentz vs Poincaré embeddings of the WordNet mammals",
        "",
        f"{env['date']} · {env['backend']} ({env['device']}) · jax {env['versions']['jax']} · "
        f"spiraljax {env['versions']['spiraljax']} · load average {result['load_average'][0]:.1f}",
        "",
        "Recipe: lr 0.3, 50 negatives, batch 10, burn-in min(20, epochs/5) at lr × 0.1.",
        "",
        "| impl | manifold | dim | dtype | epochs | MAP | mean rank | loss | train s | rel/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['impl']} | {r['manifold']} | {r['dim']} | {r['dtype']} | {r['epochs']} | "
            f"{r['map']:.4f} | {r['mean_rank']:.3f} | {r['final_loss']:.4f} | "
            f"{r['train_seconds']:.1f} | {r['relations_per_second']:,.0f} |"
        )
    return "\n".join(lines) + "\n"


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
    parser.add_argument("--geoopt-epochs", type=int, default=0, help="geoopt Lorentz (CPU)")
    parser.add_argument("--geoopt-dim", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny smoke run, no result files")
    args = parser.parse_args(argv)
    if args.quick:
        args.dims, args.dtypes, args.epochs, args.float32_dims = [2], ["float64"], [2], []
        args.geoopt_epochs = min(args.geoopt_epochs, 1)

    def log(msg):
        print(msg, flush=True)

    graph = load_mammal_closure()
    load = os.getloadavg()
    log(f"data: {graph.num_nodes} nodes, {graph.num_edges} edges; load average {load[0]:.1f}")
    runs = [(d, t, e) for e in args.epochs for t in args.dtypes for d in args.dims]
    runs += [
        (d, "float32", e)
        for e in args.epochs
        for d in args.float32_dims
        if "float32" not in args.dtypes
    ]
    rows = []
    for dim, dtype, epochs in runs:
        for manifold in ("poincare", "lorentz"):
            rows.append(
                run_spiraljax(
                    graph, manifold=manifold, dim=dim, dtype=dtype, epochs=epochs, log=log
                )
            )
    if args.geoopt_epochs:
        rows.append(
            run_spiraljax(
                graph,
                manifold="lorentz",
                dim=args.geoopt_dim,
                dtype="float64",
                epochs=args.geoopt_epochs,
                log=log,
            )
        )
        rows.append(
            run_geoopt_lorentz(graph, dim=args.geoopt_dim, epochs=args.geoopt_epochs, log=log)
        )
    env = environment()
    if args.geoopt_epochs:
        import geoopt
        import torch

        env["versions"].update(torch=torch.__version__, geoopt=geoopt.__version__)
    result = {
        "benchmark": "lorentz_embedding",
        "environment": env,
        "load_average": load,
        "data": {"nodes": graph.num_nodes, "edges": graph.num_edges, "source": graph.source},
        "recipe": RECIPE,
        "rows": rows,
    }
    md = markdown(result)
    print(md)
    if not args.quick:
        out = Path(os.environ["OUT"]) if os.environ.get("OUT") else RESULTS
        write_results("lorentz_embedding", result, md, out=out)
        log(f"wrote {out}/lorentz_embedding.{{json,md}}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
