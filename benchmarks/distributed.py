"""Multi-device scaling: Poincaré-embedding epochs and sharded Rank-K, 1 vs N devices.

* ``embedding``: one training epoch of ``spiraljax.embedding.train`` on a hierarchy
  (default: the WordNet noun closure, built by ``scripts/build_wordnet.py --root
  entity.n.01 --output nouns.tsv``; ``--data`` points at it) with the table sharded over
  1 and over N devices (``EmbedConfig.devices``); reports seconds per epoch (median of the
  epochs after the compiling one) and the scaling efficiency t₁ / (N · t_N).
* ``rankk``: ``spiraljax.distributed.topk`` of a (rows, cols) float32 array whose column
  axis is sharded over N devices, against ``spiraljax.kernels.topk`` on one device; the
  results are checked equal every run.

On a multi-GPU host: ``NCCL_NVLS_ENABLE=0 python benchmarks/distributed.py --devices 2``.
On a CPU (smoke run): ``XLA_FLAGS=--xla_force_host_platform_device_count=4 python
benchmarks/distributed.py --devices 4 --quick``. Writes ``results/distributed{tag}.{json,md}``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, median_time, write_results

from spiraljax import distributed, kernels
from spiraljax.data import load_edges, load_mammal_closure
from spiraljax.embedding import EmbedConfig, train


def embedding_rows(graph, devices: int, epochs: int, batch: int, dim: int) -> list[dict]:
    rows = []
    for n in sorted({1, devices}):
        config = EmbedConfig(
            dim=dim, epochs=epochs, burn_in=0, batch_size=batch, devices=n, dtype="float32"
        )
        result = train(graph, config, progress=False)
        seconds = float(np.median(graph.num_edges / result.relations_per_second[1:]))
        rows.append(
            {"devices": n, "epoch_s": seconds, "relations_per_s": graph.num_edges / seconds}
        )
    base = rows[0]["epoch_s"]
    for row in rows:
        row["efficiency"] = base / (row["devices"] * row["epoch_s"])
    return rows


def rankk_rows(devices: int, shapes: list[tuple[int, int, int]]) -> list[dict]:
    mesh = Mesh(np.asarray(jax.devices()[:devices], dtype=object), ("x",))
    rows = []
    for r, c, k in shapes:
        host = np.random.default_rng(r + c + k).standard_normal((r, c), dtype=np.float32)
        single = jax.device_put(host, jax.devices()[0])
        sharded = jax.device_put(host, NamedSharding(mesh, PartitionSpec(None, "x")))
        ref = kernels.topk(single, k)
        got = distributed.topk(sharded, k)
        assert np.array_equal(np.asarray(ref[1]), np.asarray(got[1])), "sharded != single"
        t1 = median_time(lambda s=single: jax.block_until_ready(kernels.topk(s, k)))
        tn = median_time(lambda s=sharded: jax.block_until_ready(distributed.topk(s, k)))
        rows.append({"shape": f"{r}x{c}", "k": k, "single_ms": 1e3 * t1, "sharded_ms": 1e3 * tn})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--devices", type=int, default=jax.device_count())
    p.add_argument("--data", type=Path, default=None, help="child<TAB>parent TSV (closure)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--dim", type=int, default=10)
    p.add_argument("--quick", action="store_true", help="small shapes (CPU smoke run)")
    p.add_argument("--tag", default="")
    args = p.parse_args(argv)
    if args.devices > jax.device_count():
        p.error(f"--devices {args.devices} exceeds the {jax.device_count()} visible devices")

    graph = load_mammal_closure() if args.data is None else load_edges(args.data)
    shapes = [(8, 1 << 14, 64)] if args.quick else [(64, 1 << 20, 256), (1, 1 << 26, 1024)]
    emb = embedding_rows(graph, args.devices, args.epochs, args.batch, args.dim)
    rk = rankk_rows(args.devices, shapes)

    env = environment()
    lines = [
        f"## Distributed ({env['device']} × {args.devices}, jax {env['versions']['jax']}, "
        f"{env['date']})",
        "",
        f"Embedding epoch, {graph.source}: {graph.num_nodes} nodes, {graph.num_edges} edges, "
        f"batch {args.batch}, dim {args.dim}, float32.",
        "",
        "| devices | s / epoch | relations/s | scaling efficiency |",
        "|---|---|---|---|",
        *(
            f"| {r['devices']} | {r['epoch_s']:.3f} | {r['relations_per_s']:,.0f} | "
            f"{r['efficiency']:.2f} |"
            for r in emb
        ),
        "",
        f"Sharded Top-K over {args.devices} devices vs one device (median ms, verified equal).",
        "",
        "| shape | k | one device | sharded |",
        "|---|---|---|---|",
        *(
            f"| {r['shape']} | {r['k']} | {r['single_ms']:.3f} | {r['sharded_ms']:.3f} |"
            for r in rk
        ),
        "",
    ]
    markdown = "\n".join(lines)
    print(markdown)
    write_results(
        f"distributed{args.tag}",
        {
            "environment": env,
            "embedding": emb,
            "rankk": rk,
            "args": vars(args) | {"data": str(args.data)},
        },
        markdown,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
