"""Compile every launch of the filtered Rank-K plans for an H100/H200 (sm_90), on any machine.

    python scripts/triton_compile_check.py                  # rankk.py's GPU and between shapes
    python scripts/triton_compile_check.py --shapes 1:67108864:1024,64:1048576:256

Triton compiles for a GPU target without a GPU (host work: the front end, the MLIR passes
and ptxas, which the triton wheel bundles). Each launch is compiled the way jax-triton
0.3.1 passes it: keyword scalars (``n``, ``nseg``, ``seg_len``, ``ng``) become
**constexprs**, not runtime scalars — a kernel that calls ``.to()`` on one compiles in the
interpreter and fails on the GPU (2026-12-04: one device call lost to exactly that). Run it
before a device call; it exits 1 if any launch fails. ``tests/kernels/test_triton_compile.py``
runs a few of them in CI.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def _shapes():
    """The GPU.md shapes and the in-between ones of ``benchmarks/rankk.py``."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
    from rankk import BETWEEN_SHAPES, GPU_SHAPES

    return [*GPU_SHAPES, *BETWEEN_SHAPES]


def launches(rows: int, n: int, k: int, kind: str = "top", code: int = 0, change=None):
    """The (name, constants, warps) of every launch of the default plan, merges included;
    ``change``: FilterParams fields set on the plan where they are valid for it."""
    from spiraljax.kernels.triton import select as fsel

    if kind == "mid":
        steps, _ = fsel._mid_launches(rows, n, k, fsel.plan_mid(n, k), code)
    else:
        p = fsel.plan_filter(n, k)
        if change:
            try:
                p = dataclasses.replace(p, **change)
            except ValueError:
                pass  # not valid for this plan (e.g. raw with chunk bounds): the default
        nseg = -(-n // p.seg_len)
        steps = fsel._launches(rows, n, k, p, code, kind == "bottom", by_index=nseg > 1)
        if nseg > 1:  # the merge of the segments' candidates: a pick, or a plan of its own
            m = nseg * k
            if m <= fsel.CAPACITY_MAX:
                steps = [*steps, fsel._merge_pick(rows, m, k)]
            else:
                q = fsel.plan_filter(m, k, segment=p.seg_len)
                steps = [*steps, *fsel._launches(rows, m, k, q, 3, False)]
    return [(name, consts, warps) for name, _, _, _, consts, warps, _ in steps]


def compile_launch(name: str, consts: dict, warps: int) -> None:
    """Compile one launch for sm_90 as jax-triton would (raises on failure)."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from spiraljax.kernels.triton import kernels
    from spiraljax.kernels.triton.select import _full_constants

    full = _full_constants(name, consts)
    signature, constexprs = {}, {}
    for arg in inspect.signature(kernels._KERNELS[name]).parameters:
        if arg in full:  # keyword scalars and constexprs alike: constexprs under jax-triton
            signature[arg] = "constexpr"
            constexprs[arg] = full[arg]
        else:
            signature[arg] = "*i32"  # every buffer is declared int32 (or int16 bits)
    src = ASTSource(kernels.compiled(name), signature, constexprs)
    opts = {"num_warps": warps, "num_stages": 1}
    triton.compile(src, target=GPUTarget("cuda", 90, 32), options=opts)


def self_test() -> None:
    """A kernel calling ``.to()`` on a keyword scalar must fail here, as on the GPU."""
    import triton
    import triton.language as tl

    from spiraljax.kernels.triton import kernels

    def bad(x_ptr, n):
        tl.store(x_ptr, (n * 0).to(tl.int64).to(tl.int32))

    kernels._KERNELS["_bad"] = bad
    try:
        compile_launch("_bad", {"n": 5}, 1)
    except triton.CompilationError:
        print("self-test ok: a keyword scalar is a constexpr here", flush=True)
        return
    finally:
        del kernels._KERNELS["_bad"]
    raise AssertionError("the self-test kernel compiled: keyword scalars are not constexprs")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="", help="R:C:K[:KIND],... (KIND top/bottom/mid)")
    ap.add_argument("--self-test", action="store_true", help="first check the check itself")
    ap.add_argument("--set", default="", help="FIELD=INT,...: FilterParams fields to set")
    ap.add_argument("--dtype", type=int, default=0, help="input encoding code (0 float32)")
    args = ap.parse_args(argv)
    change = {f: int(v) for f, v in (a.split("=") for a in args.set.split(",") if a)}
    if os.environ.get("TRITON_INTERPRET") == "1":
        raise SystemExit("unset TRITON_INTERPRET: the interpreter's kernels do not compile")
    if args.self_test:
        self_test()
    cases = [(r, c, k, "top") for r, c, k in _shapes()] + [(1024, 65536, 16, "mid")]
    if args.shapes:
        cases = []
        for s in args.shapes.split(","):
            f = s.split(":")
            cases.append((int(f[0]), int(f[1]), int(f[2]), f[3] if len(f) > 3 else "top"))
    failed = 0
    for rows, n, k, kind in cases:
        for name, consts, warps in launches(rows, n, k, kind, args.dtype, change):
            t0 = time.perf_counter()
            try:
                compile_launch(name, consts, warps)
                status = "ok"
            except Exception as e:  # report every failure, then exit 1
                failed += 1
                status = f"FAILED {type(e).__name__}: {str(e)[-600:]}"
            dt = time.perf_counter() - t0
            print(f"{kind} {rows}x{n} k={k} {name:5s} {dt:5.1f}s {status}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
