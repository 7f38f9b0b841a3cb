#!/usr/bin/env python3
"""HGCN (``spiraljax.nn``) forward and backward time and memory on a 10⁵-node graph.

Graph: n nodes, a random recursive tree (node i's parent uniform in [0, i)) plus random
extra edges up to ``--degree`` directed edges per node on average; messages flow both ways
plus self-loops (about 2·degree·n + n messages). Model: ``spiraljax.nn.hgcn``
with ``--layers`` layers of width ``--dim`` (attention, local aggregation, learnable
curvatures) on Euclidean input features. Timed (median of ``--repeats`` calls, jitted,
compilation excluded and reported apart): the forward pass, and the gradient of a scalar
loss (sum of distances over the edges) with respect to all parameters and the inputs.
Memory: the compiled executables' ``memory_analysis()`` (arguments, outputs, temporaries)
and, on a GPU, the device's peak bytes in use.

    python benchmarks/hgcn.py                    # n = 100,000, dims 16, float32 and float64
    python benchmarks/hgcn.py --nodes 20000 --dtypes float32

Writes ``hgcn.{json,md}`` under ``$OUT`` if set, else ``benchmarks/results/``; a run on
another backend is kept as its own section (``cpu`` / ``gpu``).
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

from _common import RESULTS, environment, median_time, write_results


def random_graph(n: int, degree: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    child = np.arange(1, n)
    parent = (rng.random(n - 1) * child).astype(np.int64)
    extra = max(int(n * degree) - (n - 1), 0)
    a, b = rng.integers(0, n, extra), rng.integers(0, n, extra)
    keep = a != b
    return np.r_[child, a[keep]].astype(np.int32), np.r_[parent, b[keep]].astype(np.int32)


def _memory(compiled) -> dict:
    try:
        m = compiled.memory_analysis()
    except Exception as e:  # backends without the analysis
        return {"error": repr(e)}
    if m is None:
        return {}
    keys = ("argument_size_in_bytes", "output_size_in_bytes", "temp_size_in_bytes")
    return {k: int(getattr(m, k)) for k in keys if hasattr(m, k)}


def run(n, degree, dim, layers, dtype, repeats, seed) -> dict:
    import jax
    import jax.numpy as jnp

    from spiraljax.geometry import lorentz
    from spiraljax.nn import add_self_loops, hgcn, hgcn_curvatures, symmetrize

    s, r = random_graph(n, degree, seed)
    s, r = add_self_loops(*symmetrize(s, r), n)
    s, r = jax.device_put(s), jax.device_put(r)
    key = jax.random.key(seed)
    params = hgcn.init(key, (dim,) * (layers + 1), dtype=dtype)
    params["layers"] = tuple(
        {**p, "attention": 0.1 * jax.random.normal(jax.random.fold_in(key, i), (2, dim), dtype)}
        for i, p in enumerate(params["layers"])
    )
    x = 0.1 * jax.random.normal(jax.random.fold_in(key, 99), (n, dim), dtype)

    def forward(p, x):
        return hgcn.apply(p, x, s, r)

    def loss(p, x):
        z = forward(p, x)
        k = hgcn_curvatures(p)[-1]
        return jnp.sum(lorentz.dist(z[s], z[r], curvature=k))

    out = {
        "nodes": n,
        "messages": int(s.shape[0]),
        "dim": dim,
        "layers": layers,
        "dtype": str(jnp.dtype(dtype)),
    }
    for name, fn in (("forward", forward), ("backward", jax.grad(loss, argnums=(0, 1)))):
        t0 = time.perf_counter()
        compiled = jax.jit(fn).lower(params, x).compile()
        out[f"{name}_compile_s"] = time.perf_counter() - t0
        jax.block_until_ready(compiled(params, x))
        out[f"{name}_s"] = median_time(
            lambda c=compiled: jax.block_until_ready(c(params, x)), repeats=repeats, warmup=1
        )
        out[f"{name}_memory"] = _memory(compiled)
        finite = all(bool(jnp.all(jnp.isfinite(a))) for a in jax.tree.leaves(compiled(params, x)))
        out[f"{name}_finite"] = finite
    dev = jax.devices()[0]
    stats = dev.memory_stats() if hasattr(dev, "memory_stats") else None
    if stats and "peak_bytes_in_use" in stats:
        out["peak_bytes_in_use"] = int(stats["peak_bytes_in_use"])
    print(
        f"  n={n:,} E={out['messages']:,} d={dim} L={layers} {out['dtype']}: forward "
        f"{out['forward_s'] * 1e3:.1f} ms (compile {out['forward_compile_s']:.1f} s), backward "
        f"{out['backward_s'] * 1e3:.1f} ms (compile {out['backward_compile_s']:.1f} s), temp "
        f"{out['backward_memory'].get('temp_size_in_bytes', 0) / 2**20:.0f} MiB",
        flush=True,
    )
    return out


def markdown(doc: dict) -> str:
    lines = ["# HGCN forward and backward on a large graph (`benchmarks/hgcn.py`)", ""]
    for key in sorted(doc["sections"]):
        sec = doc["sections"][key]
        env = sec["environment"]
        lines += [
            f"## {env['device']} ({env['backend']}, {env['cpu_count']} CPU cores)",
            "",
            f"{env['date']} · jax {env['versions']['jax']} · spiraljax "
            f"{env['versions']['spiraljax']}",
            "",
            "| nodes | messages | dim | layers | dtype | forward ms | backward ms | "
            "backward temp MiB | peak MiB | compile s (f / b) |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in sec["rows"]:
            temp = r["backward_memory"].get("temp_size_in_bytes")
            peak = r.get("peak_bytes_in_use")
            lines.append(
                f"| {r['nodes']:,} | {r['messages']:,} | {r['dim']} | {r['layers']} | "
                f"{r['dtype']} | {r['forward_s'] * 1e3:.1f} | {r['backward_s'] * 1e3:.1f} | "
                f"{'—' if temp is None else f'{temp / 2**20:.0f}'} | "
                f"{'—' if peak is None else f'{peak / 2**20:.0f}'} | "
                f"{r['forward_compile_s']:.1f} / {r['backward_compile_s']:.1f} |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--degree", type=float, default=5.0, help="directed edges per node")
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    import jax

    jax.config.update("jax_enable_x64", True)
    rows = [
        run(args.nodes, args.degree, args.dim, args.layers, dt, args.repeats, args.seed)
        for dt in args.dtypes
    ]
    out = Path(os.environ["OUT"]) if os.environ.get("OUT") else RESULTS
    path = out / "hgcn.json"
    doc = json.loads(path.read_text()) if path.exists() else {"sections": {}}
    doc["benchmark"] = "hgcn"
    doc["sections"][jax.default_backend()] = {
        "environment": environment(),
        "args": vars(args),
        "rows": rows,
    }
    md = markdown(doc)
    print(md)
    write_results("hgcn", doc, md, out=out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
