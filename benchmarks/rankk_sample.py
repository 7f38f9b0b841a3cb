"""Sweep of the sampled-threshold Rank-K path (``Choice.sample``) on a GPU.

    python benchmarks/rankk_sample.py [--shapes 0,1,2] [--quick]

For each GPU.md shape (Top-K, float32 unless ``--dtypes``) it times the planned radix
kernel, ``lax.top_k(is_stable=False)``, ``torch.topk`` and sampled-path variants
(sample size × chunks × compact_tile × warps), each output checked bit-identical against the XLA
path every batch; for the sampled variants it also reports whether the single-read path
was taken (``fast``: the sample bounded every row) and the time of each stage (threshold,
filter, select). Prints one JSON line per measurement and writes
``benchmarks/results/rankk_sample.json`` (device, versions, date).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

from rankk import GPU_SHAPES, copy_bandwidth, make_inputs, torch_mod

from spiraljax.kernels import Choice, bottomk, plan_rank, topk
from spiraljax.kernels.pallas import sample as S
from spiraljax.kernels.timing import time_calls

OPS = {"top": topk, "bottom": bottomk}


def variants(rows, cols, k, sms=132):
    """Sample size × programs per row × (block, warps): a dozen points per shape."""
    want = max(1, (4 * sms) // rows)
    base = 1 << (want - 1).bit_length()
    out = []
    for s in (1024, 2048, 8192) if cols < 16384 else (2048, 8192):
        for ch in dict.fromkeys((min(base, 1024), min(4 * base, 1024))):
            for ct, w in ((1024, 4), (2048, 8)):
                if 4 * s <= cols and cols // ch >= ct:
                    out.append(Choice(sample=s, chunks=ch, compact_tile=ct, warps=w))
    return out


def stages(x, k, kind, ch):
    """Jitted stage functions of the sampled path (for the breakdown)."""
    _rows, n = x.shape
    s = S._sample_size(n, ch.sample)
    _, nch = S._chunks(n, ch)
    cap = S.capacity(n, k, s, nch)
    filt_f = jax.jit(lambda x: S.filter_candidates(x, k, kind, ch, False))
    sel_f = jax.jit(lambda a, b, c: S.select_candidates(a, b, c, k, cap))
    return cap, filt_f, sel_f


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default=",".join(str(i) for i in range(len(GPU_SHAPES))))
    ap.add_argument("--kinds", default="top")
    ap.add_argument("--dtypes", default="float32")
    ap.add_argument("--max-variants", type=int, default=40)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    ap.add_argument("--tiny", action="store_true", help="CPU smoke test (interpret mode)")
    args = ap.parse_args()
    if args.tiny:
        GPU_SHAPES[:] = [(2, 16384, 16)]
        args.shapes = "0"
    torch = torch_mod()
    bw = copy_bandwidth() if not args.tiny else 1e11
    meta = {
        "device": str(jax.devices()[0].device_kind),
        "jax": jax.__version__,
        "python": platform.python_version(),
        "torch": getattr(torch, "__version__", None),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "copy_bandwidth_TBps": bw / 1e12,
    }
    print(json.dumps(meta), flush=True)
    rows_out = []
    for si in map(int, args.shapes.split(",")):
        rows, cols, k = GPU_SHAPES[si]
        for dname in args.dtypes.split(","):
            dtype = jnp.dtype(dname)
            for kind in args.kinds.split(","):
                xs = make_inputs(rows, cols, dtype, 2, seed=rows + cols + k)
                op = OPS[kind]
                ref = [jax.jit(lambda x, op=op: op(x, k, implementation="xla"))(x) for x in xs]

                def check(out, i, ref=ref):
                    if not np.array_equal(np.asarray(out[1]), np.asarray(ref[i][1])):
                        raise AssertionError("not bit-identical")

                rec = {"kind": kind, "dtype": dname, "rows": rows, "cols": cols, "k": k}
                rec["floor"] = rows * cols * dtype.itemsize / bw * 1e3
                plan = plan_rank(kind, rows, cols, k).choice
                f = jax.jit(lambda x, op=op: op(x, k, implementation="pallas", choice=plan))
                rec["radix_plan"] = time_calls(f, xs, reps=7, batch=3, check=check)
                sign = 1 if kind == "top" else -1
                try:
                    g = jax.jit(lambda x, s=sign: jax.lax.top_k(s * x, k, is_stable=False))
                    rec["lax_unstable"] = time_calls(g, xs, reps=7, batch=3)
                except TypeError:  # no is_stable on an older jax
                    rec["lax_unstable"] = None
                if torch is not None:
                    ts = [torch.utils.dlpack.from_dlpack(x) for x in xs]
                    tf = lambda t, big=kind == "top": torch.topk(t, k, dim=-1, largest=big)  # noqa: E731
                    rec["torch"] = time_calls(
                        tf, ts, reps=7, batch=3, sync=lambda o: torch.cuda.synchronize()
                    )
                print(json.dumps(rec), flush=True)
                best = None
                for ch in variants(rows, cols, k)[: args.max_variants]:
                    ch = dataclasses.replace(ch, ordering=plan.ordering)
                    v = {"choice": dataclasses.asdict(ch)}
                    try:
                        f = jax.jit(
                            lambda x, op=op, ch=ch: op(x, k, implementation="pallas", choice=ch)
                        )
                        v["ms"] = time_calls(f, xs, reps=7, batch=3, check=check)
                        if args.tiny:
                            continue
                        cap, ff, sf = stages(xs[0], k, kind, ch)
                        a, b, c, _t = ff(xs[0])
                        cn = np.asarray(c)
                        v["cap"] = cap
                        v["fast"] = bool((cn <= cap).all() and (cn.sum(1) >= k).all())
                        v["cand_mean"] = float(cn.sum(1).mean())
                        v["t_filter"] = time_calls(ff, xs, reps=5, batch=3)
                        v["t_select"] = time_calls(lambda _: sf(a, b, c), xs, reps=5, batch=3)
                        S.SKIP_EMPTY = False
                        f2 = jax.jit(
                            lambda x, op=op, ch=ch: op(x, k, implementation="pallas", choice=ch)
                        )
                        v["ms_noskip"] = time_calls(f2, xs, reps=5, batch=3, check=check)
                        S.SKIP_EMPTY = True
                    except Exception as err:  # keep sweeping past a variant that fails
                        v["error"] = f"{type(err).__name__}: {err}"[:300]
                    v.update({kk: rec[kk] for kk in ("kind", "rows", "cols", "k", "dtype")})
                    print(json.dumps(v), flush=True)
                    rows_out.append(v)
                    if "ms" in v and (best is None or v["ms"] < best["ms"]):
                        best = v
                rec["best_sample"] = best
                rows_out.append(rec)
                print("BEST", json.dumps(rec), flush=True)
                os.makedirs(args.out, exist_ok=True)
                with open(os.path.join(args.out, "rankk_sample.json"), "w") as fh:
                    json.dump({"meta": meta, "results": rows_out}, fh, indent=1)
                del xs


if __name__ == "__main__":
    main()
