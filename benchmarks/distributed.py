"""Multi-device benchmark on one host: sharded Rank-K, gossip, data-parallel embeddings.

Every part checks correctness on the devices before (or while) it is timed:

* ``rankk``: ``spiraljax.distributed.topk / bottomk / midk`` of arrays whose selected axis
  is split over the N devices must equal ``spiraljax.kernels`` on one device, values and
  indices bit for bit, on data full of ties, NaNs, ±inf and −0.0. Then Top-K of a
  (rows, cols) float32 array split by columns over N devices is timed against one device
  (``spiraljax.kernels.timing.time_calls``: rotated inputs, async batches, median; every
  timed batch re-checks one output).
* ``gossip``: least squares whose rows are split over a ring of the N devices, each shard
  with its own offset (the local minimisers disagree); gossip with gradient tracking must
  reach the centralised least-squares solution (float64) and stop converged.
* ``embedding``: one Poincaré-embedding epoch (``spiraljax.embedding.train``, data
  parallel over ``EmbedConfig.devices``) on the WordNet noun closure (``--data``, built by
  ``scripts/build_wordnet.py --root entity.n.01 --output nouns.tsv``; when the file is not
  there, a synthetic tree of the same size: 82,115 nodes, 743,241 closure edges) on 1 and
  on N devices, per batch size; seconds per epoch are the median over the epochs after the
  compiling one, scaling efficiency t₁ / (N · t_N). Before timing, a float64 run on the
  mammal closure checks N devices against one (equal up to summation order), and each
  timed N-device run reports its largest difference from the one-device table.

Writes ``benchmarks/results/distributed{tag}.{json,md}`` with device, versions and date.

On a 2-GPU host (NVLink multicast off), one shot; no embedding batch size is started after
``--budget`` seconds (240), so the run ends in under 6 minutes with its compiles::

    NCCL_NVLS_ENABLE=0 python benchmarks/distributed.py --devices 2 --data nouns.tsv

CPU smoke run (emulated devices; numbers say nothing about GPUs)::

    XLA_FLAGS=--xla_force_host_platform_device_count=2 \\
        python benchmarks/distributed.py --devices 2 --small --tag _cpu_smoke
"""

from __future__ import annotations

import os

# NVLink SHARP (multicast) stays off on the shared GPU hosts; NCCL reads this at init.
os.environ.setdefault("NCCL_NVLS_ENABLE", "0")

import argparse
import sys
import time
import traceback
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import environment, write_results

from spiraljax import distributed, kernels
from spiraljax.data import EdgeList, load_edges, load_mammal_closure
from spiraljax.embedding import EmbedConfig, train
from spiraljax.embedding.evaluation import x64_context
from spiraljax.kernels.timing import time_calls

NOUNS_NODES, NOUNS_EDGES = 82_115, 743_241  # scripts/build_wordnet.py --root entity.n.01
KINDS = ("topk", "bottomk", "midk")


def _mesh(devices: int, name: str = "x") -> Mesh:
    return Mesh(np.asarray(jax.devices()[:devices], dtype=object), (name,))


# ------------------------------------------------------------------------------ Rank-K


def tie_data(shape, dtype, seed):
    """Few distinct values (many ties) plus NaN, ±inf and −0.0 for floats."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-4, 4, size=shape).astype(dtype)
    if np.issubdtype(np.dtype(dtype), np.floating):
        flat = x.reshape(-1)
        picks = rng.choice(flat.size, size=max(8, flat.size // 64), replace=False)
        q = picks.size // 4
        flat[picks[:q]] = np.nan
        flat[picks[q : 2 * q]] = np.inf
        flat[picks[2 * q : 3 * q]] = -np.inf
        flat[picks[3 * q :]] = -0.0
    return x


def _equal(got, want) -> bool:
    return all(
        np.array_equal(np.asarray(g), np.asarray(w), equal_nan=True)
        for g, w in zip(got, want, strict=True)
    )


def rankk_checks(devices: int, cases) -> list[dict]:
    """Sharded vs one-device results on tie/NaN data, for every kind and k."""
    mesh = _mesh(devices)
    rows = []
    for shape, axis, dtype, ks in cases:
        host = tie_data(shape, dtype, seed=sum(shape) + len(ks))
        spec = [None] * len(shape)
        spec[axis] = "x"
        sharded = jax.device_put(host, NamedSharding(mesh, PartitionSpec(*spec)))
        single = jax.device_put(host, jax.devices()[0])
        for kind in KINDS:
            for k in ks:
                want = getattr(kernels, kind)(single, k, axis=axis)
                got = getattr(distributed, kind)(sharded, k, axis=axis)
                rows.append(
                    {
                        "kind": kind,
                        "shape": "x".join(map(str, shape)),
                        "axis": axis,
                        "dtype": np.dtype(dtype).name,
                        "k": k,
                        "equal": _equal(got, want),
                    }
                )
    return rows


def rankk_timings(devices: int, shapes, buffers: int) -> list[dict]:
    """Top-K split by columns over ``devices`` vs one device, median ms per call."""
    mesh = _mesh(devices)
    split = NamedSharding(mesh, PartitionSpec(None, "x"))
    rows = []
    for r, c, k in shapes:
        rng = np.random.default_rng(r + c + k)
        hosts = [rng.standard_normal((r, c), dtype=np.float32) for _ in range(buffers)]
        singles = [jax.device_put(h, jax.devices()[0]) for h in hosts]
        shards = [jax.device_put(h, split) for h in hosts]
        one = jax.jit(lambda x, k=k: kernels.topk(x, k))
        refs = [jax.block_until_ready(one(x)) for x in singles]
        bad = []

        def check(out, i, refs=refs, bad=bad):
            if not _equal(out, refs[i]):
                bad.append(i)

        single_ms = time_calls(one, singles, reps=10, batch=5, check=check)
        sharded_ms = time_calls(
            lambda x, k=k: distributed.topk(x, k), shards, reps=10, batch=5, check=check
        )
        rows.append(
            {
                "shape": f"{r}x{c}",
                "k": k,
                "single_ms": single_ms,
                "sharded_ms": sharded_ms,
                "speedup": single_ms / sharded_ms,
                "equal": not bad,
            }
        )
    return rows


# ------------------------------------------------------------------------------ gossip


def gossip_check(devices: int, rows_per_device: int = 64, dim: int = 4) -> dict:
    """Ring gossip (gradient tracking, SGD) vs the centralised least-squares solution."""
    with x64_context("float64"):
        rng = np.random.default_rng(0)
        n = rows_per_device * devices
        a = rng.normal(size=(n, dim))
        offsets = np.repeat(np.linspace(-3.0, 3.0, devices), rows_per_device)
        b = a @ rng.normal(size=dim) + offsets + 0.1 * rng.normal(size=n)
        w_star = np.linalg.lstsq(a, b, rcond=None)[0]

        def loss(w, shard):
            a_i, b_i = shard
            return 0.5 * jnp.mean((a_i @ w - b_i) ** 2)

        mesh = _mesh(devices, "ring")
        args = (loss, jnp.zeros(dim, jnp.float64), (jnp.asarray(a), jnp.asarray(b)))
        kw = {"mesh": mesh, "damping": 0.5, "tolerance": 1e-10, "max_rounds": 20_000}
        t0 = time.perf_counter()
        res = distributed.gossip(*args, optax.sgd(0.1), **kw)
        jax.block_until_ready(res.params)
        seconds = time.perf_counter() - t0  # compile included
        error = float(np.abs(np.asarray(res.params) - w_star).max())
        return {
            "devices": devices,
            "rounds": int(res.rounds),
            "disagreement": float(res.disagreement),
            "max_error_vs_centralised": error,
            "converged": bool(res.converged),
            "ok": bool(res.converged) and error < 1e-6,
            "seconds_incl_compile": seconds,
        }


# ------------------------------------------------------------------------------ embedding


def synthetic_hierarchy(nodes: int, closure_edges: int, *, seed: int = 0) -> EdgeList:
    """Closure of a random tree with ``nodes`` nodes and exactly ``closure_edges`` edges.

    The closure of a tree has one edge per (node, ancestor), Σ depth edges in all: depths
    are drawn around the WordNet nouns' mean (closure_edges / (nodes − 1) ≈ 9.05, sd 2.5),
    adjusted to the exact sum, and every node gets a uniform parent one level up.
    """
    rng = np.random.default_rng(seed)
    n = nodes - 1  # the root, node 0, has depth 0
    mean = closure_edges / n
    depth = np.sort(np.clip(np.rint(rng.normal(mean, 2.5, n)), 1, None).astype(np.int64))
    depth[0] = 1
    for i in range(1, n):  # no empty level above the deepest node
        depth[i] = min(depth[i], depth[i - 1] + 1)
    bulk = np.flatnonzero(np.abs(depth - mean) < 1.5)  # thousands per level: none empties
    diff = closure_edges - int(depth.sum())
    if abs(diff) > bulk.size:
        raise ValueError(f"closure_edges={closure_edges} is too far from nodes={nodes}")
    depth[rng.choice(bulk, abs(diff), replace=False)] += np.sign(diff)
    level = np.concatenate([[0], np.sort(depth)])  # level[i]: depth of node i
    parent = np.zeros(nodes, np.int64)
    for d in range(1, int(level.max()) + 1):
        here, above = np.flatnonzero(level == d), np.flatnonzero(level == d - 1)
        parent[here] = above[rng.integers(0, above.size, here.size)]
    child, ancestor = [], []
    node = np.arange(1, nodes)
    up = parent[node]
    while node.size:  # one (node, ancestor) edge per step up, until the root
        child.append(node)
        ancestor.append(up)
        keep = up != 0
        node, up = node[keep], parent[up[keep]]
    edges = np.stack([np.concatenate(child), np.concatenate(ancestor)], axis=1)
    names = tuple(f"s{i:06d}" for i in range(nodes))
    graph = EdgeList(names, edges.astype(np.int32), f"synthetic tree (seed {seed})")
    if graph.num_edges != closure_edges:
        raise AssertionError(f"built {graph.num_edges} edges, wanted {closure_edges}")
    return graph


def embedding_check_f64(devices: int) -> dict:
    """Float64 mammal closure, 2 epochs: N devices against one (summation order only)."""
    graph = load_mammal_closure()
    config = EmbedConfig(dim=5, epochs=2, burn_in=1, batch_size=32 * devices, negatives=10)
    one = train(graph, config, progress=False)
    many = train(graph, EmbedConfig(**{**config.__dict__, "devices": devices}), progress=False)
    diff = float(np.abs(many.embedding - one.embedding).max())
    loss_diff = float(np.abs(many.losses - one.losses).max())
    return {
        "graph": f"{graph.num_nodes} nodes, {graph.num_edges} edges",
        "batch": config.batch_size,
        "max_abs_diff": diff,
        "max_loss_diff": loss_diff,
        "ok": diff <= 1e-9 and loss_diff <= 1e-9,
    }


def embedding_rows(graph, devices, epochs, batches, dim, dtype, negatives, deadline) -> list[dict]:
    rows = []
    for batch in batches:
        if time.perf_counter() > deadline:
            print(f"  embedding batch {batch}: skipped (past --budget)", flush=True)
            rows.append({"batch": batch, "skipped": "past --budget"})
            continue
        base = None
        for n in sorted({1, devices}):
            config = EmbedConfig(
                dim=dim,
                epochs=epochs,
                burn_in=0,
                batch_size=batch,
                negatives=negatives,
                devices=n,
                dtype=dtype,
            )
            result = train(graph, config, progress=False)
            seconds = graph.num_edges / result.relations_per_second
            row = {
                "batch": batch,
                "devices": n,
                "epoch_s": float(np.median(seconds[1:])),
                "first_epoch_s": float(seconds[0]),  # compilation included
                "loss": float(result.losses[-1]),
            }
            row["relations_per_s"] = graph.num_edges / row["epoch_s"]
            if base is None:
                base = (row["epoch_s"], result.embedding)
            row["efficiency"] = base[0] / (n * row["epoch_s"])
            row["max_abs_diff_vs_1"] = float(np.abs(result.embedding - base[1]).max())
            rows.append(row)
            print(
                f"  embedding batch {batch}, {n} device(s): {row['epoch_s']:.4f} s/epoch "
                f"(first {row['first_epoch_s']:.1f} s)",
                flush=True,
            )
    return rows


# ------------------------------------------------------------------------------ report


def _markdown(env, args, graph, parts, errors) -> str:
    n = args.devices
    lines = [
        f"## Distributed ({env['device']} × {n}, {env['backend']}, jax "
        f"{env['versions']['jax']}, spiraljax {env['versions']['spiraljax']}, {env['date']})",
        "",
    ]
    if "rankk_checks" in parts:
        checks = parts["rankk_checks"]
        bad = [c for c in checks if not c["equal"]]
        lines += [
            f"Sharded Rank-K over {n} devices vs one device on tie/NaN/±inf/−0.0 data: "
            f"{len(checks) - len(bad)}/{len(checks)} cases bit-equal (values and indices)"
            + ("." if not bad else f"; **unequal**: {bad}."),
            "",
        ]
    if "rankk" in parts:
        lines += [
            f"Top-K of float32 (rows × cols) split by columns over {n} devices vs one device "
            "(median ms per call; every timed batch re-checked bit-equal):",
            "",
            "| shape | k | one device | sharded | speed-up | equal |",
            "|---|---|---|---|---|---|",
            *(
                f"| {r['shape']} | {r['k']} | {r['single_ms']:.3f} | {r['sharded_ms']:.3f} | "
                f"{r['speedup']:.2f}× | {'yes' if r['equal'] else '**no**'} |"
                for r in parts["rankk"]
            ),
            "",
        ]
    if "gossip" in parts:
        g = parts["gossip"]
        lines += [
            f"Gossip (ring of {g['devices']}, gradient tracking, SGD 0.1, float64 least "
            f"squares with a different offset per shard): {g['rounds']} rounds, "
            f"disagreement {g['disagreement']:.1e}, max |w − w*| vs the centralised "
            f"solution {g['max_error_vs_centralised']:.1e}, converged {g['converged']} "
            f"→ {'OK' if g['ok'] else '**FAILED**'} ({g['seconds_incl_compile']:.1f} s "
            "with compilation).",
            "",
        ]
    if "embedding_check" in parts:
        c = parts["embedding_check"]
        lines += [
            f"Embedding, float64 mammal closure ({c['graph']}), batch {c['batch']}, 2 epochs: "
            f"{n} devices vs one, max |Δ embedding| {c['max_abs_diff']:.1e}, max |Δ loss| "
            f"{c['max_loss_diff']:.1e} → {'OK' if c['ok'] else '**FAILED**'}.",
            "",
        ]
    if "embedding" in parts:
        lines += [
            f"Embedding epoch (data parallel, table replicated), {graph.source}: "
            f"{graph.num_nodes:,} nodes, {graph.num_edges:,} edges, dim {args.dim}, "
            f"{args.negatives} negatives, {args.dtype}; median of epochs 2..{args.epochs}:",
            "",
            "| batch | devices | s / epoch | relations/s | scaling efficiency | "
            "max abs diff vs 1 device |",
            "|---|---|---|---|---|---|",
            *(
                f"| {r['batch']} | {r['devices']} | {r['epoch_s']:.4f} | "
                f"{r['relations_per_s']:,.0f} | {r['efficiency']:.2f} | "
                f"{r['max_abs_diff_vs_1']:.1e} |"
                if "skipped" not in r
                else f"| {r['batch']} | — | skipped ({r['skipped']}) | | | |"
                for r in parts["embedding"]
            ),
            "",
        ]
    for name, text in errors.items():
        last = text.strip().splitlines()[-1]
        lines += [f"**{name} failed**: `{last}` (traceback in the JSON).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--devices", type=int, default=jax.device_count())
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        help="WordNet noun closure TSV (child<TAB>ancestor); synthetic nouns-sized tree if absent",
    )
    p.add_argument("--epochs", type=int, default=4, help="epochs per run; the first compiles")
    p.add_argument("--batch", type=int, nargs="+", default=[1024, 4096, 16384])
    p.add_argument("--dim", type=int, default=10)
    p.add_argument("--negatives", type=int, default=50)
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    p.add_argument(
        "--parts",
        nargs="+",
        default=["rankk", "gossip", "embedding"],
        choices=("rankk", "gossip", "embedding"),
    )
    p.add_argument(
        "--budget",
        type=float,
        default=240.0,
        help="seconds after which no further embedding batch size is started",
    )
    p.add_argument("--small", action="store_true", help="small sizes (CPU smoke run)")
    p.add_argument("--tag", default="", help="suffix of the result file names")
    args = p.parse_args(argv)
    if not 1 <= args.devices <= jax.device_count():
        p.error(f"--devices {args.devices} must lie in [1, {jax.device_count()}] (visible)")
    if args.devices < 2:
        print("note: with 1 device there is nothing to compare", flush=True)
    for b in args.batch:
        if b % args.devices:
            p.error(f"--batch {b} is not divisible by --devices {args.devices}")

    env = environment()
    env["NCCL_NVLS_ENABLE"] = os.environ.get("NCCL_NVLS_ENABLE")
    env["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "")
    print(f"{env['device']} × {jax.device_count()} ({env['backend']}), using {args.devices}")
    t_start = time.perf_counter()
    parts: dict = {}
    errors: dict = {}
    graph = None

    def save():
        payload = {"environment": env, "args": vars(args) | {"data": str(args.data)}, **parts}
        payload["errors"] = errors
        payload["seconds"] = time.perf_counter() - t_start
        write_results(f"distributed{args.tag}", payload, _markdown(env, args, graph, parts, errors))

    def rankk():
        if args.small:
            cases = [
                ((4, 4096), 1, np.float32, (0, 1, 37, 1000)),
                ((4, 4096), 1, np.int32, (5,)),
                ((512, 6), 0, np.float32, (7,)),
            ]
            shapes, buffers = [(8, 1 << 14, 64)], 2
        else:
            cases = [  # each (kind, shape, k) compiles its own kernels: keep them few
                ((16, 1 << 16), 1, np.float32, (0, 1, 100, 4096)),
                ((16, 1 << 16), 1, np.int32, (100,)),
                ((1 << 14, 8), 0, np.float32, (300,)),
                ((1, 1 << 22), 1, np.float32, (1024,)),
            ]
            shapes, buffers = [(64, 1 << 20, 256), (1024, 1 << 16, 128), (1, 1 << 26, 1024)], 3
        parts["rankk_checks"] = rankk_checks(args.devices, cases)
        parts["rankk"] = rankk_timings(args.devices, shapes, buffers)
        return all(c["equal"] for c in parts["rankk_checks"] + parts["rankk"])

    def gossip():
        parts["gossip"] = gossip_check(args.devices)
        return parts["gossip"]["ok"]

    def embedding():
        nonlocal graph
        if args.data is not None and args.data.is_file():
            graph = load_edges(args.data)
        else:
            if args.data is not None:
                print(f"note: {args.data} not found; using a synthetic nouns-sized tree")
            scale = 10 if args.small else 1
            graph = synthetic_hierarchy(NOUNS_NODES // scale, NOUNS_EDGES // scale)
        ok = True
        if args.devices > 1:
            parts["embedding_check"] = embedding_check_f64(args.devices)
            ok = parts["embedding_check"]["ok"]
        parts["embedding"] = embedding_rows(
            graph,
            args.devices,
            args.epochs,
            args.batch,
            args.dim,
            args.dtype,
            args.negatives,
            deadline=t_start + args.budget,
        )
        return ok

    ok = True
    for name, run in (("embedding", embedding), ("gossip", gossip), ("rankk", rankk)):
        if name not in args.parts or (name == "gossip" and args.devices < 2):
            continue
        try:  # one failing part must not cost the others in a one-shot run
            ok &= bool(run())
        except Exception:
            errors[name] = traceback.format_exc()
            print(errors[name], file=sys.stderr, flush=True)
            ok = False
        print(f"{name} done at {time.perf_counter() - t_start:.0f} s", flush=True)
        save()

    print(_markdown(env, args, graph, parts, errors))
    for name in errors:
        print(f"{name}: FAILED with an exception (traceback above and in the JSON)")
    print(f"total {time.perf_counter() - t_start:.0f} s; checks {'passed' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
