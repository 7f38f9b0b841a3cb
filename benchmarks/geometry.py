"""Poincaré-ball kernels: spiraljax (jit-fused) vs geoopt (PyTorch), side by side in one run.

Operations, float32, c = 1, points drawn inside the ball:

* ``dist``          — d(xᵢ, yᵢ) for N pairs, (N, d), (N, d) → (N,);
* ``pairwise_dist`` — all distances, (n, d), (m, d) → (n, m). spiraljax uses one matrix
  product (no (n, m, d) intermediate); geoopt 0.5.1 has no pairwise function, so the usual
  broadcast ``ball.dist(x[:, None], y[None])`` is timed;
* ``expmap``        — exp_x(u) for N points (projected, as both libraries do by default).

Each is timed forward only (``fwd``) and forward + backward (``fwd+bwd``: gradient of the sum
with respect to every input). spiraljax runs under ``jax.jit`` on JAX's default backend;
geoopt uses ``PoincareBallExact`` on CUDA when available, else CPU. Times are the median and
the minimum of ``--repeats`` calls after a warm-up (results synchronised); throughput is
computed from the minimum.

Peak memory:

* ``xla`` — spiraljax: bytes of all XLA buffers of the compiled call (arguments + outputs +
  temporaries, from ``compiled.memory_analysis()``), exact and device-independent;
* ``cuda`` — geoopt on GPU: ``torch.cuda.max_memory_allocated`` above the inputs;
* ``rss`` — on CPU, for both libraries: growth of the process's resident-set high-water mark
  during one call (``/proc/self/clear_refs`` reset; coarse: allocator caching can hide reuse).

Writes ``benchmarks/results/geometry.{md,json}`` with device, versions and date.

    python benchmarks/geometry.py                               # CPU-sized defaults
    python benchmarks/geometry.py --n 1000000 --pairwise 4096   # e.g. on a GPU
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import gc
import importlib
import importlib.metadata
import json
import os
import platform
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from _common import version  # benchmarks/ is on sys.path when run as a script

import spiraljax.geometry as G

RESULTS = Path(__file__).resolve().parent / "results"


# ---------------------------------------------------------------------------------------
# Memory helpers
# ---------------------------------------------------------------------------------------


def _rss_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_hwm() -> bool:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the VmHWM peak-RSS counter (Linux ≥ 4.0)
        return True
    except OSError:
        return False


def _rss_peak_delta(run) -> float | None:
    """MiB by which one call raises the resident-set high-water mark (None if unsupported)."""
    if not _reset_hwm():
        return None
    before = _rss_kib("VmRSS")
    run()
    peak = _rss_kib("VmHWM")
    if before is None or peak is None:
        return None
    return max(peak - before, 0) / 1024


def _xla_bytes(jitted, *args) -> float | None:
    try:
        m = jitted.lower(*args).compile().memory_analysis()
    except Exception:  # memory analysis is optional on some backends
        return None
    if m is None:
        return None
    total = (
        m.argument_size_in_bytes
        + m.output_size_in_bytes
        + m.temp_size_in_bytes
        - getattr(m, "alias_size_in_bytes", 0)
    )
    return total / 2**20


# ---------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------


def _time(run, repeats: int, warmup: int = 3) -> tuple[float, float]:
    # Several warm-up calls: jit compilation, and TorchScript's profiling executor, which
    # re-optimises geoopt's scripted functions during the first calls with new shapes.
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def _inputs(rng, kind: str, n: int, m: int, d: int):
    def ball(rows):
        v = rng.normal(size=(rows, d))
        v /= np.linalg.norm(v, axis=-1, keepdims=True)
        return (v * rng.uniform(0, 0.9, size=(rows, 1))).astype(np.float32)

    if kind == "dist":
        return ball(n), ball(n)
    if kind == "pairwise_dist":
        return ball(n), ball(m)
    return ball(n), rng.normal(size=(n, d)).astype(np.float32)  # expmap: point, tangent


SPIRALJAX_OPS = {
    "dist": lambda a, b: G.dist(a, b, curvature=-1.0),
    "pairwise_dist": lambda a, b: G.pairwise_dist(a, b, curvature=-1.0),
    "expmap": lambda a, b: G.expmap(a, b, curvature=-1.0),
}


def bench_spiraljax(kind: str, mode: str, a, b, repeats: int) -> dict:
    op = SPIRALJAX_OPS[kind]
    if mode == "fwd":
        fn = jax.jit(op)
    else:
        fn = jax.jit(jax.grad(lambda x, y: jnp.sum(op(x, y)), argnums=(0, 1)))
    a, b = jax.device_put(a), jax.device_put(b)

    def run():
        jax.block_until_ready(fn(a, b))

    med, best = _time(run, repeats)
    on_cpu = jax.default_backend() == "cpu"
    return {
        "median_ms": med * 1e3,
        "min_ms": best * 1e3,
        "peak_mib": _xla_bytes(fn, a, b),
        "peak_method": "xla",
        "rss_mib": _rss_peak_delta(run) if on_cpu else None,
    }


def bench_geoopt(kind: str, mode: str, a, b, repeats: int, torch, geoopt) -> dict:
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    ball = geoopt.PoincareBallExact(c=1.0)
    ta = torch.tensor(a, device=dev, requires_grad=mode != "fwd")
    tb = torch.tensor(b, device=dev, requires_grad=mode != "fwd")
    if kind == "dist":
        op = lambda x, y: ball.dist(x, y)  # noqa: E731
    elif kind == "pairwise_dist":
        op = lambda x, y: ball.dist(x[:, None, :], y[None, :, :])  # noqa: E731
    else:
        op = lambda x, y: ball.expmap(x, y)  # noqa: E731

    def sync():
        if dev == "cuda":
            torch.cuda.synchronize()

    def run():
        if mode == "fwd":
            # Inputs do not require grad, so no autograd graph is built.
            op(ta, tb)
        else:
            ta.grad = tb.grad = None
            op(ta, tb).sum().backward()
        sync()

    med, best = _time(run, repeats)
    if dev == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        run()
        peak, method = (torch.cuda.max_memory_allocated() - base) / 2**20, "cuda"
        rss = None
    else:
        peak, method = None, "rss"
        rss = _rss_peak_delta(run)
    return {
        "median_ms": med * 1e3,
        "min_ms": best * 1e3,
        "peak_mib": peak,
        "peak_method": method,
        "rss_mib": rss,
        "torch_device": dev,
    }


def _fmt(v, digits=2):
    return "n/a" if v is None else f"{v:.{digits}f}"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, nargs="+", default=[10_000, 200_000], help="N for dist/expmap")
    ap.add_argument("--pairwise", type=int, nargs="+", default=[256, 1024], help="n = m")
    ap.add_argument("--dim", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--no-geoopt", action="store_true")
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch.set_num_threads (default: 1 when torch runs on CPU)",
    )
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)

    torch = geoopt = None
    if not args.no_geoopt:
        try:
            torch = importlib.import_module("torch")
            geoopt = importlib.import_module("geoopt")
        except ImportError:
            print("torch/geoopt not importable: spiraljax only")
    if torch is not None:
        # On a shared CPU, torch's parallel regions wait for descheduled worker threads: with
        # 2 threads on a 2-core machine at load ~6 we measured ~100 ms stalls on 0.5 ms ops.
        # One thread was the steady, fastest setting there; pass --threads to override.
        if args.threads is None and not torch.cuda.is_available():
            args.threads = 1
        if args.threads:
            torch.set_num_threads(args.threads)

    rng = np.random.default_rng(0)
    cases = [(k, n, n) for k in ("dist", "expmap") for n in args.n]
    cases += [("pairwise_dist", n, n) for n in args.pairwise]
    rows = []
    for kind, n, m in cases:
        a, b = _inputs(rng, kind, n, m, args.dim)
        items = n * m if kind == "pairwise_dist" else n
        for mode in ("fwd", "fwd+bwd"):
            results = {"spiraljax": bench_spiraljax(kind, mode, a, b, args.repeats)}
            if torch is not None:
                results["geoopt"] = bench_geoopt(kind, mode, a, b, args.repeats, torch, geoopt)
            for lib, r in results.items():
                r.update(
                    op=kind,
                    mode=mode,
                    n=n,
                    m=m if kind == "pairwise_dist" else None,
                    d=args.dim,
                    library=lib,
                    items=items,
                    mitems_per_s=items / (r["min_ms"] * 1e-3) / 1e6,
                )
                if lib == "spiraljax" and "geoopt" in results:
                    r["speedup_vs_geoopt"] = results["geoopt"]["min_ms"] / r["min_ms"]
                rows.append(r)
                print(
                    f"{kind:14s} {mode:8s} n={n:>8d} {lib:9s} min {r['min_ms']:9.3f} ms "
                    f"({r['mitems_per_s']:9.2f} M/s) peak {_fmt(r['peak_mib'])} MiB "
                    f"[{r['peak_method']}] rss {_fmt(r['rss_mib'])} MiB",
                    flush=True,
                )

    dev = jax.devices()[0]
    meta = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "device": f"{dev.platform}: {dev.device_kind}",
        "jax_backend": jax.default_backend(),
        "cpu_count": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "versions": {p: version(p) for p in ("jax", "jaxlib", "numpy", "torch", "geoopt")},
        "torch_device": rows[-1].get("torch_device") if torch is not None else None,
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "dtype": "float32",
        "curvature": -1.0,
        "dim": args.dim,
        "repeats": args.repeats,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "geometry.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))

    lines = [
        "# Poincaré-ball kernels: spiraljax vs geoopt",
        "",
        f"{meta['date']}, JAX device {meta['device']} ({meta['cpu_count']} CPUs visible), "
        f"torch device {meta['torch_device']} ({meta['torch_threads']} threads); Python "
        f"{meta['python']}, "
        + ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
        + ". Script: `benchmarks/geometry.py`.",
        "",
        f"float32, c = 1, d = {args.dim}; time per call, minimum (median) of {args.repeats} "
        "calls after warm-up; throughput from the minimum (items = pairs, or points for "
        "expmap). fwd+bwd = gradient of the sum w.r.t. both inputs. Peak memory: `xla` = all "
        "XLA buffers of the compiled spiraljax call; `cuda` = torch max allocated; `rss` = "
        "resident-set high-water growth during one call (coarse). geoopt pairwise = broadcast "
        "`dist(x[:, None], y[None])` (geoopt 0.5.1 has no pairwise function). On CPU torch "
        "runs with 1 thread unless `--threads` is given (see the script).",
        "",
        "| op | mode | n | m | library | min ms (median) | M items/s | peak MiB [method] "
        "| RSS Δ MiB | speed-up |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        sp = r.get("speedup_vs_geoopt")
        lines.append(
            f"| {r['op']} | {r['mode']} | {r['n']} | {r['m'] or ''} | {r['library']} | "
            f"{r['min_ms']:.3f} ({r['median_ms']:.3f}) | {r['mitems_per_s']:.2f} | "
            f"{_fmt(r['peak_mib'])} [{r['peak_method']}] | {_fmt(r['rss_mib'])} | "
            f"{'' if sp is None else f'{sp:.2f}×'} |"
        )
    (args.out / "geometry.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out / 'geometry.json'} and {args.out / 'geometry.md'}")


if __name__ == "__main__":
    main()
