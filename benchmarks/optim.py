"""Riemannian optimizer step cost: spiraljax (optax transforms) vs geoopt, same CPU.

Problem: an (N, d) table of Poincaré-ball points (an embedding matrix) with a dense
Euclidean gradient, c = 1, float32. For each optimizer we time one full step (Riemannian
gradient, moments, exponential map or retraction, transport, re-projection):

* ``spiraljax-scan`` — ``steps`` updates + ``spiraljax.optim.apply_updates`` inside one
  jitted ``lax.scan`` (the way a training loop should run), time per step;
* ``spiraljax-call`` — one jitted ``update + apply_updates`` call per step from Python
  (includes dispatch), time per step;
* ``geoopt`` — ``RiemannianAdam`` / ``RiemannianSGD`` ``.step()`` from Python on a
  ``ManifoldParameter`` with ``.grad`` set (no autograd cost), ``PoincareBallExact`` for the
  expmap variants and ``PoincareBall`` (retraction ``project(x + u)``) for ``first_order``.

Times are the median and the minimum over ``--repeats`` runs of ``--steps`` steps after a
warm-up (on a shared CPU the minimum is the steadier figure). Writes
``benchmarks/results/optim.{md,json}`` with device, versions and date.

    python benchmarks/optim.py                       # N ∈ {1000, 100000}, d = 10
    python benchmarks/optim.py --sizes 1000000 --dims 16 --no-geoopt   # e.g. on a GPU
"""

from __future__ import annotations

import argparse
import datetime
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

from spiraljax.optim import apply_updates, riemannian_adam, riemannian_sgd

CONFIGS = {
    "adam": (lambda: riemannian_adam(1e-2), "adam", True),
    "adam-first-order": (lambda: riemannian_adam(1e-2, retraction="first_order"), "adam", False),
    "sgd-momentum": (lambda: riemannian_sgd(1e-2, momentum=0.9), "sgd", True),
}


def _time(fn, repeats: int) -> tuple[float, float]:
    fn()  # warm-up / compile
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def bench_spiraljax(name: str, x0, g, steps: int, repeats: int) -> dict:
    tx = CONFIGS[name][0]()

    @jax.jit
    def run_scan(x, state):
        def body(carry, _):
            x, state = carry
            u, state = tx.update(g, state, x)
            return (apply_updates(x, u), state), None

        (x, state), _ = jax.lax.scan(body, (x, state), None, length=steps)
        return x, state

    @jax.jit
    def one_step(x, state):
        u, state = tx.update(g, state, x)
        return apply_updates(x, u), state

    state0 = tx.init(x0)

    def scan_fn():
        jax.block_until_ready(run_scan(x0, state0))

    def call_fn():
        x, s = x0, state0
        for _ in range(steps):
            x, s = one_step(x, s)
        jax.block_until_ready(x)

    scan_med, scan_min = _time(scan_fn, repeats)
    call_med, call_min = _time(call_fn, repeats)
    return {
        "spiraljax-scan": (scan_med / steps, scan_min / steps),
        "spiraljax-call": (call_med / steps, call_min / steps),
    }


def bench_geoopt(name: str, x0: np.ndarray, g: np.ndarray, steps: int, repeats: int):
    try:
        import geoopt
        import torch
    except ImportError:
        return None
    _, kind, exact = CONFIGS[name]
    manifold = geoopt.PoincareBallExact(c=1.0) if exact else geoopt.PoincareBall(c=1.0)
    p = geoopt.ManifoldParameter(torch.tensor(x0), manifold=manifold)
    if kind == "adam":
        opt = geoopt.optim.RiemannianAdam([p], lr=1e-2)
    else:
        opt = geoopt.optim.RiemannianSGD([p], lr=1e-2, momentum=0.9)
    grad = torch.tensor(g)

    def fn():
        for _ in range(steps):
            p.grad = grad.clone()
            opt.step()

    med, mn = _time(fn, repeats)
    return {"geoopt": (med / steps, mn / steps)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 100_000])
    parser.add_argument("--dims", type=int, nargs="+", default=[10])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--no-geoopt", action="store_true")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "optim"))
    args = parser.parse_args()

    rows = []
    rng = np.random.default_rng(0)
    for n in args.sizes:
        for d in args.dims:
            v = rng.normal(size=(n, d))
            x0 = 0.9 * v / np.linalg.norm(v, axis=-1, keepdims=True) * rng.random((n, 1))
            x0 = x0.astype(np.float32)
            g = rng.normal(size=(n, d)).astype(np.float32)
            for name in CONFIGS:
                xj, gj = jnp.asarray(x0), jnp.asarray(g)
                res = bench_spiraljax(name, xj, gj, args.steps, args.repeats)
                if not args.no_geoopt:
                    res.update(bench_geoopt(name, x0, g, args.steps, args.repeats) or {})
                geo = res.get("geoopt")
                for method, (med, mn) in res.items():
                    row = {
                        "n": n,
                        "d": d,
                        "optimizer": name,
                        "method": method,
                        "median_us_per_step": med * 1e6,
                        "min_us_per_step": mn * 1e6,
                        "points_per_s_min": n / mn,
                        "speedup_vs_geoopt_min": (geo[1] / mn) if geo else None,
                    }
                    rows.append(row)
                    print(
                        f"n={n:>7} d={d:>3} {name:<17} {method:<15} "
                        f"median {med * 1e6:10.1f} µs  min {mn * 1e6:10.1f} µs"
                        + (f"  ×{geo[1] / mn:6.2f} vs geoopt" if geo else "")
                    )

    dev = jax.devices()[0]
    meta = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "device": f"{dev.platform}: {dev.device_kind}",
        "cpu_count": len(os.sched_getaffinity(0)),  # CPUs this process may run on
        "python": platform.python_version(),
        "jax": jax.__version__,
        "optax": version("optax"),
        "torch": version("torch"),
        "geoopt": version("geoopt"),
        "steps": args.steps,
        "repeats": args.repeats,
        "dtype": "float32",
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    lines = [
        "# Riemannian optimizer step: spiraljax vs geoopt",
        "",
        f"{meta['date']}, device {meta['device']} ({meta['cpu_count']} CPUs), "
        f"Python {meta['python']}, jax {meta['jax']}, optax {meta['optax']}, "
        f"torch {meta['torch']}, geoopt {meta['geoopt']}.",
        "One optimizer step on an (n, d) float32 table of ball points with a dense gradient "
        f"(c = 1); time per step over {args.steps} steps, median and minimum of "
        f"{args.repeats} runs. `spiraljax-scan`: steps inside one jitted `lax.scan`; "
        "`spiraljax-call`: one jitted call per step from Python; `geoopt`: `.step()` per step. "
        "Speed-up = geoopt min / spiraljax min.",
        "",
        "| n | d | optimizer | method | median (µs/step) | min (µs/step) | speed-up vs geoopt |",
        "|---:|---:|---|---|---:|---:|---:|",
    ]
    for r in rows:
        sp = r["speedup_vs_geoopt_min"]
        lines.append(
            f"| {r['n']} | {r['d']} | {r['optimizer']} | {r['method']} | "
            f"{r['median_us_per_step']:.1f} | {r['min_us_per_step']:.1f} | "
            f"{'' if sp is None or r['method'] == 'geoopt' else f'{sp:.2f}×'} |"
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out.with_suffix('.md')} and {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
