"""Size of the Triton IR of every Rank-K tuning candidate — a proxy for GPU compile time
that runs on any machine.

    python benchmarks/kernel_ir.py                 # the Rank-K GPU grid, top and mid
    python benchmarks/kernel_ir.py --kinds top --shapes 1024x65536x16

Each candidate of ``tuner.default_candidates`` (H200 capabilities) is traced and
*cross-lowered for CUDA* (``jit(...).trace(x).lower(lowering_platforms=("cuda",))``): the
Pallas kernels are lowered to Triton IR in Python exactly as on a GPU host, without a GPU.
The script counts the operations of each Triton module (the IR that XLA then compiles
with Triton and ptxas on the GPU) and times the lowering. With ``--compile`` and the
``triton`` package installed it also compiles every module to a cubin for sm_90 (H100 /
H200) with that package's compiler — host work, no GPU needed — and times it. That is not
XLA's bundled Triton, so the seconds are a stand-in for the GPU host's compile time; on
the H200, variants whose filtered-radix kernel had ~7,800 operations took ~40 s each to
compile inside XLA (issue 7's tuning run).

Writes ``benchmarks/results/kernel_ir.{md,json}`` (``--out`` to change; ``--label`` names
the code measured, e.g. a commit).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import jax
import jax.numpy as jnp
from _common import RESULTS, environment, write_results
from rankk import GPU_SHAPES


def _op_count(module) -> int:
    """Operations of an MLIR module, nested regions included."""
    count = 0

    def walk(op):
        nonlocal count
        count += 1
        for region in op.regions:
            for block in region.blocks:
                for inner in block.operations:
                    walk(inner)

    walk(module.operation)
    return count


def _recorder(texts: list[str] | None):
    """Patch the Pallas→Triton lowering to record the op count of every module it builds
    (and its text, when ``texts`` is a list)."""
    from jax._src.pallas.triton import lowering  # private: the only place the module exists

    sizes: list[int] = []
    original = lowering.lower_jaxpr_to_triton_module

    def spy(*args, **kwargs):
        result = original(*args, **kwargs)
        sizes.append(_op_count(result.module))
        if texts is not None:
            texts.append(result.module.operation.get_asm(enable_debug_info=False))
        return result

    lowering.lower_jaxpr_to_triton_module = spy
    return sizes


def _triton_compile(texts: list[str], choice, folder: Path) -> tuple[float, str | None]:
    """Seconds to compile the modules to sm_90 cubins with the ``triton`` package."""
    import triton
    from triton.backends.compiler import GPUTarget

    options = {"num_warps": choice.warps, "num_stages": choice.stages}
    t0 = time.perf_counter()
    try:
        for i, text in enumerate(texts):
            path = folder / f"m{i}.ttir"
            path.write_text(text)
            triton.compile(str(path), target=GPUTarget("cuda", 90, 32), options=options)
    except Exception as err:  # a module Triton rejects is a result, not a crash
        return time.perf_counter() - t0, f"{type(err).__name__}: {err}"[:300]
    return time.perf_counter() - t0, None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kinds", default="top,mid")
    ap.add_argument("--shapes", default=None, help="ROWSxCOLSxK list (default: the GPU grid)")
    ap.add_argument("--label", default="working tree")
    ap.add_argument(
        "--compile", action="store_true", help="also compile with the triton package (sm_90)"
    )
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    from spiraljax.kernels import DeviceCaps, rank, tuner

    texts: list[str] | None = [] if args.compile else None
    sizes = _recorder(texts)
    folder = Path(tempfile.mkdtemp(prefix="kernel_ir."))
    caps = DeviceCaps.cuda()
    shapes = GPU_SHAPES
    if args.shapes:
        shapes = [tuple(int(v) for v in s.lower().split("x")) for s in args.shapes.split(",")]
    rows_out = []
    for kind in [k.strip() for k in args.kinds.split(",") if k.strip()]:
        for r, c, k in shapes:
            x = jax.ShapeDtypeStruct((r, c), jnp.float32)
            per = []
            for ch in tuner.default_candidates(kind, r, c, k, caps):
                sizes.clear()
                if texts is not None:
                    texts.clear()
                t0 = time.perf_counter()
                fn = jax.jit(
                    lambda x, ch=ch: rank._pallas_call(
                        x, k=k, kind=kind, choice=ch, interpret=False
                    )
                )
                fn.trace(x).lower(lowering_platforms=("cuda",))
                rec = {"choice": str(ch), "ops": list(sizes), "lower_s": time.perf_counter() - t0}
                if texts is not None:
                    rec["compile_s"], rec["compile_error"] = _triton_compile(texts, ch, folder)
                per.append(rec)
            ops = [sum(p["ops"]) for p in per]
            row = {
                "kind": kind,
                "rows": r,
                "cols": c,
                "k": k,
                "candidates": len(per),
                "kernels": sum(len(p["ops"]) for p in per),
                "ops_total": sum(ops),
                "ops_max": max(ops),
                "ops_median": statistics.median(ops),
                "lower_s_total": sum(p["lower_s"] for p in per),
                "variants": per,
            }
            if texts is not None:
                row["compile_s_total"] = sum(p["compile_s"] for p in per)
                row["compile_s_max"] = max(p["compile_s"] for p in per)
                row["compile_errors"] = sum(p["compile_error"] is not None for p in per)
            rows_out.append(row)
            print(
                f"{kind:6} {r}x{c} k={k}: {row['candidates']} candidates, {row['kernels']} "
                f"Triton kernels, {row['ops_total']} ops (max {row['ops_max']} per variant), "
                f"lowered in {row['lower_s_total']:.1f} s"
                + (
                    f", Triton compile {row['compile_s_total']:.1f} s "
                    f"(max {row['compile_s_max']:.1f}, {row['compile_errors']} failed)"
                    if texts is not None
                    else ""
                ),
                flush=True,
            )
    env = environment()
    compiled = texts is not None
    if compiled:
        import triton

        how = (
            f" Compile: the `triton` {triton.__version__} package to sm_90 cubins on this "
            f"host ({env['cpu_count']} CPUs), one module after another; seconds summed over "
            "the candidates and the slowest candidate."
        )
    lines = [
        "# Triton IR size of the Rank-K tuning candidates",
        "",
        f"{env['date']}, cross-lowered for CUDA on {env['device']} ({env['backend']}), "
        f"jax {env['versions']['jax']}; code: {args.label}. Operations of every Triton "
        "module a candidate lowers to (nested regions included), a proxy for GPU compile "
        "time." + (how if compiled else " Triton compile not run (`--compile`)."),
        "",
        "| kind | rows | cols | k | candidates | Triton kernels | ops (all candidates) | "
        "max ops per candidate | lowering s |"
        + (" compile s | max compile s | failed |" if compiled else ""),
        "|---|---|---|---|---|---|---|---|---|" + ("---|---|---|" if compiled else ""),
    ]
    for r in rows_out:
        lines.append(
            f"| {r['kind']} | {r['rows']} | {r['cols']} | {r['k']} | {r['candidates']} | "
            f"{r['kernels']} | {r['ops_total']:,} | {r['ops_max']:,} | {r['lower_s_total']:.1f} |"
            + (
                f" {r['compile_s_total']:.1f} | {r['compile_s_max']:.1f} | {r['compile_errors']} |"
                if compiled
                else ""
            )
        )
    text = "\n".join(lines) + "\n"
    print(text)
    write_results(
        "kernel_ir", {"environment": env, "label": args.label, "rows": rows_out}, text, out=args.out
    )


if __name__ == "__main__":
    main()
