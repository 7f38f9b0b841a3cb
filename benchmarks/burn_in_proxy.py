#!/usr/bin/env python3
"""Burn-in at large batch on a CPU-sized proxy of the WordNet nouns (issue 15).

Trains the closure under ``--subtree`` (default ``animal.n.01``: 4,017 nodes, 29,795 edges)
with the nouns recipe at a large batch (default 2048) and a step cap, once per burn-in
variant (``VARIANTS``), learning rate (``--lrs``) and seed (``--seeds``), and evaluates each
run exactly (mean rank and MAP over all pairs). The variants:

* ``none`` — no burn-in;
* ``ours`` — 20 epochs at lr × 0.1, 50 unigram^0.75 negatives (``EmbedConfig`` defaults,
  the current nouns recipe);
* ``ref-mammals`` — 20 epochs at lr × 0.01, 50 unigram^0.75 negatives (the reference's
  ``embed.py`` defaults, as ``train-mammals.sh`` runs);
* ``ref-nouns`` / ``-10`` / ``-50`` / ``-100`` / ``-200`` / ``-300`` — 20 / 10 / 50 / 100 /
  200 / 300 epochs at lr × 0.01, 5 negatives ∝ parent count (``train-nouns.sh``:
  ``-burnin_multiplier 0.01 -neg_multiplier 0.1 -dampening 1.0``);
* ``ours-50`` — ``ours`` for 50 epochs; ``ours-uniform`` — ``ours`` with uniform negatives;
* ``ref-nouns-uniform`` — ``ref-nouns`` with its 5 negatives uniform over the nodes;
* ``slow-start-only`` — 20 epochs at lr × 0.01 with the main phase's 50 uniform negatives:
  a learning-rate warm-up and nothing else.

    PYTHONPATH=. python benchmarks/burn_in_proxy.py --seeds 0,1   # 20 runs, ≈ 20 min, 2 cores
    PYTHONPATH=. python benchmarks/burn_in_proxy.py --lrs 240 --seeds 0,1 --append \\
        --variants ours-50,ref-nouns-50                              # more rows, same file

Writes ``burn_in_proxy.{json,md}`` to ``$OUT`` if set, else ``benchmarks/results/`` (after
every run). The runs are listed under ``"trials"`` (not ``"runs"``), so
``collect_results.py`` keeps them off the embedding-quality page: they are a proxy, not a
result on the nouns.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, environment, write_results

from spiraljax.data import closure_under, load_noun_closure
from spiraljax.embedding import reconstruction_metrics, train
from spiraljax.embedding.recipes import recipe

REF_NOUNS = {"burn_in_lr_factor": 0.01, "burn_in_negatives": 5, "burn_in_unigram_power": 1.0}
VARIANTS: dict[str, dict] = {
    "none": {"burn_in": 0},
    "ours": {"burn_in": 20},
    "ref-mammals": {"burn_in": 20, "burn_in_lr_factor": 0.01},
    "ref-nouns": {"burn_in": 20, **REF_NOUNS},
    "ref-nouns-10": {"burn_in": 10, **REF_NOUNS},
    # what matters in the burn-in: its length, the slow start or the negatives?
    "ours-50": {"burn_in": 50},
    "ours-uniform": {"burn_in": 20, "burn_in_unigram_power": 0.0},
    "ref-nouns-50": {"burn_in": 50, **REF_NOUNS},
    "ref-nouns-100": {"burn_in": 100, **REF_NOUNS},
    "ref-nouns-200": {"burn_in": 200, **REF_NOUNS},
    "ref-nouns-300": {"burn_in": 300, **REF_NOUNS},
    "ref-nouns-uniform": {"burn_in": 20, **REF_NOUNS, "burn_in_unigram_power": 0.0},
    "slow-start-only": {"burn_in": 20, "burn_in_lr_factor": 0.01, "burn_in_unigram_power": 0.0},
}


def _markdown(payload: dict) -> str:
    a = payload["settings"]
    n = len({t["date"][:16] for t in payload["trials"]})
    lines = [
        f"# Burn-in at batch {a['batch_size']} on the closure under {a['subtree']} "
        f"({payload['num_nodes']} nodes, {payload['num_edges']} edges)\n",
        f"dim {a['dim']}, max_step {a['max_step']}, 50 negatives, float64; CPU "
        f"({payload['environment']['cpu_count']} cores, shared with other jobs: the seconds "
        "are only indicative). Epochs include the burn-in. MAP and mean rank: the mean over "
        "the seeds, and min–max. Runs from "
        + " to ".join(sorted({t["date"][:16] for t in payload["trials"]})[:: max(n - 1, 1)])
        + " (UTC).\n",
        "| epochs | lr | burn-in | seeds | MAP | MAP min–max | mean rank | MR min–max | train s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in payload["summary"]:
        lines.append(
            f"| {row['epochs']} | {row['lr']:g} | {row['variant']} | {row['seeds']} "
            f"| {row['map']:.4f} | {row['map_min']:.4f}–{row['map_max']:.4f} "
            f"| {row['mean_rank']:.2f} | {row['mean_rank_min']:.2f}–{row['mean_rank_max']:.2f} "
            f"| {row['train_seconds']:.1f} |"
        )
    if payload.get("notes"):
        lines.append("")
        lines += [f"* {note}" for note in payload["notes"]]
    lines.append("\nVariants (EmbedConfig overrides of the nouns recipe):\n")
    lines += [f"* `{v}`: `{payload['variants'][v]}`" for v in payload["variants"]]
    return "\n".join(lines) + "\n"


def _summary(trials: list[dict]) -> list[dict]:
    """One row per (epochs, lr, variant), in the order first run."""
    groups: dict[tuple, list[dict]] = {}
    for t in trials:
        groups.setdefault((t["epochs"], t["lr"], t["variant"]), []).append(t)
    rows = []
    for (epochs, lr, variant), group in sorted(groups.items(), key=lambda kv: kv[0][:2]):
        maps = np.array([t["map"] for t in group])
        ranks = np.array([t["mean_rank"] for t in group])
        rows.append(
            {
                "epochs": epochs,
                "lr": lr,
                "variant": variant,
                "seeds": len(group),
                "map": float(maps.mean()),
                "map_min": float(maps.min()),
                "map_max": float(maps.max()),
                "mean_rank": float(ranks.mean()),
                "mean_rank_min": float(ranks.min()),
                "mean_rank_max": float(ranks.max()),
                "train_seconds": float(np.mean([t["train_seconds"] for t in group])),
            }
        )
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--subtree", default="animal.n.01")
    p.add_argument("--batch-size", type=int, default=2048)
    p.add_argument("--lrs", default="120,240")
    p.add_argument("--max-step", type=float, default=0.3)
    p.add_argument("--epochs", type=int, default=150)
    p.add_argument("--dim", type=int, default=10)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--variants", default="none,ours,ref-mammals,ref-nouns,ref-nouns-10")
    p.add_argument("--name", default="burn_in_proxy")
    p.add_argument(
        "--append",
        action="store_true",
        help="add to the trials of an existing <name>.json (same subtree, batch, dim, cap)",
    )
    args = p.parse_args(argv)
    out = Path(os.environ["OUT"]) if os.environ.get("OUT") else RESULTS
    graph = closure_under(load_noun_closure(), args.subtree)
    variants = args.variants.split(",")
    for v in variants:
        if v not in VARIANTS:
            raise SystemExit(f"unknown variant {v!r}; choose from {sorted(VARIANTS)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    settings = {
        "subtree": args.subtree,
        "batch_size": args.batch_size,
        "max_step": args.max_step,
        "dim": args.dim,
    }
    trials: list[dict] = []
    notes: list[str] = []
    previous = out / f"{args.name}.json"
    if args.append and previous.exists():
        old = json.loads(previous.read_text(encoding="utf-8"))
        if old["settings"] != settings:
            raise SystemExit(f"--append: {previous} has settings {old['settings']}")
        trials = old["trials"]
        notes = old.get("notes", [])
    payload = {
        "benchmark": "burn_in_proxy",
        "num_nodes": graph.num_nodes,
        "num_edges": graph.num_edges,
        "data": graph.source,
        "settings": settings,
        "variants": {v: VARIANTS[v] for v in dict.fromkeys([t["variant"] for t in trials])},
        "environment": environment(),
        "trials": trials,
        "notes": notes,
    }
    payload["variants"].update({v: VARIANTS[v] for v in variants})
    for lr in (float(x) for x in args.lrs.split(",")):
        for seed in seeds:
            for v in variants:
                cfg = recipe(
                    "nouns", **VARIANTS[v], dim=args.dim, epochs=args.epochs, lr=lr,
                    batch_size=args.batch_size, max_step=args.max_step, seed=seed,
                )  # fmt: skip
                date = environment()["date"]
                load = os.getloadavg()[0]
                result = train(graph, cfg, progress=False)
                m = reconstruction_metrics(result.embedding, graph, curvature=cfg.curvature)
                trials.append(
                    {
                        "variant": v,
                        "epochs": args.epochs,
                        "lr": lr,
                        "seed": seed,
                        "map": m.map,
                        "mean_rank": m.mean_rank,
                        "train_seconds": result.train_seconds,
                        "final_loss": float(result.losses[-1]),
                        "date": date,
                        "load_average": load,
                    }
                )
                print(
                    f"{args.epochs} epochs lr {lr:g} seed {seed} {v}: MAP {m.map:.4f} "
                    f"MR {m.mean_rank:.2f} ({result.train_seconds:.1f} s)",
                    flush=True,
                )
                payload["summary"] = _summary(trials)
                write_results(args.name, payload, _markdown(payload), out=out)
    print(_markdown(payload))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
