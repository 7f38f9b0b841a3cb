"""Rank-K benchmark: spiraljax topk/bottomk/midk against lax.top_k and torch.topk.

    python benchmarks/rankk.py --mode gpu [--tune] [--quick]
    python benchmarks/rankk.py --mode cpu

Median milliseconds per call (``spiraljax.kernels.timing.time_interleaved``: fresh
inputs rotated call after call, batches of async calls, ours and the peers' batches
interleaved round by round, median over batches; from 2026-12-04 on — before, each was
timed in turn, ours first, right after its compile). Every timed batch
verifies one output: ours bit-identical (values and indices) to the XLA path, the
baselines' values equal to ours. The floor is input bytes / measured copy bandwidth
(one read of the input; the copy bandwidth counts bytes read + written). Writes
``benchmarks/results/rankk.{md,json}`` (``--out`` to change) with device, versions, date.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from spiraljax.kernels import Choice, DeviceCaps, bottomk, midk, plan_rank, topk
from spiraljax.kernels.timing import time_calls, time_interleaved, time_variants

GPU_SHAPES = [
    (1024, 65536, 16),
    (1024, 65536, 128),
    (1024, 65536, 1024),
    (4096, 32768, 50),
    (64, 1048576, 256),
    (1, 67108864, 128),
    (1, 67108864, 1024),
    (8192, 4096, 8),
]
#: Shapes between the GPU.md ones (the issue's bar covers rows 1…32768, cols 1024…2²⁶,
#: k 1…2048), timed with ``--shapes between``.
BETWEEN_SHAPES = [
    (32768, 1024, 1),
    (32768, 2048, 32),
    (2048, 16384, 64),
    (256, 262144, 2048),
    (16, 4194304, 512),
    (4, 16777216, 8),
    (2, 33554432, 2048),
    (512, 131072, 300),
]
CPU_SHAPES = [
    (256, 4096, 16),
    (256, 4096, 128),
    (64, 65536, 128),
    (1, 1048576, 128),
    (1024, 1024, 8),
]
OPS = {"top": topk, "bottom": bottomk, "mid": midk}


def launch_plan(kind, rows, cols, k) -> str:
    """What the GPU call runs: the filtered kernels' parameters where ``select_indices_gpu``
    sends the planned ``Choice`` to them (``family == 1`` and a filtered plan), else the
    ``Choice`` of the Pallas path."""
    from spiraljax.kernels.triton import select as fsel

    choice = plan_rank(kind, rows, cols, k).choice
    if choice.family == 1:
        p = fsel.plan_mid(cols, k) if kind == "mid" else fsel.plan_filter(cols, k)
        if p is not None:
            return f"filtered {p}"
    return str(choice)


def copy_bandwidth():
    x = jnp.ones((1 << 28,), jnp.float32) * 1.5  # 1 GiB
    f = jax.jit(lambda a: a + 1.0)
    ms = time_calls(f, [x], reps=10, batch=5)
    return 2 * x.nbytes / (ms * 1e-3)


def make_inputs(rows, cols, dtype, count, seed):
    keys = jax.random.split(jax.random.PRNGKey(seed), count)
    return [jax.random.normal(kk, (rows, cols), jnp.float32).astype(dtype) for kk in keys]


def torch_mod():
    try:
        import torch

        return torch if torch.cuda.is_available() else None
    except ImportError:
        return None


def bench_case(kind, rows, cols, k, dtype, reps, batch, torch, want_stable, choice=None):
    nbuf = 2 if rows * cols * jnp.dtype(dtype).itemsize >= (1 << 28) else 3
    xs = make_inputs(rows, cols, dtype, nbuf, seed=rows + cols + k)
    op = OPS[kind]
    ref = [jax.jit(lambda x: op(x, k, implementation="xla"))(x) for x in xs]
    row = {"kind": kind, "rows": rows, "cols": cols, "k": k, "dtype": jnp.dtype(dtype).name}

    def check_exact(out, i):
        if not (
            np.array_equal(np.asarray(out[1]), np.asarray(ref[i][1]))
            and np.array_equal(
                np.asarray(out[0]).view(np.uint8), np.asarray(ref[i][0]).view(np.uint8)
            )
        ):
            raise AssertionError(f"{kind} {rows}x{cols} k={k} {dtype}: not bit-identical")

    def check_values(out, i, descending):
        got = np.sort(np.asarray(out).astype(np.float32), axis=-1)
        want = np.sort(np.asarray(ref[i][0]).astype(np.float32), axis=-1)
        if not np.array_equal(got, want):
            bad = np.nonzero(np.any(got != want, axis=-1))[0]
            r0 = bad[0]
            msg = (
                f"baseline values differ for {kind} {rows}x{cols} k={k} {dtype}: "
                f"{len(bad)} rows, row {r0}: got {got[r0][-4:]} want {want[r0][-4:]}"
            )
            row.setdefault("baseline_mismatch", []).append(msg)
            print(msg, flush=True)

    impl = "auto" if jax.default_backend() != "cpu" else "xla"
    ours = jax.jit(lambda x: op(x, k, implementation=impl, choice=choice))
    t0 = time.perf_counter()
    jax.block_until_ready(ours(xs[0]))  # trace, compile (kernels included) and run once
    row["first_call_s"] = time.perf_counter() - t0
    # Ours and the peers side by side, their batches interleaved (time_interleaved): the
    # first function timed after a compile would otherwise get the coldest GPU.
    entries = {"ours": (ours, xs, check_exact, None)}
    if kind == "top":
        base = {"lax_unstable": jax.jit(lambda x: jax.lax.top_k(x, k, is_stable=False))}
        if want_stable:
            base["lax_stable"] = jax.jit(lambda x: jax.lax.top_k(x, k))
    elif kind == "bottom":
        # lax has no bottom-k: the usual negation (fine for these random floats)
        base = {"lax_unstable": jax.jit(lambda x: jax.lax.top_k(-x, k, is_stable=False))}
        if want_stable:
            base["lax_stable"] = jax.jit(lambda x: jax.lax.top_k(-x, k))
    else:
        s = (cols - k) // 2
        base = {"lax_sort_slice": jax.jit(lambda x: jnp.sort(x, axis=-1)[:, s : s + k])}
        # the CPU Mid-K target compares with lax.top_k at the same k (timed, not value-checked)
        entries["lax_top_k_same_k"] = (jax.jit(lambda x: jax.lax.top_k(x, k)), xs, None, None)
    sign = -1 if kind == "bottom" else 1
    for name, f in base.items():
        try:
            jax.block_until_ready(f(xs[0]))
        except TypeError:  # is_stable missing on an older jax
            row[name] = None
            continue
        entries[name] = (
            f,
            xs,
            lambda o, i: check_values(
                sign * (o[0] if isinstance(o, (tuple, list)) else o), i, True
            ),
            None,
        )
    if torch is not None and kind in ("top", "bottom"):
        ts = [torch.utils.dlpack.from_dlpack(x) for x in xs]
        largest = kind == "top"
        tf = lambda t: torch.topk(t, k, dim=-1, largest=largest, sorted=True)  # noqa: E731

        def tcheck(o, i):
            v = jnp.asarray(o.values.float().cpu().numpy())
            check_values(v, i, largest)

        entries["torch"] = (tf, ts, tcheck, lambda o: torch.cuda.synchronize())
    row.update(time_interleaved(entries, reps=reps, batch=batch))
    # one call at a time, each waited for (block_until_ready), as a notebook user calls it
    row["ours_single"] = time_calls(ours, xs, reps=reps, batch=1, check=check_exact)
    return row, xs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--mode", choices=("gpu", "cpu"), default="gpu" if jax.default_backend() != "cpu" else "cpu"
    )
    ap.add_argument("--tune", action="store_true", help="also time Choice candidates")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    # GPU and CPU runs merge into one rankk.{md,json} (sections "gpu" and "cpu").
    ap.add_argument("--kinds", default="top,bottom,mid")
    ap.add_argument("--dtypes", default="float32,bfloat16")
    ap.add_argument(
        "--shapes",
        default="",
        help="'between' (BETWEEN_SHAPES) or R:C:K,... instead of the defaults",
    )
    ap.add_argument("--check", action="store_true", help="exactness sweep of Choices first")
    ap.add_argument("--check-only", action="store_true")
    ap.add_argument("--tune-only", action="store_true", help="only sweep Choices (top, float32)")
    args = ap.parse_args()
    if args.tune_only:
        tune_sweep(args)
        return
    if args.check or args.check_only:
        check_sweep()
        if args.check_only:
            return
    gpu = args.mode == "gpu"
    torch = torch_mod() if gpu else None
    shapes = GPU_SHAPES if gpu else CPU_SHAPES
    if args.shapes == "between":
        shapes = BETWEEN_SHAPES
    elif args.shapes:
        shapes = [tuple(int(v) for v in s.split(":")) for s in args.shapes.split(",")]
    if args.quick:
        shapes = shapes[:2]
    reps, batch = (10, 3) if gpu else (5, 2)
    bw = copy_bandwidth() if gpu else None
    results = []
    for rows, cols, k in shapes:
        for dname in args.dtypes.split(","):
            dtype = jnp.dtype(dname)
            for kind in args.kinds.split(","):
                if dname != "float32" and kind != "top":
                    continue
                row, xs = bench_case(
                    kind,
                    rows,
                    cols,
                    k,
                    dtype,
                    reps,
                    batch,
                    torch,
                    want_stable=(kind == "top") or not gpu,
                )
                row["plan"] = launch_plan(kind, rows, cols, k) if gpu else "xla"
                if bw:
                    row["floor"] = rows * cols * dtype.itemsize / bw * 1e3
                if gpu and args.tune and kind == "top":
                    row["tuned"] = [
                        (str(c), ms, err)
                        for c, ms, err in time_variants(
                            kind, xs, k, tune_candidates(rows, cols, k), reps=7, batch=3
                        )
                    ][:3]
                results.append(row)
                print(json.dumps(row), flush=True)
                write_results(args, gpu, bw, torch, results)
                del xs
    md = write_results(args, gpu, bw, torch, results)
    print(md)


def write_results(args, gpu, bw, torch, results):
    meta = {
        "device": str(jax.devices()[0].device_kind),
        "backend": jax.default_backend(),
        "jax": jax.__version__,
        "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "copy_bandwidth_TBps": bw / 1e12 if bw else None,
        "torch": getattr(torch, "__version__", None),
    }
    try:
        import triton

        meta["triton"] = triton.__version__
    except ImportError:
        meta["triton"] = None
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "rankk.json")
    data = {}
    if os.path.exists(path):
        with open(path) as fh:
            data = json.load(fh)
        if "results" in data:  # an older single-section file
            data = {}
    data["gpu" if gpu else "cpu"] = {"meta": meta, "results": results}
    _write_atomic(path, json.dumps(data, indent=1))
    return write_md(data, args.out)


def write_md(data: dict, out: str) -> str:
    """``rankk.md`` from the sections of ``rankk.json`` (both modes where present)."""
    parts = [
        table(data[s]["meta"], data[s]["results"], s == "gpu") for s in ("gpu", "cpu") if s in data
    ]
    md = "\n".join(parts) + NOTES
    _write_atomic(os.path.join(out, "rankk.md"), md)
    return md


def _write_atomic(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def check_sweep():
    """Kernels vs the XLA path on fresh random data with ties, ±0, ±Inf, NaN, every kind."""
    rng = np.random.default_rng(0)
    only_2ce = os.environ.get("RANKK_CHECK_2CE") == "1"
    chs = [
        Choice(),
        Choice(digit_bits=1, tile=1024, compact_tile=512, ordering=1),
        Choice(digit_bits=3, tile=4096, compact_tile=2048, warps=4, stages=3),
        Choice(digit_bits=4, tile=512, compact_tile=256),
        Choice(multiblock=True, chunks=8, digit_bits=2, tile=1024, compact_tile=1024),
        Choice(multiblock=True, chunks=64, digit_bits=4, tile=2048, compact_tile=512, ordering=1),
        Choice(filter_capacity=4096),
        Choice(filter_capacity=1024, digit_bits=4, tile=1024, compact_tile=512, ordering=1),
    ]
    only_filter = os.environ.get("RANKK_CHECK_FILTER") == "1"
    bad = 0
    case = 0
    for rows, cols, k in [(7, 3001, 5), (64, 20000, 100), (3, 100000, 250)]:
        for dname in ("float32", "bfloat16", "float16", "int32", "uint32"):
            if dname.startswith(("int", "uint")):
                x = rng.integers(0, 50, (rows, cols)).astype(dname)
            else:
                x = rng.standard_normal((rows, cols)).astype(np.float32)
                x[:, ::11] = 0.25
                x[:, 1::97] = np.nan
                x[:, 2::89] = -np.nan
                x[:, 3::83] = -0.0
                x[:, 4::79] = 0.0
                x[:, 5::73] = np.inf
                x[:, 6::71] = -np.inf
                x = x.astype(dname)
            x = jnp.asarray(x)
            for kind, op in OPS.items():
                kk = k if cols > 2 * k else cols // 3
                ref = op(x, kk, implementation="xla")
                case += 1
                pick = (chs[4], chs[5]) if only_2ce else (chs[0], chs[1 + case % (len(chs) - 1)])
                if only_filter:
                    pick = (chs[6], chs[7])
                for ch in pick:
                    if ch.ordering == 1 and kk > 256:
                        continue
                    out = op(x, kk, implementation="triton", choice=ch)
                    same = np.array_equal(np.asarray(out[1]), np.asarray(ref[1])) and (
                        np.array_equal(
                            np.asarray(out[0]).view(np.uint8), np.asarray(ref[0]).view(np.uint8)
                        )
                    )
                    if not same:
                        bad += 1
                        print("MISMATCH", kind, dname, rows, cols, kk, ch, flush=True)
    print(f"check_sweep: {bad} mismatches", flush=True)


def tune_sweep(args):
    """Time Choice candidates of topk/float32 on every GPU shape; JSON to --out."""
    shapes = GPU_SHAPES[:2] if args.quick else GPU_SHAPES
    out = []
    for rows, cols, k in shapes:
        xs = make_inputs(rows, cols, jnp.float32, 2, seed=rows + cols + k)
        res = time_variants("top", xs, k, tune_candidates(rows, cols, k), reps=5, batch=3)
        for ch, ms, err in res:
            out.append(
                {"rows": rows, "cols": cols, "k": k, "choice": str(ch), "ms": ms, "err": err}
            )
            print(f"{rows}x{cols} k={k} {ms:8.3f} {ch} {err or ''}", flush=True)
        del xs
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "rankk_tune.json"), "w") as fh:
            json.dump(out, fh, indent=1)


def tune_candidates(rows, cols, k):
    base = plan_rank("top", rows, cols, k, DeviceCaps.detect()).choice
    import dataclasses

    rep = dataclasses.replace
    out = [
        base,
        rep(base, digit_bits=3),
        rep(base, digit_bits=4),
        rep(base, warps=4),
        rep(base, warps=16),
    ]
    if not base.multiblock and base.tile < cols:
        out += [
            rep(base, filter_capacity=0),
            rep(base, filter_capacity=16384),
            rep(base, filter_capacity=16384, digit_bits=4),
        ]
    if cols <= 65536:  # resident: whole row in registers
        t = 1 << (cols - 1).bit_length()
        out += [
            rep(base, tile=t, warps=w, digit_bits=m, filter_capacity=0)
            for w in (16, 32)
            for m in (2, 4)
        ]
    else:
        out += [rep(base, tile=1024), rep(base, tile=8192)]
    if rows < 256:
        for ch in (4, 16, 64):
            out.append(rep(base, multiblock=True, chunks=min(1024, ch * max(1, 132 // rows))))
    return list(dict.fromkeys(out))


NOTES = """
Columns: `ours` = `spiraljax.kernels.topk/bottomk/midk` with `implementation="auto"` (GPU:
the Pallas/Triton radix select planned by `plan_rank`; CPU: the XLA path); `lax_stable` /
`lax_unstable` = `jax.lax.top_k` (on `-x` for bottom-k; `is_stable` is missing on jax 0.10.2,
hence "–" on CPU); `lax_sort_slice` = `jnp.sort` then the centred slice (what Mid-K replaces);
`lax_top_k_same_k` = `lax.top_k(x, k)` (the reference of the CPU Mid-K target); `torch` =
`torch.topk(sorted=True)` on the same buffers through DLPack; `floor` = input bytes / measured
copy bandwidth; `ours_single` = ours one call at a time, each waited for with
`block_until_ready` (the others: batches of asynchronous calls); `first_call_s` = seconds of
the first call of a new shape (trace, compile, run). "best baseline / ours" > 1 means ours
is faster (GPU: against the faster of `lax_unstable` and `torch`; CPU: against `lax.top_k`).
"""


def fmt(v):
    return "–" if v is None else f"{v:.3f}"


def table(meta, results, gpu):
    lines = [
        f"## Rank-K ({meta['device']}, jax {meta['jax']}, {meta['date']})",
        "",
        "Median ms per call; ours verified bit-identical to the XLA path every batch.",
        "",
    ]
    cols = ["ours", "ours_single", "lax_stable", "lax_unstable", "lax_sort_slice"]
    cols += ["lax_top_k_same_k", "torch", "floor", "first_call_s"]
    lines.append(
        "| kind | dtype | rows×cols, k | "
        + " | ".join(cols)
        + " | best baseline / ours | ours / floor |"
    )
    lines.append("|" + "---|" * (len(cols) + 5))
    for r in results:
        bases = [r.get(c) for c in ("lax_unstable", "torch") if r.get(c) is not None]
        if r["kind"] == "mid":
            bases = [r.get("lax_sort_slice")] if r.get("lax_sort_slice") else []
        if not gpu:
            names = ("lax_stable", "lax_unstable", "lax_top_k_same_k")
            bases = [r.get(c) for c in names if r.get(c) is not None]
        speed = f"{min(bases) / r['ours']:.2f}×" if bases else "–"
        fl = f"{r['ours'] / r['floor']:.1f}" if r.get("floor") else "–"
        lines.append(
            f"| {r['kind']} | {r['dtype']} | {r['rows']}×{r['cols']}, {r['k']} | "
            + " | ".join(fmt(r.get(c)) for c in cols)
            + f" | {speed} | {fl} |"
        )
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
