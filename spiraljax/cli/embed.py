"""The ``demo`` and ``embed`` sub-commands of the ``spiraljax`` command line.

* ``spiraljax demo`` — Poincaré embeddings of the shipped WordNet mammal closure with
  the tuned defaults, reconstruction mean rank and MAP, nearest neighbours, a disk PNG.
* ``spiraljax embed`` — the same on any ``child<TAB>parent`` TSV, every setting an option.
"""

from __future__ import annotations

import argparse
import importlib.util
from collections.abc import Sequence
from pathlib import Path

__all__ = ["DEMO_QUERIES", "DEMO_SETTINGS", "register_demo", "register_embed"]


# ----------------------------------------------------------------------- demo and embed

# Defaults of `spiraljax demo`: the reference recipe (dim 5, 50 negatives, batch 10, 20
# burn-in epochs) with lr 1.0 for 100 epochs instead of lr 0.3 for 300: the same
# reconstruction (MAP ≈ 0.94, mean rank ≈ 1.3 in float64) in a third of the time, well
# under 3 minutes on a shared 2-core CPU (see benchmarks/poincare_embedding.py).
DEMO_SETTINGS = {
    "dim": 5,
    "epochs": 100,
    "lr": 1.0,
    "negatives": 50,
    "burn_in": 20,
    "batch_size": 10,
    "seed": 0,
}
DEMO_QUERIES = ("dog.n.01", "whale.n.02", "horse.n.01", "primate.n.02", "rodent.n.01")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer ≥ 1, got {text}")
    return value


def _nonnegative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer ≥ 0, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def _nonnegative_float(text: str) -> float:
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number ≥ 0, got {text}")
    return value


def _add_training_options(p: argparse.ArgumentParser, defaults: dict, output: str) -> None:
    p.add_argument(
        "--dim",
        type=_positive_int,
        default=defaults["dim"],
        help="embedding dimension (default: %(default)s)",
    )
    p.add_argument(
        "--epochs",
        type=_positive_int,
        default=defaults["epochs"],
        help="training epochs, burn-in included (default: %(default)s)",
    )
    p.add_argument(
        "--lr",
        type=_positive_float,
        default=defaults["lr"],
        help="Riemannian SGD learning rate (default: %(default)s)",
    )
    p.add_argument(
        "--negatives",
        type=_positive_int,
        default=defaults["negatives"],
        help="negatives per positive pair (default: %(default)s)",
    )
    p.add_argument(
        "--burn-in",
        type=_nonnegative_int,
        default=defaults["burn_in"],
        help="initial epochs at a reduced lr with unigram negatives (default: %(default)s)",
    )
    p.add_argument(
        "--batch-size",
        type=_positive_int,
        default=defaults["batch_size"],
        help="positive pairs per step (default: %(default)s)",
    )
    p.add_argument(
        "--seed", type=int, default=defaults["seed"], help="random seed (default: %(default)s)"
    )
    p.add_argument(
        "--output",
        type=Path,
        default=Path(output),
        help="output directory, written atomically (default: %(default)s)",
    )
    p.add_argument(
        "--dtype",
        choices=("float64", "float32"),
        default="float64",
        help="floating-point type of the embedding (default: %(default)s; float32 "
        "has the same boundary margin and reach, about half the memory)",
    )
    p.add_argument(
        "--devices",
        type=_positive_int,
        default=1,
        help="devices to split each batch over, data parallel, the table replicated "
        "(default: %(default)s; batch size must be divisible by it)",
    )
    p.add_argument(
        "--manifold",
        choices=("poincare", "lorentz"),
        default="poincare",
        help="model of hyperbolic space: the Poincaré ball (Nickel & Kiela 2017) or the "
        "Lorentz hyperboloid (Nickel & Kiela 2018; rows have dim + 1 coordinates) "
        "(default: %(default)s)",
    )
    p.add_argument("--no-plot", action="store_true", help="skip the Poincaré-disk PNG")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def register_demo(subparsers) -> None:
    """Add ``spiraljax demo`` to ``subparsers``."""
    p = subparsers.add_parser(
        "demo",
        help="Poincaré embeddings of the WordNet mammal hierarchy (the main job)",
        description="Train Poincaré embeddings (Nickel & Kiela 2017) of the WordNet 3.0 mammal "
        "closure shipped with spiraljax; report reconstruction mean rank and MAP, nearest "
        "neighbours, and write embedding.npz, metrics.json and poincare_disk.png.",
    )
    _add_training_options(p, DEMO_SETTINGS, "spiraljax-demo")
    p.set_defaults(handler=_run_demo, data=None, closure=False)


# Options of `spiraljax embed` whose default comes from the --dataset recipe
# (spiraljax/embedding/recipes.py); None on the command line means "the recipe's".
RECIPE_OPTIONS = ("dim", "epochs", "lr", "negatives", "burn_in", "batch_size", "seed")
# `spiraljax embed` options of the burn-in (EmbedConfig fields of the same names).
BURN_IN_OPTIONS = ("burn_in_lr_factor", "burn_in_negatives", "burn_in_unigram_power")


def register_embed(subparsers) -> None:
    """Add ``spiraljax embed`` to ``subparsers``."""
    p = subparsers.add_parser(
        "embed",
        help="Poincaré embeddings of any child<TAB>parent hierarchy",
        description="Train Poincaré embeddings of a shipped hierarchy (--dataset mammals or "
        "nouns, each with its own default recipe) or of a child<TAB>parent TSV (--data, the "
        "mammal recipe of Nickel & Kiela, train-mammals.sh). Changing --batch-size without "
        "--lr scales the learning rate linearly with the batch.",
    )
    from spiraljax.embedding.recipes import DATASETS

    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "--data",
        type=Path,
        default=None,
        help="child<TAB>parent TSV ('#' comments allowed; trained with the mammals recipe)",
    )
    source.add_argument(
        "--dataset",
        choices=sorted(DATASETS),
        default=None,
        help="shipped hierarchy: mammals (1,180 nouns) or nouns (82,115 WordNet nouns, a "
        "large-batch GPU recipe; see docs/how-to/wordnet-nouns.md) (default: mammals)",
    )
    p.add_argument(
        "--closure", action="store_true", help="train on the transitive closure of the file's edges"
    )
    _add_training_options(p, dict.fromkeys(RECIPE_OPTIONS), "spiraljax-embedding")
    for action in p._actions:
        if action.dest in RECIPE_OPTIONS and action.help:
            action.help = action.help.replace("%(default)s", "the dataset's recipe")
    p.add_argument(
        "--optimizer",
        choices=("rsgd", "radam"),
        default=None,
        help="Riemannian SGD or Riemannian Adam (default: the dataset's recipe)",
    )
    p.add_argument(
        "--lr-schedule",
        choices=("constant", "cosine"),
        default=None,
        help="learning rate after burn-in (default: the dataset's recipe)",
    )
    p.add_argument(
        "--time-budget",
        type=_positive_float,
        default=None,
        help="stop training after the epoch that passes this many seconds (default: none)",
    )
    p.add_argument(
        "--max-step",
        type=_positive_float,
        default=None,
        help="cap on the Riemannian length of one row's step, for large batches at a high "
        "learning rate (default: none)",
    )
    p.add_argument(
        "--burn-in-lr-factor",
        type=_positive_float,
        default=None,
        help="burn-in learning rate as a multiple of --lr (default: 0.1; the reference's "
        "embed.py uses 0.01)",
    )
    p.add_argument(
        "--burn-in-negatives",
        type=_positive_int,
        default=None,
        help="negatives per pair during burn-in, at most --negatives (default: --negatives; "
        "the reference's train-nouns.sh uses 5 of 50)",
    )
    p.add_argument(
        "--burn-in-unigram-power",
        type=_nonnegative_float,
        default=None,
        help="burn-in negatives are drawn ∝ (times a node is a parent) ** this power, 0 = "
        "uniform (default: 0.75; train-nouns.sh uses 1.0)",
    )
    p.add_argument(
        "--eval-sample",
        type=_positive_int,
        default=None,
        help="evaluate on this many random nodes only: approximate metrics, faster "
        "(default: exact, all pairs)",
    )
    p.set_defaults(handler=_run_embed)


def _embed_config(args: argparse.Namespace, dataset: str):
    """The ``EmbedConfig`` of `spiraljax embed`: the dataset's recipe, then the options."""
    from spiraljax.embedding.recipes import recipe

    overrides = {k: getattr(args, k) for k in RECIPE_OPTIONS if getattr(args, k) is not None}
    for k in ("optimizer", "lr_schedule", "time_budget", "max_step", "manifold", *BURN_IN_OPTIONS):
        if getattr(args, k) is not None:
            overrides[k] = getattr(args, k)
    return recipe(dataset, dtype=args.dtype, devices=args.devices, **overrides)


def _run_demo(args: argparse.Namespace) -> int:
    return _train_and_report(args, queries=DEMO_QUERIES, title="WordNet mammals")


def _run_embed(args: argparse.Namespace) -> int:
    from spiraljax.data import load_edges
    from spiraljax.embedding.recipes import load_dataset

    dataset = args.dataset or "mammals"
    config = _embed_config(args, dataset)
    graph = (
        load_dataset(dataset) if args.data is None else load_edges(args.data, closure=args.closure)
    )
    title = {"mammals": "WordNet mammals", "nouns": "WordNet nouns"}.get(args.dataset)
    return _train_and_report(
        args, queries=(), title=title, config=config, graph=graph, sample=args.eval_sample
    )


def _train_and_report(
    args: argparse.Namespace,
    *,
    queries: Sequence[str],
    title,
    config=None,
    graph=None,
    sample: int | None = None,
) -> int:
    import jax.numpy as jnp
    import numpy as np

    from spiraljax.data import load_edges, load_mammal_closure
    from spiraljax.embedding import EmbedConfig, reconstruction_metrics, train
    from spiraljax.embedding.evaluation import x64_context
    from spiraljax.embedding.output import environment_info, write_run
    from spiraljax.geometry import lorentz
    from spiraljax.kernels.neighbors import nearest_neighbors

    config = config or EmbedConfig(
        dim=args.dim,
        epochs=args.epochs,
        lr=args.lr,
        negatives=args.negatives,
        burn_in=args.burn_in,
        batch_size=args.batch_size,
        seed=args.seed,
        dtype=args.dtype,
        devices=args.devices,
        manifold=args.manifold,
    )
    if graph is None:
        graph = (
            load_mammal_closure()
            if args.data is None
            else load_edges(args.data, closure=args.closure)
        )
    plot = not args.no_plot
    if plot and importlib.util.find_spec("matplotlib") is None:
        print("note: matplotlib is not installed, so no poincare_disk.png will be written "
              "(pip install 'spiraljax[plot]')")  # fmt: skip
        plot = False
    print(f"data: {graph.source}: {graph.num_nodes} nodes, {graph.num_edges} edges")
    print(
        f"training: dim={config.dim} epochs={config.epochs} (burn-in {config.burn_in} at "
        f"lr×{config.burn_in_lr_factor:g}, {config.burn_in_negatives or config.negatives} "
        f"negatives ∝ parents^{config.burn_in_unigram_power:g}) lr={config.lr} "
        f"negatives={config.negatives} batch={config.batch_size} "
        f"seed={config.seed} {config.dtype} devices={config.devices} "
        f"optimizer={config.optimizer} schedule={config.lr_schedule} {config.manifold}"
        + (f" time budget {config.time_budget:g} s" if config.time_budget else "")
    )
    result = train(graph, config, progress=not args.quiet)
    metrics = reconstruction_metrics(
        result.embedding,
        graph,
        curvature=config.curvature,
        sample=sample,
        progress=not args.quiet and graph.num_nodes > 10_000,
        manifold=config.manifold,
    )
    rate = result.steady_relations_per_second
    approx = f" (approximate: {sample} sampled nodes)" if sample else ""
    print(
        f"reconstruction{approx}: mean rank {metrics.mean_rank:.3f}, MAP {metrics.map:.4f} "
        f"({metrics.num_pairs} pairs, {metrics.num_nodes} nodes); final loss "
        f"{result.losses[-1]:.4f}; {len(result.losses)} epochs in "
        f"{result.train_seconds:.1f} s, {rate:,.0f} relations/s"
    )
    shown = {}
    present = [q for q in queries if q in set(graph.names)]
    if present:
        ids = [graph.index(q) for q in present]
        # A float64 embedding is searched in float64 even when x64 is globally off.
        with x64_context(np.asarray(result.embedding).dtype):
            x = jnp.asarray(result.embedding)
            if config.manifold == "lorentz":  # the ball is isometric: same neighbours
                x = lorentz.to_poincare(x, curvature=config.curvature)
            nbr_dists, nbr_ids = nearest_neighbors(
                x[jnp.asarray(ids)], x, 5, curvature=config.curvature,
                exclude_self=True, query_ids=ids, distance="direct",
            )  # fmt: skip
            nbr_dists, nbr_ids = np.asarray(nbr_dists), np.asarray(nbr_ids)
        print(f"nearest neighbours (Rank-K bottomk over {config.manifold} distances):")
        for q, row, drow in zip(present, nbr_ids, nbr_dists, strict=True):
            names = [graph.names[j] for j in row]
            shown[q] = names
            listing = ", ".join(f"{n} ({d:.2f})" for n, d in zip(names, drow, strict=True))
            print(f"  {q}: {listing}")
    record = {
        "mean_rank": metrics.mean_rank,
        "map": metrics.map,
        "num_pairs": metrics.num_pairs,
        "num_eval_nodes": metrics.num_nodes,
        "num_nodes": graph.num_nodes,
        "eval_sample": sample,
        "epochs_run": len(result.losses),
        "num_edges": graph.num_edges,
        "data": graph.source,
        "config": {
            "dim": config.dim,
            "epochs": config.epochs,
            "lr": config.lr,
            "negatives": config.negatives,
            "burn_in": config.burn_in,
            "batch_size": config.batch_size,
            "seed": config.seed,
            "curvature": config.curvature,
            "dtype": config.dtype,
            "retraction": config.retraction,
            "optimizer": config.optimizer,
            "lr_schedule": config.lr_schedule,
            "time_budget": config.time_budget,
            "max_step": config.max_step,
            "manifold": config.manifold,
            "burn_in_lr_factor": config.burn_in_lr_factor,
            "burn_in_negatives": config.burn_in_negatives,
            "burn_in_unigram_power": config.burn_in_unigram_power,
        },
        "final_loss": float(result.losses[-1]),
        "train_seconds": result.train_seconds,
        "relations_per_second": rate,
        "nearest_neighbours": shown,
        "environment": environment_info(),
    }
    out = write_run(
        args.output,
        embedding=result.embedding,
        graph=graph,
        metrics=record,
        losses=result.losses,
        curvature=config.curvature,
        plot=plot,
        title=title,
        manifold=config.manifold,
    )
    files = "embedding.npz, metrics.json" + (", poincare_disk.png" if plot else "")
    print(f"wrote {out}/ ({files})")
    return 0
