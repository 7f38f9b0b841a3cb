#!/usr/bin/env python3
"""Did a change slow the geometry down? ``benchmarks/geometry.py`` of two trees, interleaved.

    python benchmarks/geometry_regression.py --before REV [--rounds 3] [--repeats 7]

Checks REV out into a temporary git worktree, then runs ``geometry.py --no-geoopt`` of REV
and of this working tree alternately (before, after, before, after, …) in fresh processes
on the same machine, so that drift in the machine's load falls on both sides alike. Per
operation it keeps the least of the per-round minima of each side and reports after /
before (> 1: slower now), with the spread of the paired per-round ratios (round i's after
over round i's before: median and range), which shows how far one figure can be trusted on
a shared machine. Writes ``geometry_regression.{json,md}`` to ``$OUT`` if set, else
``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from _common import RESULTS, environment, write_results  # noqa: E402


def _run(tree: Path, out: Path, repeats: int) -> list[dict]:
    env = dict(os.environ, PYTHONPATH=str(tree))
    script = tree / "benchmarks" / "geometry.py"
    subprocess.run(
        [sys.executable, str(script), "--no-geoopt", "--repeats", str(repeats), "--out", out],
        check=True,
        env=env,
        cwd=tree,
        stdout=subprocess.DEVNULL,
    )
    return json.loads((out / "geometry.json").read_text())["rows"]


def _key(row: dict) -> tuple:
    return (row["op"], row["mode"], row["n"], row.get("m"), row["d"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True, help="git revision to compare against")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--repeats", type=int, default=7, help="timed calls per op and round (geometry.py's)"
    )
    args = ap.parse_args()
    if args.rounds < 1:
        raise SystemExit(f"--rounds must be >= 1, got {args.rounds}")
    if args.repeats < 1:
        raise SystemExit(f"--repeats must be >= 1, got {args.repeats}")
    rev = subprocess.run(
        ["git", "rev-parse", "--verify", args.before + "^{commit}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if rev.returncode:
        raise SystemExit(f"--before {args.before!r} is not a commit here: {rev.stderr.strip()}")
    sha = rev.stdout.strip()
    per_round: dict[str, dict[tuple, list[float]]] = {"before": {}, "after": {}}
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "before"
        worktree = ["git", "-C", str(ROOT), "worktree"]
        subprocess.run([*worktree, "add", "-q", "--detach", str(old), sha], check=True)
        try:
            for i in range(args.rounds):
                for side, tree in (("before", old), ("after", ROOT)):
                    for row in _run(tree, Path(tmp) / f"{side}{i}", args.repeats):
                        per_round[side].setdefault(_key(row), []).append(row["min_ms"])
        finally:
            subprocess.run([*worktree, "remove", "--force", str(old)], check=False)
    rows = []
    for k in sorted(per_round["after"]):
        if k in per_round["before"]:
            bs, as_ = per_round["before"][k], per_round["after"][k]
            paired = [a / b for b, a in zip(bs, as_, strict=True)]
            op, mode, n, m, d = k
            rows.append(
                dict(
                    op=op,
                    mode=mode,
                    n=n,
                    m=m,
                    d=d,
                    before_ms=min(bs),
                    after_ms=min(as_),
                    ratio=min(as_) / min(bs),
                    round_ratios=paired,
                    round_ratio_median=statistics.median(paired),
                    before_rounds_ms=bs,
                    after_rounds_ms=as_,
                )
            )
    lines = [
        f"## Geometry before / after (`{args.before}` = {sha[:10]} vs this tree)",
        "",
        f"Least of {args.rounds} interleaved rounds' minima ({args.repeats} calls each), ms; "
        "ratio > 1: slower now. "
        "Per round: that round's after / before, median [min – max].",
        "",
        "| op | mode | n | before | after | after / before | per round |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        p = r["round_ratios"]
        lines.append(
            f"| {r['op']} | {r['mode']} | {r['n']} | {r['before_ms']:.3f} | "
            f"{r['after_ms']:.3f} | {r['ratio']:.2f} | "
            f"{r['round_ratio_median']:.2f} [{min(p):.2f} – {max(p):.2f}] |"
        )
    md = "\n".join(lines) + "\n"
    print(md)
    payload = {
        "benchmark": "geometry_regression",
        "environment": environment(),
        "before": {"rev": args.before, "sha": sha},
        "rounds": args.rounds,
        "repeats": args.repeats,
        "rows": rows,
    }
    write_results("geometry_regression", payload, md, out=Path(os.environ.get("OUT", RESULTS)))


if __name__ == "__main__":
    main()
