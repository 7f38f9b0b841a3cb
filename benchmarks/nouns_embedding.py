#!/usr/bin/env python3
"""WordNet nouns (82,115 nodes, 743,241 edges) on one GPU: a recipe sweep, then dims 2–50.

One call, bounded in time (default ≈ 8 minutes in all on an H200: 2 × 110 s at dim 10,
4 × 30 s for the other dims, plus evaluations and compilation):

1. every candidate recipe (``CANDIDATES``) trains at dim 10 for ``--budget`` seconds
   (``EmbedConfig.time_budget``; compilation included) and is evaluated exactly (mean rank
   and MAP over all 82,114 × 82,115 pairs, ``reconstruction_metrics``);
2. the best candidate (highest MAP) trains at the other ``--dims`` for ``--dim-budget``
   seconds each.

``--total-budget`` caps the whole run: a later run's budget is shrunk to what is left
(minus a reserve for its evaluation), so the call ends in time; results are written after
every run, so a killed call still leaves them.

Per run: MAP, mean rank, epochs, training seconds, steady relations/s, evaluation seconds,
the compiled memory of one evaluation block (XLA's memory analysis of the distance and
ranking kernels at the block shape) and the process's peak device memory
(``memory_stats()["peak_bytes_in_use"]``, training included; not reported on CPU).

CPU mode (``--cpu-compare``): the nouns recipe on this CPU for ``--cpu-epochs`` epochs
(epochs/s, relations/s, and the projected time to the epochs the GPU run needed), beside
geoopt (``geoopt.PoincareBall`` + ``RiemannianSGD``, float64, the same batch, lr and
negatives) for the same epochs.

    python benchmarks/nouns_embedding.py                          # GPU: sweep + dims
    python benchmarks/nouns_embedding.py --subtree mammal.n.01 --budget 5 --dim-budget 3 \\
        --dims 2,10 --eval-sample 200                             # CPU smoke test
    python benchmarks/nouns_embedding.py --cpu-compare --cpu-epochs 2
    python benchmarks/nouns_embedding.py --candidates burn-in --dims 10 --budget 85 \\
        --total-budget 520 --eval-reserve 15 --name nouns_burn_in   # GPU: burn-in sweep

Writes ``nouns_embedding.{json,md}`` (``nouns_embedding_cpu`` for ``--cpu-compare``) to
``$OUT`` if set, else ``benchmarks/results/``.
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

from spiraljax.data import EdgeList, closure_under, load_noun_closure
from spiraljax.embedding import reconstruction_metrics, train
from spiraljax.embedding.recipes import recipe

# EmbedConfig burn-in of the reference's train-nouns.sh (see spiraljax/embedding/trainer.py).
REF_BURN_IN = {
    "burn_in": 20,
    "burn_in_lr_factor": 0.01,
    "burn_in_negatives": 5,
    "burn_in_unigram_power": 1.0,
}
CAP_240 = {"lr": 240.0, "max_step": 0.3}  # MAP 0.846, MR 7.38 in 95 s with V1's burn-in
# The nouns recipe of 2026-12-03 as overrides of today's (recipes.py): lr 120, no step
# cap, 20 burn-in epochs at lr × 0.1 with 50 unigram^0.75 negatives (3,000 epochs; runs
# here stop at their time budget). The candidates below were named and measured from it.
V1 = {
    "lr": 120.0,
    "max_step": None,
    "burn_in": 20,
    "burn_in_lr_factor": 0.1,
    "burn_in_negatives": None,
    "burn_in_unigram_power": 0.75,
}
# name -> EmbedConfig overrides of the nouns recipe (dim 10, batch 4096, float64);
# "default" is the shipped recipe itself (refburn500 below, with 2,500 epochs).
_V1_CANDIDATES: dict[str, dict] = {
    "rsgd-b4096-lr120": {},
    "rsgd-b4096-lr120-cosine": {"lr_schedule": "cosine"},  # epochs fitted to the budget
    "rsgd-b4096-lr180-cosine": {"lr": 180.0, "lr_schedule": "cosine"},
    "rsgd-b2048-lr60": {"batch_size": 2048},
    "radam-b4096-lr0.3": {"optimizer": "radam", "lr": 0.3},
    # Per-row step cap (EmbedConfig.max_step): larger learning rates without the
    # top-of-hierarchy nodes' summed steps throwing them across the ball.
    "rsgd-b4096-lr120-cap0.3": {"max_step": 0.3},
    "rsgd-b4096-lr240-cap0.3": {"lr": 240.0, "max_step": 0.3},
    "rsgd-b4096-lr480-cap0.3": {"lr": 480.0, "max_step": 0.3},
    "rsgd-b8192-lr960-cap0.3": {"batch_size": 8192, "lr": 960.0, "max_step": 0.3},
    "rsgd-b8192-lr480-cap0.3": {"batch_size": 8192, "lr": 480.0, "max_step": 0.3},
    # The reference's burn-in for the nouns (train-nouns.sh: -burnin 20 -burnin_multiplier
    # 0.01 -neg_multiplier 0.1 -dampening 1.0): lr × 0.01, 5 negatives ∝ parent count,
    # where the candidates above burn in for 20 epochs at lr × 0.1 with 50 unigram^0.75
    # negatives. On the CPU proxy (benchmarks/results/burn_in_proxy.md: WordNet animals,
    # batch 2048, lr 240, cap 0.3, 300 epochs) it trains better the longer it runs, up to
    # 2/3 of the epochs (MAP 0.93 → 0.96 from 20 to 200 burn-in epochs; burn-in alone: 0.02),
    # and its epochs are 4–6× cheaper on the CPU (5 negatives instead of 50; less on a GPU,
    # where a step of the nouns takes ≈ 0.2 ms). The nouns run ≈ 2,300 main epochs in 85 s:
    # burn-ins of 100 to 2,000 epochs (2,000 at the main epochs' cost would still leave
    # ≈ 13 s of main phase).
    **{
        f"rsgd-b4096-lr240-cap0.3-refburn{n}": {**CAP_240, **REF_BURN_IN, "burn_in": n}
        for n in (20, 100, 500, 1000, 2000)
    },
    "rsgd-b4096-lr360-cap0.3-refburn500": {**CAP_240, **REF_BURN_IN, "lr": 360.0, "burn_in": 500},
    "rsgd-b4096-lr240-cap0.3-noburn": {**CAP_240, "burn_in": 0},
}
CANDIDATES: dict[str, dict] = {
    "default": {},
    **{name: {**V1, **o} for name, o in _V1_CANDIDATES.items()},
}
# One GPU call (≈ 8 min on an H200, module docstring): the best recipe so far beside the
# reference burn-in for 100 to 2,000 epochs.
BURN_IN_SWEEP = ",".join(
    ["rsgd-b4096-lr240-cap0.3"]
    + [f"rsgd-b4096-lr240-cap0.3-refburn{n}" for n in (100, 500, 1000, 2000)]
)
DEFAULT_CANDIDATES = "default"
MAX_EPOCHS = 100_000


def _peak_bytes() -> int | None:
    import jax

    stats = jax.devices()[0].memory_stats() or {}
    return stats.get("peak_bytes_in_use")


def _eval_block_bytes(embedding: np.ndarray, graph: EdgeList) -> int:
    """Compiled device memory of one evaluation block (arguments + outputs + temporaries)."""
    import jax
    import jax.numpy as jnp

    from spiraljax.embedding import evaluation as E

    block = min(E.block_rows(graph.num_nodes), graph.num_nodes)
    _, table = E.neighbour_table(graph)
    with E.x64_context(embedding.dtype):
        x = jnp.asarray(embedding)
        rows = jnp.zeros(block, jnp.int32)
        c = jnp.asarray(-1.0, x.dtype)
        d_shape = jax.ShapeDtypeStruct((block, graph.num_nodes), x.dtype)
        nbrs = jax.ShapeDtypeStruct((block, table.shape[1]), jnp.int32)
        total = 0
        for fn, args in (
            (E._dist_rows_blocked, (x, c, rows)),
            (E._block_scores, (d_shape, rows, nbrs)),
        ):
            m = fn.lower(*args).compile().memory_analysis()
            if m is None:
                return -1
            total = max(
                total,
                m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes,
            )
        return int(total)


def run_one(graph, name, overrides, *, dim, budget, epochs=None, eval_sample=None, progress):
    cfg = recipe("nouns", **overrides, dim=dim, epochs=epochs or MAX_EPOCHS, time_budget=budget)
    result = train(graph, cfg, progress=progress)
    t0 = time.perf_counter()
    m = reconstruction_metrics(
        result.embedding, graph, curvature=cfg.curvature, sample=eval_sample, progress=progress
    )
    eval_s = time.perf_counter() - t0
    row = {
        "recipe": name,
        "dim": dim,
        "map": m.map,
        "mean_rank": m.mean_rank,
        "eval_exact": eval_sample is None,
        "epochs": len(result.losses),
        "train_seconds": result.train_seconds,
        "relations_per_second": result.steady_relations_per_second,
        "eval_seconds": eval_s,
        "eval_block_bytes": _eval_block_bytes(result.embedding, graph),
        "peak_bytes_in_use": _peak_bytes(),
        "final_loss": float(result.losses[-1]),
        # the burn-in's epochs run and their seconds (its epochs can cost less than the
        # main ones: burn_in_negatives)
        "burn_in_epochs_run": min(len(result.losses), cfg.burn_in),
        "burn_in_seconds": float(
            np.sum(graph.num_edges / result.relations_per_second[: cfg.burn_in])
        ),
        "config": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__},
    }
    return row, result


def _table(rows) -> str:
    head = (
        "| recipe | dim | MAP | mean rank | epochs | train s | relations/s | eval s "
        "| eval block MiB | peak MiB |\n|---|---|---|---|---|---|---|---|---|---|\n"
    )

    def mib(b):
        return "n/a" if b is None or b < 0 else f"{b / 2**20:,.0f}"

    return head + "".join(
        f"| {r['recipe']} | {r['dim']} | {r['map']:.4f} | {r['mean_rank']:.2f} | {r['epochs']} "
        f"| {r['train_seconds']:.1f} | {r['relations_per_second'] / 1e6:.2f} M "
        f"| {r['eval_seconds']:.1f} | {mib(r['eval_block_bytes'])} "
        f"| {mib(r['peak_bytes_in_use'])} |\n"
        for r in rows
    )


def sweep(args, graph, out: Path) -> None:
    start = time.perf_counter()
    env = environment()
    rows: list[dict] = []
    payload = {
        "benchmark": "nouns_embedding",
        "num_nodes": graph.num_nodes,
        "num_edges": graph.num_edges,
        "data": graph.source,
        "environment": env,
        "bar": "dim 10: MAP >= 0.87 and mean rank <= 4.5 in <= 120 s of training",
        "runs": rows,
    }

    def budget_for(requested):
        left = args.total_budget - (time.perf_counter() - start) - args.eval_reserve
        return max(min(requested, left), 1.0)

    def save():
        md = (
            f"# WordNet nouns: {graph.num_nodes} nodes, {graph.num_edges} edges, "
            f"{env['device']} ({env['backend']}), {env['date']}\n\n{_table(rows)}"
        )
        write_results(args.name, payload, md, out=out)

    names = (BURN_IN_SWEEP if args.candidates == "burn-in" else args.candidates).split(",")
    for name in names:
        if name not in CANDIDATES:
            raise SystemExit(f"unknown candidate {name!r}; choose from {sorted(CANDIDATES)}")
    rate_epochs_per_s = None
    for name in names:
        overrides = dict(CANDIDATES[name])
        budget = budget_for(args.budget)
        epochs = None
        if overrides.get("lr_schedule") == "cosine":
            # The decay needs the epoch count: fit it to the budget at the measured rate.
            if rate_epochs_per_s is None:  # no constant-lr run yet: a 10 s calibration
                constant = {**overrides, "lr_schedule": "constant"}
                cal_cfg = recipe("nouns", **constant, epochs=MAX_EPOCHS, time_budget=10.0)
                cal = train(graph, cal_cfg, progress=False)
                rate_epochs_per_s = len(cal.losses) / cal.train_seconds
                budget = budget_for(args.budget)
            epochs = max(int(0.95 * budget * rate_epochs_per_s), 2)
        row, result = run_one(
            graph, name, overrides, dim=10, budget=budget, epochs=epochs,
            eval_sample=args.eval_sample, progress=args.progress,
        )  # fmt: skip
        if rate_epochs_per_s is None:
            rate_epochs_per_s = len(result.losses) / result.train_seconds
        rows.append(row)
        print(_table(rows[-1:]).splitlines()[-1], flush=True)
        print(f"  burn-in: {row['burn_in_epochs_run']} epochs, {row['burn_in_seconds']:.1f} s")
        save()
    best = max((r for r in rows if r["dim"] == 10), key=lambda r: r["map"])
    payload["chosen"] = best["recipe"]
    best_cfg = best["config"]
    for dim in (int(d) for d in args.dims.split(",")):
        if dim == 10:
            continue
        budget = budget_for(args.dim_budget)
        epochs = None
        if best_cfg["lr_schedule"] == "cosine":
            epochs = max(int(0.95 * budget * best["epochs"] / best["train_seconds"]), 2)
        row, _ = run_one(
            graph, best["recipe"], CANDIDATES[best["recipe"]], dim=dim, budget=budget,
            epochs=epochs, eval_sample=args.eval_sample, progress=args.progress,
        )  # fmt: skip
        rows.append(row)
        print(_table(rows[-1:]).splitlines()[-1], flush=True)
        save()
    payload["total_seconds"] = time.perf_counter() - start
    save()
    print(_table(rows))
    total = payload["total_seconds"]
    print(f"chosen: {best['recipe']}; wrote {out}/{args.name}.json ({total:.0f} s in all)")


# ------------------------------------------------------------------ CPU vs geoopt


def _geoopt_epochs(graph: EdgeList, cfg, epochs: int) -> list[float]:
    """Seconds per epoch of the nouns recipe in geoopt (float64), sparse negative rejection."""
    import torch
    from poincare_embedding import GeooptTrainer

    class SparseGeoopt(GeooptTrainer):
        """``GeooptTrainer`` without its dense n × n adjacency (6.7 GB for the nouns)."""

        def __init__(self, graph, **kw):
            n = graph.num_nodes
            saved = np.zeros((1, 1), bool)
            self._keys = np.sort(graph.edges[:, 0].astype(np.int64) * n + graph.edges[:, 1])
            # The parent builds adjacency[n, n]; give it a 1-node view of the graph instead.
            tiny = EdgeList(("a", "b"), np.array([[0, 1]], np.int32), "tiny")
            super().__init__(tiny, **kw)
            import geoopt

            self.graph, self.adjacency = graph, saved
            init = torch.empty(n, kw["dim"], dtype=self.dtype).uniform_(-1e-3, 1e-3)
            self.emb = geoopt.ManifoldParameter(init, manifold=self.ball)
            self.opt = geoopt.optim.RiemannianSGD([self.emb], lr=kw["lr"])
            counts = np.bincount(graph.edges[:, 1], minlength=n) ** 0.75
            self.unigram = counts / counts.sum()

        def _negatives(self, u, burn_in):
            n = self.graph.num_nodes
            shape = (u.size, self.k)
            if burn_in:
                cand = self.rng.choice(n, size=shape, p=self.unigram)
            else:
                cand = self.rng.integers(0, n, size=shape)
            keys = u[:, None].astype(np.int64) * n + cand
            pos = np.clip(np.searchsorted(self._keys, keys), 0, self._keys.size - 1)
            bad = (cand == u[:, None]) | (self._keys[pos] == keys)
            return cand, ~bad

    torch.set_num_threads(max(os.cpu_count() or 1, 1))
    g = SparseGeoopt(
        graph, dim=cfg.dim, lr=cfg.lr, negatives=cfg.negatives, batch_size=cfg.batch_size,
        burn_in=cfg.burn_in, dtype="float64",
    )  # fmt: skip
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        g.run_epoch()
        times.append(time.perf_counter() - t0)
    return times


def cpu_compare(args, graph, out: Path) -> None:
    cfg = recipe("nouns", epochs=args.cpu_epochs, burn_in=1)
    result = train(graph, cfg, progress=args.progress)
    per_epoch = result.train_seconds / len(result.losses)
    steady = graph.num_edges / result.steady_relations_per_second
    gpu_epochs = args.gpu_epochs
    rows = {
        "spiraljax": {
            "epochs": len(result.losses),
            "seconds_per_epoch_first": float(graph.num_edges / result.relations_per_second[0]),
            "seconds_per_epoch_steady": steady,
            "relations_per_second": result.steady_relations_per_second,
            "projected_hours_to_gpu_epochs": gpu_epochs * steady / 3600,
        }
    }
    try:
        times = _geoopt_epochs(graph, cfg, args.cpu_epochs)
        rows["geoopt"] = {
            "epochs": len(times),
            "seconds_per_epoch_steady": float(np.median(times)),
            "relations_per_second": graph.num_edges / float(np.median(times)),
            "projected_hours_to_gpu_epochs": gpu_epochs * float(np.median(times)) / 3600,
        }
    except ImportError as e:
        rows["geoopt"] = {"skipped": str(e)}
    env = environment()
    payload = {
        "benchmark": "nouns_embedding_cpu",
        "num_nodes": graph.num_nodes,
        "num_edges": graph.num_edges,
        "recipe": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__},
        "gpu_epochs": gpu_epochs,
        "environment": env,
        "load_average": os.getloadavg(),
        "results": rows,
        "per_epoch_seconds_all": per_epoch,
    }
    md = f"# WordNet nouns recipe on CPU ({env['platform']}, {env['cpu_count']} cores)\n\n"
    md += "| library | s/epoch | relations/s | projected h to the GPU's epochs |\n"
    md += "|---|---|---|---|\n"
    for lib, r in rows.items():
        if "skipped" in r:
            md += f"| {lib} | skipped: {r['skipped']} | | |\n"
        else:
            md += (
                f"| {lib} | {r['seconds_per_epoch_steady']:.1f} | "
                f"{r['relations_per_second']:,.0f} | {r['projected_hours_to_gpu_epochs']:.1f} |\n"
            )
    write_results(f"{args.name}_cpu", payload, md, out=out)
    print(md)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--budget", type=float, default=110.0, help="s of training per candidate")
    p.add_argument("--dim-budget", type=float, default=30.0, help="s of training per dim")
    p.add_argument("--total-budget", type=float, default=480.0, help="s for the whole call")
    p.add_argument("--eval-reserve", type=float, default=25.0, help="s kept for each eval")
    p.add_argument(
        "--candidates",
        default=DEFAULT_CANDIDATES,
        help="comma-separated CANDIDATES names, or 'burn-in' for BURN_IN_SWEEP",
    )
    p.add_argument("--dims", default="2,5,10,20,50")
    p.add_argument("--subtree", default=None, help="train on the closure under this synset")
    p.add_argument("--eval-sample", type=int, default=None, help="approximate evaluation")
    p.add_argument("--progress", action="store_true")
    p.add_argument("--name", default="nouns_embedding")
    p.add_argument("--cpu-compare", action="store_true")
    p.add_argument("--cpu-epochs", type=int, default=2)
    p.add_argument("--gpu-epochs", type=int, default=3000, help="epochs of the GPU run")
    args = p.parse_args(argv)
    out = Path(os.environ["OUT"]) if os.environ.get("OUT") else RESULTS
    graph = load_noun_closure()
    if args.subtree:
        graph = closure_under(graph, args.subtree)
    print(f"{graph.source}: {graph.num_nodes} nodes, {graph.num_edges} edges", flush=True)
    if args.cpu_compare:
        cpu_compare(args, graph, out)
    else:
        sweep(args, graph, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
