"""Hypergradient cost: implicit (CG, Neumann) vs unrolled vs jaxopt, T ∈ {10, 100, 1000}.

Problem: L2-regularised logistic regression with one hyperparameter per feature,

    inner  L_train(w, θ) = mean log(1 + exp(−y·Xw)) + ½ Σ_i exp(θ_i) w_i²,
    outer  L_val(w)      = mean log(1 + exp(−y_v·X_v w)),

on synthetic data (n samples, d features). For each T the inner problem is solved by T
steps of ``optax.sgd(lr, momentum=0.9)`` (``tol=0`` so exactly T steps run), then

* ``implicit-cg``      — ``spiraljax.implicit.implicit_hypergrad(solve="cg")``,
* ``implicit-neumann`` — the same with ``solve="neumann"`` (α = lr),
* ``unrolled``         — ``unrolled_hypergrad`` (reverse mode through the T-step ``lax.scan``),
* ``unrolled-ckpt``    — the same with ``checkpoint=True``,
* ``jaxopt-cg``        — ``jaxopt.implicit_diff.custom_root`` with ``jaxopt.linear_solve.solve_cg``
  around the *same* inner solver (only when jaxopt is importable).

Linear solves use the same budget everywhere (``tol``, ``maxiter`` below).

Measurements (per method and T), all on ``jax.jit`` of ``θ -> (value, hypergradient)``:

* wall time — median of ``--repeats`` calls after one warm-up call, ``block_until_ready``;
* peak memory — from XLA's compiled executable, ``compiled.memory_analysis()``:
  ``temp_size_in_bytes`` (scratch buffers live during execution; this is what grows with T for
  unrolled differentiation) plus argument and output sizes (minus aliased bytes). The data
  are jit arguments, so they are included in the argument size (not hidden as constants). This
  is XLA's static buffer assignment for the whole program, i.e. the device memory the
  executable needs at its peak, independent of allocator state and measured the same way on
  CPU and GPU;
* ``rel_err`` — relative difference of the hypergradient from a reference (implicit CG after
  20 000 inner steps), to show that the methods compute the same quantity (unrolled converges
  to it as T grows).

Writes ``benchmarks/results/hypergrad.{md,json}`` (device, versions, date) and prints the
table; ``--append`` keeps earlier runs (e.g. CPU and GPU) in the same files.
Device-agnostic: runs on whatever ``jax.devices()[0]`` is (CPU or GPU).

    python benchmarks/hypergrad.py                 # defaults: n=2000, d=100, float32
    python benchmarks/hypergrad.py --n 20000 --d 1000 --repeats 20 --append   # e.g. on a GPU
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import jaxlib
import numpy as np
import optax
from _common import version  # benchmarks/ is on sys.path when run as a script

from spiraljax.implicit import implicit_hypergrad, run_inner_optimizer, unrolled_hypergrad

try:  # optional anchor, never imported by the package itself
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import jaxopt
        from jaxopt.implicit_diff import custom_root as jaxopt_custom_root
except ImportError:  # pragma: no cover - depends on the environment
    jaxopt = None

RESULTS = Path(__file__).resolve().parent / "results"


def make_problem(n: int, d: int, dtype, seed: int = 0):
    rng = np.random.default_rng(seed)
    scales = np.logspace(0, -1, d)
    w_true = rng.normal(size=d) * (rng.random(d) < 0.3)

    def split(m):
        X = rng.normal(size=(m, d)) * scales
        y = np.sign(X @ w_true + 0.5 * rng.normal(size=m))
        return jnp.asarray(X, dtype), jnp.asarray(y, dtype)

    X, y = split(n)
    Xv, yv = split(n // 2)
    # Lipschitz constant of the logistic loss gradient: ‖X‖²/(4n) + max λ.
    L = float(np.linalg.norm(np.asarray(X, np.float64), 2) ** 2 / (4 * n)) + float(np.exp(0.0))
    return (X, y, Xv, yv), 1.0 / L


def losses(data):
    """Inner / outer losses over ``data`` (passed as a jit argument, so it is counted)."""
    X, y, Xv, yv = data

    def inner_loss(w, theta):
        return jnp.mean(jax.nn.softplus(-y * (X @ w))) + 0.5 * jnp.sum(jnp.exp(theta) * w**2)

    def outer_loss(w, theta):
        return jnp.mean(jax.nn.softplus(-yv * (Xv @ w)))

    return inner_loss, outer_loss


def build_methods(lr, w0, T, solve_tol, solve_maxiter):
    """Each method is ``fn(θ, data) -> (value, hypergradient)``."""
    opt = optax.sgd(lr, momentum=0.9)
    cg_opts = {"tol": solve_tol, "maxiter": solve_maxiter}

    def implicit(solve, solve_options):
        def fn(h, data):
            inner_loss, outer_loss = losses(data)
            return implicit_hypergrad(
                outer_loss,
                inner_loss,
                h,
                w0,
                optimizer=opt,
                maxiter=T,
                tol=0.0,
                solve=solve,
                solve_options=solve_options,
            )[:2]

        return fn

    def unrolled(checkpoint):
        def fn(h, data):
            inner_loss, outer_loss = losses(data)
            return unrolled_hypergrad(
                outer_loss, inner_loss, h, w0, optimizer=opt, steps=T, checkpoint=checkpoint
            )[:2]

        return fn

    methods = {
        "implicit-cg": implicit("cg", cg_opts),
        "implicit-neumann": implicit("neumann", {"alpha": lr, **cg_opts}),
        "unrolled": unrolled(False),
        "unrolled-ckpt": unrolled(True),
    }
    if jaxopt is not None:
        solve_cg = jaxopt.linear_solve.solve_cg

        def jaxopt_solve(matvec, b):
            return solve_cg(matvec, b, tol=solve_tol, maxiter=solve_maxiter)

        def jaxopt_method(h, data):
            inner_loss, outer_loss = losses(data)

            @jaxopt_custom_root(jax.grad(inner_loss), solve=jaxopt_solve)
            def inner_solver(init, theta):
                w, _ = run_inner_optimizer(
                    inner_loss, theta, init, optimizer=opt, maxiter=T, tol=0.0
                )
                return w

            return jax.value_and_grad(lambda t: outer_loss(inner_solver(w0, t), t))(h)

        methods["jaxopt-cg"] = jaxopt_method
    return methods


def measure(fn, h, data, repeats):
    jitted = jax.jit(fn)
    t0 = time.perf_counter()
    compiled = jitted.lower(h, data).compile()
    compile_s = time.perf_counter() - t0
    mem = compiled.memory_analysis()
    memory = None
    if mem is not None:
        temp = int(mem.temp_size_in_bytes)
        arg = int(mem.argument_size_in_bytes)
        out = int(mem.output_size_in_bytes)
        alias = int(getattr(mem, "alias_size_in_bytes", 0))
        memory = {
            "temp": temp,
            "argument": arg,
            "output": out,
            "alias": alias,
            "peak": temp + arg + out - alias,
        }
    jax.block_until_ready(compiled(h, data))  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = jax.block_until_ready(compiled(h, data))
        times.append(time.perf_counter() - t0)
    return out, {
        "compile_s": compile_s,
        "median_s": statistics.median(times),
        "min_s": min(times),
        "memory": memory,
    }


def _fmt_bytes(b):
    if b is None:
        return "n/a"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if b < 1024 or unit == "GiB":
            return f"{b:.0f} {unit}" if unit == "B" else f"{b:.1f} {unit}"
        b /= 1024


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--d", type=int, default=100)
    p.add_argument("--steps", type=int, nargs="+", default=[10, 100, 1000])
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--solve-tol", type=float, default=1e-6)
    p.add_argument("--solve-maxiter", type=int, default=200)
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument(
        "--append",
        action="store_true",
        help="add this run to the runs already in OUT/hypergrad.json instead of replacing them",
    )
    args = p.parse_args(argv)
    if args.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    dtype = jnp.dtype(args.dtype)

    data, lr = make_problem(args.n, args.d, dtype)
    inner_loss, outer_loss = losses(data)
    w0 = jnp.zeros(args.d, dtype)
    h = jnp.full(args.d, -3.0, dtype)
    ref_fn = jax.jit(
        lambda h: implicit_hypergrad(
            outer_loss,
            inner_loss,
            h,
            w0,
            optimizer=optax.sgd(lr, momentum=0.9),
            maxiter=20000,
            tol=0.0,
            solve_options={"tol": 1e-7, "maxiter": 1000},
        )
    )
    ref = np.asarray(ref_fn(h).grad, np.float64)

    rows = []
    for T in args.steps:
        methods = build_methods(lr, w0, T, args.solve_tol, args.solve_maxiter)
        for name, fn in methods.items():
            (value, grad), stats = measure(fn, h, data, args.repeats)
            g = np.asarray(grad, np.float64)
            rel = float(np.linalg.norm(g - ref) / np.linalg.norm(ref))
            rows.append({"method": name, "T": T, "value": float(value), "rel_err": rel, **stats})
            mem = stats["memory"]
            print(
                f"T={T:5d} {name:17s} {stats['median_s'] * 1e3:9.2f} ms  "
                f"peak {_fmt_bytes(mem and mem['peak']):>10s}  temp "
                f"{_fmt_bytes(mem and mem['temp']):>10s}  rel_err {rel:.2e}",
                flush=True,
            )

    dev = jax.devices()[0]
    meta = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "device": f"{dev.platform}: {dev.device_kind}",
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "optax": optax.__version__,
        "jaxopt": version("jaxopt") if jaxopt is not None else None,
        "numpy": np.__version__,
        "problem": {
            "n": args.n,
            "d": args.d,
            "dtype": args.dtype,
            "inner": "sgd(lr, 0.9)",
            "lr": lr,
            "solve_tol": args.solve_tol,
            "solve_maxiter": args.solve_maxiter,
            "repeats": args.repeats,
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "hypergrad.json"
    runs = []
    if args.append and path.exists():
        previous = json.loads(path.read_text())
        runs = previous.get("runs", [previous] if "meta" in previous else [])
    runs.append({"meta": meta, "rows": rows})
    path.write_text(json.dumps({"runs": runs}, indent=2))
    md = render_markdown(runs)
    (args.out / "hypergrad.md").write_text(md)
    print(md)


def render_markdown(runs) -> str:
    md = [
        "# Hypergradients: implicit vs unrolled vs jaxopt",
        "",
        "Written by `benchmarks/hypergrad.py`. Per-feature L2 logistic regression; inner: T steps "
        "of SGD+momentum from zero; implicit methods differentiate the T-step solution by the "
        "implicit function theorem (one CG or Neumann solve), unrolled ones back-propagate "
        "through the T steps (`-ckpt`: `jax.checkpoint` per step), jaxopt = "
        "`jaxopt.implicit_diff.custom_root` + `solve_cg` around the same inner solver. Time: "
        "median and minimum of jitted calls (on a shared CPU the minimum is the steadier "
        "figure). Peak memory: XLA `compiled.memory_analysis()` of the whole jitted "
        "value-and-hypergradient program, temp + arguments (data included) + outputs − aliased; "
        "temp memory is the part that grows with T. rel_err: relative difference of the "
        "hypergradient from implicit CG after 20 000 inner steps.",
    ]
    for run in runs:
        meta, prob = run["meta"], run["meta"]["problem"]
        md += [
            "",
            f"## {meta['device']} — n={prob['n']}, d={prob['d']}, {prob['dtype']}",
            "",
            f"{meta['date']}; jax {meta['jax']}, optax {meta['optax']}, jaxopt {meta['jaxopt']}, "
            f"Python {meta['python']}; linear solves tol {prob['solve_tol']}, maxiter "
            f"{prob['solve_maxiter']}; {prob['repeats']} timed calls.",
            "",
            "| T | method | median (ms) | min (ms) | peak memory | temp memory | rel_err |",
            "|---:|---|---:|---:|---:|---:|---:|",
        ]
        for r in run["rows"]:
            mem = r["memory"] or {}
            md.append(
                f"| {r['T']} | {r['method']} | {r['median_s'] * 1e3:.2f} | "
                f"{r['min_s'] * 1e3:.2f} | {_fmt_bytes(mem.get('peak'))} | "
                f"{_fmt_bytes(mem.get('temp'))} | {r['rel_err']:.1e} |"
            )
    return "\n".join(md) + "\n"


if __name__ == "__main__":
    main()
