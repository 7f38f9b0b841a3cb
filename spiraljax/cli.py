"""The ``spiraljax`` command line (also ``python -m spiraljax``).

Subcommands are registered by functions decorated with :func:`command`; each receives
the argparse sub-parser collection, adds its parser and sets ``handler`` (a function
``args -> exit status``) as a default. ``main`` builds the parser from the registry, so
adding a subcommand is one decorated function in any module imported here.

* ``spiraljax demo`` — Poincaré embeddings of the shipped WordNet mammal closure with
  the tuned defaults, reconstruction mean rank and MAP, nearest neighbours, a disk PNG.
* ``spiraljax embed`` — the same on any ``child<TAB>parent`` TSV, every setting an option.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["build_parser", "command", "main"]

Registrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]
_REGISTRY: list[Registrar] = []


def command(register: Registrar) -> Registrar:
    """Register a subcommand: ``register(subparsers)`` adds a parser with a ``handler``."""
    _REGISTRY.append(register)
    return register


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every registered subcommand."""
    import spiraljax

    parser = argparse.ArgumentParser(
        prog="spiraljax",
        description="Hyperbolic geometry, Riemannian optimisers and Rank-K selection for JAX.",
    )
    parser.add_argument("--version", action="version", version=f"spiraljax {spiraljax.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in _REGISTRY:
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        print(f"spiraljax {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"spiraljax {args.command}: interrupted", file=sys.stderr)
        return 130


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
        help="initial epochs at lr × 0.1 (default: %(default)s)",
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
    p.add_argument("--no-plot", action="store_true", help="skip the Poincaré-disk PNG")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


@command
def _register_demo(subparsers) -> None:
    p = subparsers.add_parser(
        "demo",
        help="Poincaré embeddings of the WordNet mammal hierarchy (the main job)",
        description="Train Poincaré embeddings (Nickel & Kiela 2017) of the WordNet 3.0 mammal "
        "closure shipped with spiraljax; report reconstruction mean rank and MAP, nearest "
        "neighbours, and write embedding.npz, metrics.json and poincare_disk.png.",
    )
    _add_training_options(p, DEMO_SETTINGS, "spiraljax-demo")
    p.set_defaults(handler=_run_demo, data=None, closure=False)


@command
def _register_embed(subparsers) -> None:
    p = subparsers.add_parser(
        "embed",
        help="Poincaré embeddings of any child<TAB>parent hierarchy",
        description="Train Poincaré embeddings of a hierarchy given as a child<TAB>parent TSV "
        "(default: the shipped WordNet mammal closure). Defaults are the reference recipe "
        "of Nickel & Kiela (train-mammals.sh).",
    )
    from spiraljax.embedding.trainer import EmbedConfig

    ref = EmbedConfig()
    defaults = {k: getattr(ref, k) for k in DEMO_SETTINGS}
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        help="child<TAB>parent TSV ('#' comments allowed; default: WordNet mammals)",
    )
    p.add_argument(
        "--closure", action="store_true", help="train on the transitive closure of the file's edges"
    )
    _add_training_options(p, defaults, "spiraljax-embedding")
    p.set_defaults(handler=_run_embed)


def _run_demo(args: argparse.Namespace) -> int:
    return _train_and_report(args, queries=DEMO_QUERIES, title="WordNet mammals")


def _run_embed(args: argparse.Namespace) -> int:
    return _train_and_report(args, queries=(), title=None)


def _train_and_report(args: argparse.Namespace, *, queries: Sequence[str], title) -> int:
    from spiraljax.data import load_edges, load_mammal_closure
    from spiraljax.embedding import EmbedConfig, reconstruction_metrics, train
    from spiraljax.embedding.evaluation import nearest_neighbours
    from spiraljax.embedding.output import environment_info, write_run

    config = EmbedConfig(
        dim=args.dim,
        epochs=args.epochs,
        lr=args.lr,
        negatives=args.negatives,
        burn_in=args.burn_in,
        batch_size=args.batch_size,
        seed=args.seed,
        dtype=args.dtype,
        devices=args.devices,
    )
    graph = (
        load_mammal_closure() if args.data is None else load_edges(args.data, closure=args.closure)
    )
    plot = not args.no_plot
    if plot and importlib.util.find_spec("matplotlib") is None:
        print("note: matplotlib is not installed, so no poincare_disk.png will be written "
              "(pip install 'spiraljax[plot]')")  # fmt: skip
        plot = False
    print(f"data: {graph.source}: {graph.num_nodes} nodes, {graph.num_edges} edges")
    print(
        f"training: dim={config.dim} epochs={config.epochs} (burn-in {config.burn_in} at "
        f"lr×0.1) lr={config.lr} negatives={config.negatives} batch={config.batch_size} "
        f"seed={config.seed} {config.dtype} devices={config.devices}"
    )
    result = train(graph, config, progress=not args.quiet)
    metrics = reconstruction_metrics(result.embedding, graph, curvature=config.curvature)
    rate = result.steady_relations_per_second
    print(
        f"reconstruction: mean rank {metrics.mean_rank:.3f}, MAP {metrics.map:.4f} "
        f"({metrics.num_pairs} pairs, {metrics.num_nodes} nodes); final loss "
        f"{result.losses[-1]:.4f}; {result.train_seconds:.1f} s, {rate:,.0f} relations/s"
    )
    shown = {}
    present = [q for q in queries if q in set(graph.names)]
    if present:
        ids = [graph.index(q) for q in present]
        nbr_ids, nbr_dists = nearest_neighbours(
            result.embedding, ids, k=5, curvature=config.curvature
        )
        print("nearest neighbours (Rank-K bottomk over Poincaré distances):")
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
    )
    files = "embedding.npz, metrics.json" + (", poincare_disk.png" if plot else "")
    print(f"wrote {out}/ ({files})")
    return 0


# Subcommands defined elsewhere register themselves on import (tune, heur, bench).
from spiraljax import cli_kernels  # noqa: E402, F401
