"""What a call of the public Rank-K API costs beyond its kernels, per way of launching them.

    python benchmarks/launch_overhead.py [--out DIR] [--tag NAME] [--shapes R:C:K,...]

On a GPU, for each shape and each lowering of the Triton launches (``legacy``: jax-triton's
``triton_kernel_call`` custom call; ``ffi``: the typed FFI call ``triton_kernel_call_ffi``,
``spiraljax.kernels.triton.ffi``): ``jax.jit(spiraljax.topk)`` timed in batches of 1, 3
and 10 asynchronous calls (``kernels.timing.time_calls``; batch 1 is one call at a time,
waited for), the host time to enqueue a call (20 calls, no wait, per call), and the first
call (trace, compile, run); beside ``lax.top_k(is_stable=False)`` and ``torch.topk`` the
same way. Every timed batch checks values and indices bit for bit against the XLA path.
The per-call overhead is read off the batches: ms(batch b) ≈ kernels + overhead / b.
Writes ``launch_overhead[_TAG].{json,md}`` under ``--out``; run it under different
``XLA_FLAGS`` with ``--tag`` (e.g. command buffers off) to see what XLA's CUDA graphs do.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from _common import environment, write_results

from spiraljax.kernels import topk
from spiraljax.kernels.timing import reference_check, time_calls
from spiraljax.kernels.triton import ffi
from spiraljax.kernels.triton import select as fsel

SHAPES = [(8, 1024, 8), (8192, 4096, 8), (1024, 65536, 16), (4096, 32768, 50), (1024, 65536, 1024)]
BATCHES = (1, 3, 10)


def enqueue_ms(f, xs, calls=20):
    """Host ms per call to enqueue ``calls`` calls (the GPU may still be running them)."""
    jax.block_until_ready(f(xs[0]))
    t0 = time.perf_counter()
    for i in range(calls):
        out = f(xs[i % len(xs)])
    t = (time.perf_counter() - t0) / calls * 1e3
    jax.block_until_ready(out)
    return t


def timed(f, xs, check=None, reps=15, sync=None):
    row = {f"b{b}": time_calls(f, xs, reps=reps, batch=b, check=check, sync=sync) for b in BATCHES}
    # ms(b) = g + o / b through b = 1 and b = 10: o the per-call overhead not hidden
    row["overhead_ms"] = (row["b1"] - row["b10"]) * 10 / 9
    return row


def bench(rows, cols, k, torch):
    keys = jax.random.split(jax.random.PRNGKey(rows + cols + k), 3)
    xs = [jax.random.normal(kk, (rows, cols), jnp.float32) for kk in keys]
    check = reference_check("top", xs, k)  # values and indices, bit for bit

    row = {"rows": rows, "cols": cols, "k": k}
    for name, use in (("legacy", False), ("ffi", True)):
        if use and not ffi.available():
            row[name] = {"error": "this jaxlib has no triton_kernel_call_ffi"}
            continue
        fsel.TRITON_FFI = use
        f = jax.jit(lambda x: topk(x, k))  # a new function: traced and lowered afresh
        try:
            t0 = time.perf_counter()
            check(jax.block_until_ready(f(xs[0])), 0)
            first = time.perf_counter() - t0
            r = timed(f, xs, check)
            r["enqueue_ms"] = enqueue_ms(f, xs)
            r["first_call_s"] = first
            row[name] = r
        except Exception as e:  # recorded; the other lowering still runs
            row[name] = {"error": f"{type(e).__name__}: {str(e)[:400]}"}
        print(f"  {rows}x{cols} k={k} {name}: {row[name]}", flush=True)
    fsel.TRITON_FFI = None
    lax_f = jax.jit(lambda x: jax.lax.top_k(x, k, is_stable=False))
    row["raft"] = timed(lax_f, xs)
    row["raft"]["enqueue_ms"] = enqueue_ms(lax_f, xs)
    if torch is not None:
        ts = [torch.utils.dlpack.from_dlpack(x) for x in xs]
        row["torch"] = timed(
            lambda t: torch.topk(t, k, dim=-1, sorted=True),
            ts,
            sync=lambda o: torch.cuda.synchronize(),
        )
    print(f"  {rows}x{cols} k={k} raft: {row['raft']} torch: {row.get('torch')}", flush=True)
    return row


def fmt(v):
    return "–" if v is None else f"{v:.3f}"


def markdown(env, tag, results):
    lines = [
        f"## Launch overhead ({env['device']}, jax {env['versions']['jax']}, {env['date']}"
        + (f", {tag}" if tag else "")
        + ")",
        "",
        "Median ms per call in batches of b asynchronous calls (b = 1: one call at a time,"
        " waited for); overhead = (b1 − b10) · 10/9, the per-call cost a batch of b hides"
        " all but 1/b of; enqueue = host ms to issue one call.",
        "",
        "| rows×cols, k | way | b1 | b3 | b10 | overhead | enqueue | first call s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for way in ("legacy", "ffi", "raft", "torch"):
            v = r.get(way)
            if not v:
                continue
            if "error" in v:
                lines.append(f"| {r['rows']}×{r['cols']}, {r['k']} | {way} | {v['error'][:80]} |")
                continue
            lines.append(
                f"| {r['rows']}×{r['cols']}, {r['k']} | {way} | {fmt(v['b1'])} | {fmt(v['b3'])}"
                f" | {fmt(v['b10'])} | {fmt(v['overhead_ms'])} | {fmt(v.get('enqueue_ms'))}"
                f" | {fmt(v.get('first_call_s'))} |"
            )
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.environ.get("OUT", "benchmarks/results"))
    ap.add_argument("--tag", default="")
    ap.add_argument("--shapes", default="")
    args = ap.parse_args()
    if jax.default_backend() != "gpu":
        raise SystemExit("launch_overhead.py times the GPU launch path: run it on a GPU")
    try:
        import torch

        torch = torch if torch.cuda.is_available() else None
    except ImportError:
        torch = None
    shapes = SHAPES
    if args.shapes:
        shapes = [tuple(int(v) for v in s.split(":")) for s in args.shapes.split(",")]
    env = environment()
    env["xla_flags"] = os.environ.get("XLA_FLAGS", "")
    env["ffi_available"] = ffi.available()
    results = [bench(r, c, k, torch) for r, c, k in shapes]
    md = markdown(env, args.tag, results)
    name = "launch_overhead" + (f"_{args.tag}" if args.tag else "")
    write_results(name, {"environment": env, "results": results}, md, out=Path(args.out))
    print(md)


if __name__ == "__main__":
    main()
