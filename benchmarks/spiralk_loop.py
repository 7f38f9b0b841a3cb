"""The SpiralK loop measured end to end (issue 7): tune → consensus plan → exhaustive check,
and self-rewrite of a deliberately bad default.

    python benchmarks/spiralk_loop.py            # on a GPU: the full measurement
    python benchmarks/spiralk_loop.py --smoke    # anywhere: tiny shapes, interpret mode

GPU run (writes ``benchmarks/results/spiralk_loop.{md,json}`` and the tuned table
``benchmarks/results/spiralk_loop_table.json``):

1. **Tune**: ``tuner.tune`` over the Rank-K shape grid (``benchmarks/rankk.py``'s GPU
   shapes), every timed output checked against the XLA path.
2. **Consensus after tuning**: with ``SPIRAL_HEUR_TABLE`` pointing at that table and no
   other SpiralK input, ``plan_rank`` for every shape; then an independent *exhaustive*
   sweep times the planned ``Choice`` together with every candidate of the tuning set
   (``tuner.default_candidates``), interleaved in one run. Pass: the plan is within 5 % of
   the sweep's best on ≥ 90 % of the shapes.
3. **Self-rewrite**: ``SPIRAL_HEUR_K`` holds a deliberately bad soft default
   (``soft(mkd, 1, 0.5, true);`` — one-bit digits, 32 radix passes) and the heur file is
   empty; ``tuner.self_rewrite`` times the candidates, A/B-tests the fastest against the
   incumbent (Wilson, min 8 trials), commits the rules; the plan before and after is
   re-timed, and "moved" means the new plan equals the measured winner in every SpiralK
   field.

``--smoke`` runs the same code on two tiny shapes with three candidates and four A/B trials
in Pallas interpret mode (timings meaningless) and writes nothing unless ``--out`` is
given: it checks the mechanics only. Compiled variants are kept between the tuning, the
sweep and the A/B trials (``timing.time_variants``), and a shape's variants compile side by
side (``--workers``, default the CPU count − 1). On the H200, before the radix passes were
rolled into one loop, a variant took ~40 s to compile and 2 shapes × 7 variants took
560 s; ``--shapes`` splits the grid across calls when it does not fit in one.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import jax
from rankk import GPU_SHAPES  # the Rank-K shapes of GPU.md, one list for both scripts

from spiraljax.kernels import DeviceCaps, plan_rank, timing, tuner
from spiraljax.kernels.choice import choice_to_fields

SMOKE_SHAPES = [(2, 300, 7), (2, 600, 9)]
BAD_DEFAULT = "soft(mkd, 1, 0.5, true);"
SPIRAL_VARS = (
    "SPIRAL_HEUR_K",
    "SPIRAL_HEUR_SOFT",
    "SPIRAL_HEUR_GEN_WEIGHT",
    "SPIRAL_HEUR_FILE",
    "SPIRAL_HEUR_TABLE",
    "SPIRAL_HEUR_ON_ERROR",
)


def log(msg):
    print(msg, flush=True)


def isolate_env(tmp: Path):
    for v in SPIRAL_VARS:
        os.environ.pop(v, None)
    os.environ["SPIRAL_HEUR_FILE"] = str(tmp / "heur.kdsl")


def dsl(choice):
    f = choice_to_fields(choice)
    f.pop("fcap")
    return f


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny interpret-mode run (any device)")
    ap.add_argument("--kinds", default="top", help="comma-separated kinds (default: top)")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--tolerance", type=float, default=0.05)
    ap.add_argument(
        "--max-candidates", type=int, default=None, help="first N tuning candidates per shape"
    )
    ap.add_argument(
        "--shapes", default=None, help="ROWSxCOLSxK list instead of the Rank-K GPU grid"
    )
    ap.add_argument(
        "--workers", type=int, default=None, help="variants compiled side by side (tuner)"
    )
    ap.add_argument("--rewrite-shape", default="1024x65536x128", help="ROWSxCOLSxK")
    ap.add_argument("--out", type=Path, default=None, help="results folder")
    args = ap.parse_args()

    gpu = jax.default_backend() in ("gpu", "cuda", "rocm")
    if not gpu and not args.smoke:
        sys.exit("spiralk_loop: no GPU; pass --smoke for the interpret-mode mechanics check")
    smoke = args.smoke
    shapes = SMOKE_SHAPES if smoke else GPU_SHAPES
    if args.shapes:
        shapes = [tuple(int(v) for v in s.lower().split("x")) for s in args.shapes.split(",")]
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    repeats = args.repeats or (1 if smoke else 15)
    batch = 1 if smoke else 5
    caps = DeviceCaps.cpu() if not gpu else DeviceCaps.detect()
    out_dir = args.out or (None if smoke else Path(__file__).resolve().parent / "results")
    tmp = Path(tempfile.mkdtemp(prefix="spiralk_loop."))
    isolate_env(tmp)

    def cands(kind, rows, cols, k, caps):
        c = tuner.default_candidates(kind, rows, cols, k, caps)
        return c[:3] if smoke else c[: args.max_candidates]

    # 1. tune
    table_path = (out_dir or tmp) / "spiralk_loop_table.json"
    table = tuner.tune(
        shapes=shapes,
        kinds=kinds,
        caps=caps,
        candidates=cands,
        repeats=repeats,
        batch=batch,
        warmup=1 if smoke else 2,
        output=table_path,
        allow_interpret=smoke,
        workers=args.workers,
        log=log,
    )

    # 2. consensus after tuning vs an independent exhaustive sweep
    os.environ["SPIRAL_HEUR_TABLE"] = str(table_path)
    rows_out = []
    for kind in kinds:
        for r, c, k in shapes:
            if k >= c:
                continue
            plan = plan_rank(kind, r, c, k, caps)
            pool = list(dict.fromkeys([plan.choice, *cands(kind, r, c, k, caps)]))
            xs = timing.random_inputs(r, c, "float32", 2, seed=r + c + k + 1)
            check = timing.reference_check(kind, xs, k)
            res = timing.time_variants(
                kind, xs, k, pool, reps=repeats, batch=batch, warmup=1, check=check,
                workers=args.workers,
            )  # fmt: skip
            errors = [e for _, _, e in res if e]
            ms = {ch: m for ch, m, _ in res}
            best_ch, best = min(ms.items(), key=lambda t: t[1])
            ratio = ms[plan.choice] / best
            ok = ratio <= 1 + args.tolerance
            rows_out.append(
                {
                    "kind": kind,
                    "rows": r,
                    "cols": c,
                    "k": k,
                    "source": plan.source,
                    "plan": dataclasses.asdict(plan.choice),
                    "plan_ms": ms[plan.choice],
                    "best": dataclasses.asdict(best_ch),
                    "best_ms": best,
                    "ratio": ratio,
                    "within": ok,
                    "variants": len(pool),
                    "errors": errors,
                }
            )
            log(
                f"{kind} {r}x{c} k={k}: plan ({plan.source}) {ms[plan.choice]:.4f} ms, "
                f"exhaustive best {best:.4f} ms of {len(pool)} -> x{ratio:.3f} "
                f"{'ok' if ok else 'MISS'}"
            )
    frac = sum(r["within"] for r in rows_out) / max(1, len(rows_out))

    # 3. self-rewrite of a deliberately bad default
    os.environ.pop("SPIRAL_HEUR_TABLE")
    os.environ["SPIRAL_HEUR_K"] = BAD_DEFAULT
    rr, rc, rk = (int(v) for v in args.rewrite_shape.lower().split("x"))
    if smoke:
        rr, rc, rk = SMOKE_SHAPES[0]
    kind = kinds[0]
    before = plan_rank(kind, rr, rc, rk, caps)
    res = tuner.self_rewrite(
        kind,
        rr,
        rc,
        rk,
        caps=caps,
        candidates=cands(kind, rr, rc, rk, caps),
        trials=4 if smoke else 16,
        min_trials=4 if smoke else 8,
        repeats=repeats,
        batch=batch,
        allow_interpret=smoke,
    )
    after = res.plan_after
    xs = timing.random_inputs(rr, rc, "float32", 2, seed=rr + rc + rk + 2)
    check = timing.reference_check(kind, xs, rk)
    pool = list(dict.fromkeys([before.choice, after.choice, *cands(kind, rr, rc, rk, caps)]))
    sweep = timing.time_variants(
        kind, xs, rk, pool, reps=repeats, batch=batch, warmup=1, check=check,
        workers=args.workers,
    )  # fmt: skip
    ms = {ch: m for ch, m, _ in sweep}
    same_fcap = [
        (ch, m) for ch, m, _ in sweep if ch.filter_capacity == before.choice.filter_capacity
    ]
    winner = min(same_fcap, key=lambda t: t[1])[0]
    rewrite = {
        "shape": [kind, rr, rc, rk],
        "bad_default": BAD_DEFAULT,
        "before": {"plan": dataclasses.asdict(before.choice), "source": before.source},
        "before_ms": ms[before.choice],
        "status": res.status,
        "wins": res.wins,
        "trials": res.trials,
        "wilson": list(res.interval),
        "rules": list(res.rules),
        "after": {"plan": dataclasses.asdict(after.choice), "source": after.source},
        "after_ms": ms[after.choice],
        "measured_winner": dataclasses.asdict(winner),
        "winner_ms": ms[winner],
        "moved_to_winner": dsl(after.choice) == dsl(winner),
        "heur_file": (tmp / "heur.kdsl").read_text() if (tmp / "heur.kdsl").exists() else "",
    }
    log(
        f"self-rewrite {kind} {rr}x{rc} k={rk}: {res.status} ({res.wins}/{res.trials}); "
        f"before {before.source} {rewrite['before_ms']:.4f} ms -> after {after.source} "
        f"{rewrite['after_ms']:.4f} ms; sweep winner {rewrite['winner_ms']:.4f} ms; "
        f"moved to winner: {rewrite['moved_to_winner']}"
    )

    dev = jax.devices()[0]
    meta = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "device": f"{dev.platform} {getattr(dev, 'device_kind', '')}",
        "smoke_interpret_mode": smoke,
        "versions": table["versions"],
        "repeats": repeats,
        "batch": batch,
        "tolerance": args.tolerance,
    }
    lines = [
        "# SpiralK loop: consensus after tuning, and self-rewrite",
        "",
        f"{meta['date']}, {meta['device']}, jax {meta['versions']['jax']}"
        + (" — SMOKE RUN in Pallas interpret mode: timings meaningless" if smoke else ""),
        "",
        "| kind | rows | cols | k | plan source | plan ms | exhaustive best ms | ratio | ≤ 5 % |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows_out:
        lines.append(
            f"| {r['kind']} | {r['rows']} | {r['cols']} | {r['k']} | {r['source']} | "
            f"{r['plan_ms']:.4f} | {r['best_ms']:.4f} | {r['ratio']:.3f} | "
            f"{'yes' if r['within'] else 'no'} |"
        )
    lines += [
        "",
        f"Within {args.tolerance:.0%} of the exhaustive best on {frac:.0%} of "
        f"{len(rows_out)} shapes (target ≥ 90 %).",
        "",
        f"Self-rewrite on {kind} {rr}×{rc}, k={rk}, bad default `{BAD_DEFAULT}`: "
        f"{res.status} after {res.trials} A/B trials ({res.wins} wins, Wilson "
        f"[{res.interval[0]:.3f}, {res.interval[1]:.3f}]); plan {before.source} "
        f"{rewrite['before_ms']:.4f} ms → {after.source} {rewrite['after_ms']:.4f} ms; "
        f"measured winner {rewrite['winner_ms']:.4f} ms; moved to the winner: "
        f"{rewrite['moved_to_winner']}.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "spiralk_loop.md").write_text(text)
        payload = {**meta, "within_fraction": frac, "shapes": rows_out, "rewrite": rewrite}
        (out_dir / "spiralk_loop.json").write_text(json.dumps(payload, indent=1) + "\n")
        log(f"wrote {out_dir}/spiralk_loop.{{md,json}} and {table_path.name}")


if __name__ == "__main__":
    main()
