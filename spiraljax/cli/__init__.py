"""The ``spiraljax`` command line (also ``python -m spiraljax``).

``main`` builds one ``argparse`` parser from ``COMMANDS``: each entry is a function
``register(subparsers)`` that adds a sub-command's parser and sets its ``handler`` (a
function ``args -> exit status``). Adding a sub-command is one function in a module of
this package and one entry in ``COMMANDS``. See docs/cli.md.

* ``demo``, ``embed`` — Poincaré embeddings (``cli/embed.py``);
* ``tune``, ``heur explain``, ``bench topk`` — Rank-K (``cli/kernels.py``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from spiraljax.cli import embed, kernels
from spiraljax.cli.embed import DEMO_QUERIES, DEMO_SETTINGS

__all__ = ["COMMANDS", "DEMO_QUERIES", "DEMO_SETTINGS", "build_parser", "main"]

Registrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

#: The sub-commands, in ``--help`` order.
COMMANDS: tuple[Registrar, ...] = (
    embed.register_demo,
    embed.register_embed,
    kernels.register_tune,
    kernels.register_heur,
    kernels.register_bench,
)


def build_parser(commands: Sequence[Registrar] = COMMANDS) -> argparse.ArgumentParser:
    """The top-level parser with every sub-command of ``commands``."""
    import spiraljax

    parser = argparse.ArgumentParser(
        prog="spiraljax",
        description="Hyperbolic geometry, Riemannian optimisers and Rank-K selection for JAX.",
    )
    parser.add_argument("--version", action="version", version=f"spiraljax {spiraljax.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in commands:
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None, *, commands: Sequence[Registrar] = COMMANDS) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser(commands)
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        print(f"spiraljax {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"spiraljax {args.command}: interrupted", file=sys.stderr)
        return 130
