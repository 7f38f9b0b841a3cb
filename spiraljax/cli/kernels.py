"""Rank-K sub-commands of the ``spiraljax`` command line.

* ``spiraljax tune`` — measure kernel variants over a shape grid, write a JSON table
  (``spiraljax.kernels.tuner.tune``); refuses to run without a GPU unless
  ``--allow-interpret`` (Pallas interpret mode: a functional check, not a tuning).
* ``spiraljax heur explain --kind topk --rows R --cols C --k K`` — the SpiralK decision
  behind ``plan_rank``: candidates, rule hits, scores, winner and source.
* ``spiraljax bench topk`` — Rank-K against ``jax.lax.top_k`` (and ``torch.topk`` when
  installed), outputs verified, a printed table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["register_bench", "register_heur", "register_tune"]


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 64,1024, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _str_list(text: str) -> list[str]:
    return [v for v in text.replace(",", " ").split() if v]


def _caps(args):
    from spiraljax.kernels import DeviceCaps

    if args.device == "detect":
        return DeviceCaps.detect()
    if args.device == "cpu":
        return DeviceCaps.cpu()
    make = DeviceCaps.cuda if args.device == "cuda" else DeviceCaps.rocm
    return make(args.sm_count) if args.sm_count else make()


def _add_device(p):
    p.add_argument(
        "--device",
        choices=("detect", "cuda", "rocm", "cpu"),
        default="detect",
        help="device capabilities to plan for (default: the current device)",
    )
    p.add_argument("--sm-count", type=int, default=None, help="SMs / CUs for --device cuda/rocm")


# ----------------------------------------------------------------------------- tune


def register_tune(subparsers) -> None:
    """Add ``spiraljax tune`` to ``subparsers``."""
    p = subparsers.add_parser(
        "tune",
        help="time Rank-K kernel variants on this GPU and write a tuned table",
        description="Time the Pallas Rank-K variants (Choice candidates) over rows × cols × k "
        "on the current GPU, verifying every timed output against the XLA path, and write "
        "the JSON table read by plan_rank (point SPIRAL_HEUR_TABLE at it, or ship it as "
        "spiraljax/kernels/tables/<device class>.json).",
    )
    p.add_argument("--output", type=Path, default=None, help="table path (default: <class>.json)")
    p.add_argument("--kinds", type=_str_list, default=["top"], help="top,bottom,mid")
    p.add_argument("--dtypes", type=_str_list, default=["float32"], help="e.g. float32,bfloat16")
    p.add_argument("--rows", type=_int_list, default=[64, 1024], help="row counts")
    p.add_argument("--cols", type=_int_list, default=[4096, 65536], help="row lengths")
    p.add_argument("--k", type=_int_list, default=[16, 128], help="k values (k < cols kept)")
    p.add_argument("--repeats", type=int, default=15, help="timed batches per variant")
    p.add_argument("--batch", type=int, default=5, help="calls per timed batch")
    p.add_argument(
        "--max-candidates",
        type=int,
        default=None,
        help="time at most this many variants per shape (the built-in plan first)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="variants compiled side by side (default: CPU count - 1, at most 16)",
    )
    p.add_argument(
        "--allow-interpret",
        action="store_true",
        help="allow a non-GPU device (Pallas interpret mode; timings meaningless)",
    )
    p.set_defaults(handler=_run_tune)


def _run_tune(args) -> int:
    import jax

    from spiraljax.kernels import tuner
    from spiraljax.kernels.table import device_class

    if jax.default_backend() not in ("gpu", "cuda", "rocm") and not args.allow_interpret:
        print(
            f"spiraljax tune: refusing to tune on {jax.default_backend()!r}: without a GPU the "
            "Pallas kernels run in interpret mode and their timings mean nothing. Run on a "
            "GPU, or pass --allow-interpret for a (tiny) functional check."
        )
        return 2
    output = args.output or Path(f"{device_class()}.json")
    cands = None
    if args.max_candidates is not None:
        if args.max_candidates < 1:
            raise ValueError(f"--max-candidates={args.max_candidates} must be ≥ 1")

        def cands(kind, rows, cols, k, caps, n=args.max_candidates):
            return tuner.default_candidates(kind, rows, cols, k, caps)[:n]

    table = tuner.tune(
        rows=args.rows,
        cols=args.cols,
        ks=args.k,
        kinds=args.kinds,
        dtypes=args.dtypes,
        candidates=cands,
        repeats=args.repeats,
        batch=args.batch,
        warmup=1 if args.allow_interpret else 2,
        output=output,
        allow_interpret=args.allow_interpret,
        workers=args.workers,
        log=lambda s: print(s, flush=True),
    )
    n, bad = len(table["entries"]), len(table["mismatches"])
    print(f"wrote {output}: {n} entries, {bad} mismatching variants excluded")
    return 1 if bad else 0


# ----------------------------------------------------------------------------- heur explain


def register_heur(subparsers) -> None:
    """Add ``spiraljax heur`` to ``subparsers``."""
    p = subparsers.add_parser(
        "heur",
        help="SpiralK heuristics: explain a Rank-K plan",
        description="Inspect the SpiralK planning of Rank-K launches.",
    )
    sub = p.add_subparsers(dest="heur_command", metavar="ACTION", required=True)
    e = sub.add_parser(
        "explain",
        help="print the decision behind plan_rank",
        description="Print every consensus candidate, the rules that hit, scores, the winner "
        "and its source (SPIRAL_HEUR_K, SPIRAL_HEUR_SOFT, SPIRAL_HEUR_GEN_WEIGHT, "
        "SPIRAL_HEUR_FILE, SPIRAL_HEUR_TABLE apply).",
    )
    e.add_argument("--kind", choices=("topk", "bottomk", "midk", "top", "bottom", "mid"))
    e.add_argument("--rows", type=int, required=True)
    e.add_argument("--cols", type=int, required=True)
    e.add_argument("--k", type=int, required=True)
    e.set_defaults(kind="topk")
    _add_device(e)
    e.set_defaults(handler=_run_explain)


def _run_explain(args) -> int:
    from spiraljax.kernels.plan import explain_plan, plan_rank
    from spiraljax.spiralk import format_decision

    caps = _caps(args)
    plan = plan_rank(args.kind, args.rows, args.cols, args.k, caps)
    decision = explain_plan(args.kind, args.rows, args.cols, args.k, caps)
    print(f"device caps: {caps}")
    print(format_decision(decision), end="")
    print(f"plan: {plan.choice}")
    print(f"source: {plan.source}  score: {plan.score:.4f}")
    return 0


# ----------------------------------------------------------------------------- bench topk

BENCH_SHAPES = ((256, 4096, 16), (64, 65536, 128), (1024, 1024, 8))


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def register_bench(subparsers) -> None:
    """Add ``spiraljax bench`` to ``subparsers``."""
    p = subparsers.add_parser(
        "bench",
        help="benchmark Rank-K against jax.lax.top_k (and torch.topk)",
        description="Median ms per call of spiraljax.kernels.topk (implementation=auto), "
        "jax.lax.top_k and torch.topk when installed, on random float32 rows; every timed "
        "batch checks one output (values bit-equal to lax.top_k's, our indices equal).",
    )
    p.add_argument("what", choices=("topk",))
    p.add_argument(
        "--shapes",
        default=None,
        help="rows x cols x k triples, e.g. '256x4096x16,64x65536x128' (default: small)",
    )
    p.add_argument("--reps", type=int, default=7, help="timed batches (default: %(default)s)")
    p.add_argument("--batch", type=int, default=3, help="calls per batch (default: %(default)s)")
    p.add_argument("--no-torch", action="store_true", help="skip torch.topk")
    p.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    p.set_defaults(handler=_run_bench)


def _parse_shapes(text):
    if text is None:
        return list(BENCH_SHAPES)
    out = []
    for part in _str_list(text):
        try:
            r, c, k = (int(v) for v in part.lower().split("x"))
        except ValueError:
            raise ValueError(f"--shapes entry {part!r} must be ROWSxCOLSxK") from None
        if min(r, c) < 1 or not 0 <= k <= c:
            raise ValueError(f"--shapes entry {part!r} needs rows, cols ≥ 1 and 0 ≤ k ≤ cols")
        out.append((r, c, k))
    return out


def _run_bench(args) -> int:
    import jax
    import jax.numpy as jnp
    import numpy as np

    from spiraljax.kernels import topk
    from spiraljax.kernels.timing import time_calls

    if args.reps < 1 or args.batch < 1:
        raise ValueError(f"--reps={args.reps} and --batch={args.batch} must be ≥ 1")
    shapes = _parse_shapes(args.shapes)
    torch = None if args.no_torch else _torch()
    dev = jax.devices()[0]
    results = []
    for rows, cols, k in shapes:
        rng = np.random.default_rng(rows + cols + k)
        host = [rng.standard_normal((rows, cols)).astype(np.float32) for _ in range(2)]
        xs = [jnp.asarray(h) for h in host]
        ours = jax.jit(lambda x, k=k: topk(x, k))
        lax_f = jax.jit(lambda x, k=k: jax.lax.top_k(x, k))
        # lax.top_k is the reference for values; random normal rows have no ties, so the
        # indices agree too (ours are stable by construction).
        ref = [jax.device_get(lax_f(x)) for x in xs]

        def check_ours(out, i, ref=ref):
            v, idx = jax.device_get(out)
            if not (np.array_equal(v, ref[i][0]) and np.array_equal(idx, ref[i][1])):
                raise AssertionError(f"spiraljax topk differs from lax.top_k on {rows}x{cols}")

        row = {"rows": rows, "cols": cols, "k": k}
        row["spiraljax"] = time_calls(ours, xs, reps=args.reps, batch=args.batch, check=check_ours)
        row["lax_top_k"] = time_calls(lax_f, xs, reps=args.reps, batch=args.batch)
        if torch is not None:
            cuda = dev.platform in ("gpu", "cuda") and torch.cuda.is_available()
            ts = [torch.from_numpy(h).to("cuda" if cuda else "cpu") for h in host]

            def check_torch(out, i, ref=ref):
                if not np.array_equal(out.values.cpu().numpy(), ref[i][0]):
                    raise AssertionError(f"torch.topk differs from lax.top_k on {rows}x{cols}")

            row["torch_topk"] = time_calls(
                lambda t, k=k: torch.topk(t, k, dim=-1, largest=True, sorted=True),
                ts,
                reps=args.reps,
                batch=args.batch,
                check=check_torch,
                # CPU tensors are computed synchronously
                sync=(lambda o: torch.cuda.synchronize()) if cuda else (lambda o: None),
            )
        results.append(row)
    cols_ = ["spiraljax", "lax_top_k"] + (["torch_topk"] if torch is not None else [])
    print(f"Rank-K top-k, float32, median ms per call on {dev.platform} ({dev.device_kind})")
    print(f"{'rows':>6} {'cols':>8} {'k':>6} " + " ".join(f"{c:>11}" for c in cols_))
    for r in results:
        line = f"{r['rows']:>6} {r['cols']:>8} {r['k']:>6} "
        print(line + " ".join(f"{r[c]:>11.4f}" for c in cols_))
    if torch is None and not args.no_torch:
        print("(torch not installed: torch.topk skipped)")
    if args.json is not None:
        meta = {"device": f"{dev.platform} {dev.device_kind}", "jax": jax.__version__}
        if torch is not None:
            meta["torch"] = torch.__version__
        args.json.write_text(json.dumps({**meta, "results": results}, indent=1) + "\n")
    return 0
