#!/usr/bin/env python3
"""Did a change slow the geometry down? ``benchmarks/geometry.py`` of two trees, interleaved.

    python benchmarks/geometry_regression.py --before REV [--rounds 3]

Checks REV out into a temporary git worktree, then runs ``geometry.py --no-geoopt`` of REV
and of this working tree alternately (before, after, before, after, …) in fresh processes
on the same machine, so that drift in the machine's load falls on both sides alike. Per
operation it keeps the least of the per-round minima of each side and reports after /
before (> 1: slower now). Writes ``geometry_regression.{json,md}`` to ``$OUT`` if set, else
``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from _common import RESULTS, environment, write_results  # noqa: E402


def _run(tree: Path, out: Path) -> list[dict]:
    env = dict(os.environ, PYTHONPATH=str(tree))
    subprocess.run(
        [sys.executable, str(tree / "benchmarks" / "geometry.py"), "--no-geoopt", "--out", out],
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
    args = ap.parse_args()
    if args.rounds < 1:
        raise SystemExit(f"--rounds must be >= 1, got {args.rounds}")
    rev = subprocess.run(
        ["git", "rev-parse", "--verify", args.before + "^{commit}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if rev.returncode:
        raise SystemExit(f"--before {args.before!r} is not a commit here: {rev.stderr.strip()}")
    sha = rev.stdout.strip()
    best: dict[str, dict[tuple, float]] = {"before": {}, "after": {}}
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "before"
        worktree = ["git", "-C", str(ROOT), "worktree"]
        subprocess.run([*worktree, "add", "-q", "--detach", str(old), sha], check=True)
        try:
            for i in range(args.rounds):
                for side, tree in (("before", old), ("after", ROOT)):
                    for row in _run(tree, Path(tmp) / f"{side}{i}"):
                        k = _key(row)
                        best[side][k] = min(best[side].get(k, float("inf")), row["min_ms"])
        finally:
            subprocess.run([*worktree, "remove", "--force", str(old)], check=False)
    rows = []
    for k in sorted(best["after"]):
        if k in best["before"]:
            b, a = best["before"][k], best["after"][k]
            op, mode, n, m, d = k
            rows.append(dict(op=op, mode=mode, n=n, m=m, d=d, before_ms=b, after_ms=a, ratio=a / b))
    lines = [
        f"## Geometry before / after (`{args.before}` = {sha[:10]} vs this tree)",
        "",
        f"Least of {args.rounds} interleaved rounds' minima, ms; ratio > 1: slower now.",
        "",
        "| op | mode | n | before | after | after / before |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['op']} | {r['mode']} | {r['n']} | {r['before_ms']:.3f} | "
            f"{r['after_ms']:.3f} | {r['ratio']:.2f} |"
        )
    md = "\n".join(lines) + "\n"
    print(md)
    payload = {
        "benchmark": "geometry_regression",
        "environment": environment(),
        "before": {"rev": args.before, "sha": sha},
        "rounds": args.rounds,
        "rows": rows,
    }
    write_results("geometry_regression", payload, md, out=Path(os.environ.get("OUT", RESULTS)))


if __name__ == "__main__":
    main()
