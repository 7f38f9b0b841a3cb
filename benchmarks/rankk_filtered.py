"""The filtered Triton Rank-K kernels (``spiraljax.kernels.triton``) on a GPU, per variant.

    python benchmarks/rankk_filtered.py [--shapes R:C:K,...] [--out DIR] [--variants]

For each shape: exactness of the filtered path against the XLA path (bit-identical
indices on random data, on data with ties, NaN, ±0 and ±Inf, and on a row with a long
tie, which pick repairs from the input), the survivors per row against the buffer, the
first-call seconds, and the median ms per call (``kernels.timing.time_calls``: rotated
inputs, batches of asynchronous calls) beside today's default path, ``lax.top_k(...,
is_stable=False)`` and ``torch.topk``. ``--variants`` also times a few launch-parameter
variants per shape, the previous ``lax.cond`` exactness guard (``cond``) and the cost of
the in-kernel repair where every row overflows (``tied``: all-tied rows, beside the XLA
path on them). Prints a table; writes ``rankk_filtered.json`` under ``--out``.
The development rig of the filtered kernels; ``benchmarks/rankk.py`` measures the public API.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from spiraljax.kernels import bottomk, midk, topk
from spiraljax.kernels.timing import time_calls
from spiraljax.kernels.triton import select as fsel
from spiraljax.kernels.xla import select_indices as xla_indices

SHAPES = [
    ("top", 1024, 65536, 16, "float32"),
    ("top", 1024, 65536, 128, "float32"),
    ("top", 1024, 65536, 1024, "float32"),
    ("top", 4096, 32768, 50, "float32"),
    ("top", 64, 1048576, 256, "float32"),
    ("top", 1, 67108864, 128, "float32"),
    ("top", 1, 67108864, 1024, "float32"),
    ("top", 8192, 4096, 8, "float32"),
    ("bottom", 1024, 65536, 16, "float32"),
    ("top", 1024, 65536, 16, "bfloat16"),
    ("top", 256, 131072, 2048, "float32"),
    ("mid", 1024, 65536, 16, "float32"),
    ("mid", 4096, 32768, 50, "float32"),
]


def nasty(rows, cols, dtype, seed):
    """Random data with ties, NaN, ±0 and ±Inf sprinkled in."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, cols)).astype(np.float32)
    m = rng.random((rows, cols))
    x[m < 0.01] = np.round(x[m < 0.01], 1)  # ties
    x[(m > 0.5) & (m < 0.5005)] = np.nan
    x[(m > 0.6) & (m < 0.6005)] = np.inf
    x[(m > 0.7) & (m < 0.7005)] = -np.inf
    x[(m > 0.8) & (m < 0.801)] = -0.0
    x[(m > 0.9) & (m < 0.901)] = 0.0
    return jnp.asarray(x).astype(dtype)


def mid_variants(n, k):
    base = fsel.plan_mid(n, k)
    out = {"default": base}
    if base is not None:
        rep = dataclasses.replace
        out["a1"] = rep(base, atomic=1)
        out["a1w16"] = rep(base, atomic=1, warps=16)
        out["a1p4s3"] = rep(base, atomic=1, pipeline=4, stages=3)
        out["a1w16p4s3"] = rep(base, atomic=1, warps=16, pipeline=4, stages=3)
        out["sparse"] = rep(base, sparse=True)
        out["search" if not base.search_pick else "nosearch"] = rep(
            base, search_pick=not base.search_pick
        )
        out["a2"] = rep(base, atomic=2)
        out["a2w16"] = rep(base, atomic=2, warps=16)
        for m in (2048, 16384):
            p = fsel.plan_mid(n, k, sample=m)
            if p is not None and p.sample != base.sample:
                out[f"a1sample{m}"] = rep(p, atomic=1)
    return out


def variants(n, k):
    """Launch-parameter variants around the default: the previous default (``old``:
    chunk bounds, acquire-release slot atomics), the chunk bounds (``u``) with other warps
    (w), no running bound (norun), no bisection (refine0) and the other chunk size, and
    the sampled row bound (``s{div}``: ``seg_len / div`` sample keys) with other chunks."""
    base = fsel.plan_filter(n, k)
    out = {"default": base}
    if base is None:
        return out
    rep = dataclasses.replace
    old = fsel.plan_filter(n, k, sample=0, chunk=8192 if k >= 32 else 4096)
    if old is not None:
        out["old"] = rep(old, atomic=0)
    u = fsel.plan_filter(n, k, sample=0)
    if u != base:
        out["u"] = u
    wide = 16 if u.chunk >= 8192 else 8
    for w in {4, wide} - {u.warps}:
        out[f"uw{w}"] = rep(u, warps=w)
    out[f"uw{wide}norun"] = rep(u, warps=wide, running=False)
    if u.groups:
        out["urefine0"] = fsel.plan_filter(n, k, sample=0, refine=0)
    for c in (2048, 4096):  # 1024 and 8192 lost on every shape (2026-12-03)
        q = fsel.plan_filter(n, k, sample=0, chunk=c)
        if q is not None and q.chunk != u.chunk:
            out[f"uc{q.chunk}"] = q
            if c == 2048 and q.groups:
                out["uc2048refine0"] = fsel.plan_filter(n, k, sample=0, chunk=c, refine=0)
    # the row bound from every r-th chunk only (FilterParams.row_stride)
    for st in (1, 2, 4, 8):
        try:
            q = fsel.plan_filter(n, k, sample=0, row_stride=st)
        except ValueError:
            continue
        if q is not None and q.row_groups:
            out[f"r{st}"] = q
            if q.warps == 4:
                out[f"r{st}w8"] = rep(q, warps=8)
    out["sparse" if not base.sparse else "dense"] = rep(base, sparse=not base.sparse)
    if not base.fused:  # the bounds found and tested on the raw bits
        out["raw" if not base.raw else "keyed"] = rep(base, raw=not base.raw)
    if base.seg_len <= base.chunk and base.groups and not base.search_pick:
        out["fused" if not base.fused else "unfused"] = rep(base, fused=not base.fused)
    if base.repair_segment:  # a long row selected whole; the segmented plan beside it
        out["seg"] = fsel.plan_filter(n, k, wide=False)
    if base.capacity >= 2048:
        for w in (4, 16):
            out[f"pw{w}"] = rep(base, pick_warps=w)
    if base.capacity >= 4 * k:  # pick sorts only its k (found by a bitwise search)
        out["search"] = rep(base, search_pick=True)
    # the sampled row bound lost to the chunk bounds everywhere on 2026-12-03 (n/32 … n/4
    # by 1.1–9×), as did one reservation atomic per program (ua2): one of each kept
    out["ua2"] = rep(u, atomic=2)
    seg = base.seg_len
    for div in (8,):
        p = fsel.plan_filter(n, k, sample=max(fsel.SAMPLE_BLOCK, seg // div))
        if p is not None and p.sample:
            out[f"s{div}"] = p
    # the same plan twice under one name would be timed twice: keep the first name
    seen, uniq = set(), {}
    for name, p in out.items():
        if p not in seen:
            seen.add(p)
            uniq[name] = p
    return uniq


def run_shape(kind, rows, cols, k, dtype, args, torch):
    dt = jnp.dtype(dtype)
    big = rows * cols * dt.itemsize >= (1 << 28)
    keys = jax.random.split(jax.random.PRNGKey(rows + cols + k), 2 if big else 3)
    xs = [jax.random.normal(kk, (rows, cols), jnp.float32).astype(dt) for kk in keys]
    ref_f = jax.jit(lambda x: xla_indices(x, k, kind))
    refs = [ref_f(x) for x in xs]
    row = {
        "kind": kind,
        "rows": rows,
        "cols": cols,
        "k": k,
        "dtype": dt.name,
        "floor_ms": rows * cols * dt.itemsize / 4.25e12 * 1e3,
    }

    def check(out, i):
        if not np.array_equal(np.asarray(out), np.asarray(refs[i])):
            raise AssertionError(f"{kind} {rows}x{cols} k={k} {dt.name}: indices differ")

    results = {}
    mid = kind == "mid"
    for name, p in (mid_variants(cols, k) if mid else variants(cols, k)).items():
        if args.only and name not in args.only.split(","):
            continue
        if p is None:
            results[name] = {"error": "no plan"}
            continue
        if mid:
            f = jax.jit(lambda x, p=p: fsel.select_mid_indices(x, k, p))
        else:
            f = jax.jit(lambda x, p=p: fsel.select_indices(x, k, kind, p))
        try:
            t0 = time.perf_counter()
            jax.block_until_ready(f(xs[0]))
            first = time.perf_counter() - t0
            check(f(xs[0]), 0)
            ms = time_calls(f, xs, reps=args.reps, batch=args.batch, check=check)
            # survivors per row against the buffer (did the kernel path hold?)
            if mid:
                _, ok = jax.jit(lambda x, p=p: fsel.filtered_mid_indices(x, k, p))(xs[0])
            else:
                _, ok = jax.jit(lambda x, p=p: fsel.filtered_indices(x, k, kind, p))(xs[0])
            results[name] = {
                "ms": ms,
                "first_s": first,
                "fits": bool(ok),
                "params": dataclasses.asdict(p),
            }
        except Exception as e:
            results[name] = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
        print(f"  {kind} {rows}x{cols} k={k} {dt.name} {name}: {results[name]}", flush=True)
    row["variants"] = results
    # exactness on nasty data (default plan), and on a long tie (must fall back)
    p = fsel.plan_mid(cols, k) if mid else fsel.plan_filter(cols, k)
    if p is not None and not big:
        if mid:
            f = jax.jit(lambda x: fsel.select_mid_indices(x, k, p))
        else:
            f = jax.jit(lambda x: fsel.select_indices(x, k, kind, p))
        for s in range(2):
            xn = nasty(rows, cols, dt, s)
            if not np.array_equal(np.asarray(f(xn)), np.asarray(ref_f(xn))):
                raise AssertionError(f"nasty data {s}: {kind} {rows}x{cols} k={k} differ")
        xt = xs[0].at[0, :].set(1.0)
        if not np.array_equal(np.asarray(f(xt)), np.asarray(ref_f(xt))):
            raise AssertionError("long tie differs")
        row["nasty_exact"] = True
    if p is not None and mid:
        # the kernels alone, without the exactness guard (lax.cond into the XLA path)
        g = jax.jit(lambda x: fsel.filtered_mid_indices(x, k, p)[0])
        row["unguarded_ms"] = time_calls(g, xs, reps=args.reps, batch=args.batch)
    elif p is not None:
        # What the previous exactness guard (lax.cond into the XLA path; XLA's GPU
        # conditional waits for its predicate on the host) cost over the in-kernel repair,
        # and what the repair costs where every row overflows (one long tie per row).
        def guarded(x):
            idx, ok = fsel.filtered_indices(x, k, kind, p)
            return jax.lax.cond(ok, lambda: idx, lambda: xla_indices(x, k, kind))

        row["cond_guard_ms"] = time_calls(jax.jit(guarded), xs, reps=args.reps, batch=args.batch)
        ties = [jnp.ones_like(xs[0]), jnp.ones_like(xs[0]).at[:, 1::3].set(2.0)]
        tie_refs = [ref_f(t) for t in ties]

        def tie_check(out, i):
            if not np.array_equal(np.asarray(out), np.asarray(tie_refs[i])):
                raise AssertionError(f"{kind} {rows}x{cols} k={k}: tied rows differ")

        reps = max(3, args.reps // 10)
        row["all_rows_repaired_ms"] = time_calls(f, ties, reps=reps, batch=1, check=tie_check)
        row["all_rows_xla_ms"] = time_calls(ref_f, ties, reps=reps, batch=1)
    # the peers and today's default
    op = {"top": topk, "bottom": bottomk, "mid": midk}[kind]
    today = jax.jit(lambda x: op(x, k))
    row["today_ms"] = time_calls(today, xs, reps=args.reps, batch=args.batch)
    if mid:  # the Mid-K target: within 1.5x of a Top-K of the same shape
        row["raft_ms"] = time_calls(
            jax.jit(lambda x: fsel.select_indices(x, k, "top")),
            xs,
            reps=args.reps,
            batch=args.batch,
        )
        return row
    sign = 1 if kind == "top" else -1
    lax_f = jax.jit(lambda x: jax.lax.top_k(sign * x, k, is_stable=False))
    row["raft_ms"] = time_calls(lax_f, xs, reps=args.reps, batch=args.batch)
    if torch is not None:
        ts = [torch.utils.dlpack.from_dlpack(x) for x in xs]
        row["torch_ms"] = time_calls(
            lambda t: torch.topk(t, k, dim=-1, largest=kind == "top", sorted=True),
            ts,
            reps=args.reps,
            batch=args.batch,
            sync=lambda o: torch.cuda.synchronize(),
        )
    return row


def probe(rows, n, args):
    """The bare mode-1 scan (constant row bound: the key of 3.0, ~0.13 % of normal keys
    survive) per chunk / warps / slot atomics, beside an XLA row maximum (one read)."""
    import jax_triton as jt

    from spiraljax.kernels.triton import kernels

    xs = [jax.random.normal(jax.random.PRNGKey(i), (rows, n), jnp.float32) for i in range(2)]
    out = {"rows": rows, "cols": n, "floor_ms": rows * n * 4 / 4.25e12 * 1e3}
    rowmax = jax.jit(lambda x: jnp.max(x, axis=-1))
    out["xla_rowmax_ms"] = time_calls(rowmax, xs, reps=args.reps, batch=args.batch)
    thr = jnp.full((rows,), np.float32(3.0).view(np.int32), jnp.int32)
    for chunk in (2048, 4096, 8192):
        for warps in (4, 8, 16):
            for atomic in (1, 2):
                cap = 1024
                consts = dict(
                    n=n,
                    nseg=1,
                    seg_len=n,
                    C=chunk,
                    G=0,
                    K=16,
                    CAP=cap,
                    DT=0,
                    BOTTOM=0,
                    MODE=1,
                    HINT=1,
                    ATOMIC=atomic,
                )

                def f(x, consts=consts, warps=warps, chunk=chunk):
                    bits = jax.lax.bitcast_convert_type(x, jnp.int32)
                    return jt.triton_call(
                        bits,
                        thr,
                        jnp.zeros((1,), jnp.int32),
                        kernel=kernels.compiled("scan"),
                        out_shape=[
                            jax.ShapeDtypeStruct((rows, 2), jnp.int32),
                            jax.ShapeDtypeStruct((rows, 2 * cap), jnp.int32),
                        ],
                        grid=(rows, -(-n // chunk)),
                        num_warps=warps,
                        num_stages=1,
                        zeroed_outputs=(0,),
                        **fsel._full_constants("scan", consts),
                    )[0]

                name = f"c{chunk}w{warps}a{atomic}"
                try:
                    g = jax.jit(f)
                    cnt = np.asarray(g(xs[0]))[:, 0]
                    ms = time_calls(g, xs, reps=args.reps, batch=args.batch)
                    out[name] = {"ms": ms, "survivors_mean": float(cnt.mean())}
                except Exception as e:
                    out[name] = {"error": f"{type(e).__name__}: {str(e)[:200]}"}
                print(f"  probe {rows}x{n} {name}: {out[name]}", flush=True)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="")
    ap.add_argument("--out", default=os.environ.get("OUT", "benchmarks/results"))
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--batch", type=int, default=5)
    ap.add_argument("--variants", action="store_true")
    ap.add_argument("--only", default="", help="NAME,...: time only these variants")
    ap.add_argument(
        "--profile", default="", help="[KIND:]R:C:K[:VARIANT[:DTYPE]],...: one warm call each (ncu)"
    )
    ap.add_argument("--probe", default="", help="R:C,...: time the bare scan (see probe)")
    args = ap.parse_args()
    global variants
    if args.probe:
        res = [probe(*(int(v) for v in s.split(":")), args) for s in args.probe.split(",")]
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "rankk_scan_probe.json"), "w") as fh:
            json.dump({"device": str(jax.devices()[0].device_kind), "probe": res}, fh, indent=1)
        return
    if args.profile:
        for s in args.profile.split(","):
            f = s.split(":")
            kind = f.pop(0) if f[0] in ("top", "bottom", "mid") else "top"
            r, c, k = (int(v) for v in f[:3])
            name = f[3] if len(f) > 3 else "default"
            dtype = f[4] if len(f) > 4 else "float32"
            x = jax.random.normal(jax.random.PRNGKey(0), (r, c), jnp.float32).astype(dtype)
            if kind == "mid":
                p = mid_variants(c, k)[name]
                f = jax.jit(lambda x, k=k, p=p: fsel.select_mid_indices(x, k, p))
            else:
                p = variants(c, k)[name]
                f = jax.jit(lambda x, k=k, p=p, kind=kind: fsel.select_indices(x, k, kind, p))
            jax.block_until_ready(f(x))
            jax.block_until_ready(f(x))
        return
    if not args.variants:
        variants = lambda n, k: {"default": fsel.plan_filter(n, k)}  # noqa: E731
    shapes = SHAPES
    if args.shapes:
        shapes = []
        for s in args.shapes.split(","):
            f = s.split(":")
            shapes.append(
                (f[0], int(f[1]), int(f[2]), int(f[3]), f[4] if len(f) > 4 else "float32")
            )
    try:
        import torch

        torch = torch if torch.cuda.is_available() else None
    except ImportError:
        torch = None
    rows = []
    meta = {
        "device": str(jax.devices()[0].device_kind),
        "jax": jax.__version__,
        "date": datetime.date.today().isoformat(),
    }
    try:
        import triton

        meta["triton"] = triton.__version__
    except ImportError:
        pass
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "rankk_filtered.json")
    for sh in shapes:
        try:
            rows.append(run_shape(*sh, args, torch))
        except Exception as e:
            rows.append({"shape": sh, "error": f"{type(e).__name__}: {str(e)[:500]}"})
            print("ERROR", sh, rows[-1]["error"], flush=True)
        with open(path + ".tmp", "w") as fh:  # after every shape: a timeout keeps the rest
            json.dump({"meta": meta, "rows": rows}, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(path + ".tmp", path)
    print(meta)
    print(
        f"{'shape':38s} {'best':>7s} {'variant':>10s} {'today':>7s} {'raft':>7s} "
        f"{'torch':>7s} {'floor':>6s} {'vs peer':>7s} {'default':>7s} {'cond':>7s} "
        f"{'tied':>7s} {'tiedxla':>7s}"
    )
    for r in rows:
        if "error" in r:
            print(r["shape"], r["error"][:100])
            continue
        ok = {n: v["ms"] for n, v in r["variants"].items() if "ms" in v}
        best = min(ok, key=ok.get) if ok else None
        peer = min(v for v in (r.get("raft_ms"), r.get("torch_ms")) if v)
        b = ok.get(best, float("nan"))
        print(
            f"{r['kind']} {r['rows']}x{r['cols']} k={r['k']} {r['dtype']:9s}"[:38].ljust(38),
            f"{b:7.3f} {best!s:>10s} {r['today_ms']:7.3f} {r['raft_ms']:7.3f} "
            f"{r.get('torch_ms', float('nan')):7.3f} {r['floor_ms']:6.3f} {peer / b:7.2f}x "
            f"{r['variants'].get('default', {}).get('ms', float('nan')):7.3f} "
            f"{r.get('cond_guard_ms', r.get('unguarded_ms', float('nan'))):7.3f} "
            f"{r.get('all_rows_repaired_ms', float('nan')):7.3f} "
            f"{r.get('all_rows_xla_ms', float('nan')):7.3f}",
        )


if __name__ == "__main__":
    main()
