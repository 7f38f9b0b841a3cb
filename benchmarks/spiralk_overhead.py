"""Planning overhead of SpiralK (pure Python; paid once per plan, i.e. at trace time).

Times parse / evaluate of the seed README program, SoftLogic over a Rank-K-like domain
(separable, enumerated with a prior, beam), and a full ``decide()`` with the seed program
and a heur file of 800 rules. Prints a markdown table; writes
``benchmarks/results/spiralk.{md,json}``.

    python benchmarks/spiralk_overhead.py
"""

from __future__ import annotations

import datetime
import json
import platform
import sys
import tempfile
import timeit
from pathlib import Path

from spiraljax.spiralk import HeurStore, decide, parse, solve_soft

SEED = """
  mk:   sel(sg && (k<=128), 2, sel(k<=2048, 1, 0));
  mkd:  sel(mk==2,4, sel(mk==1,1,3));
  tile: sel(log2(c)>15.0, 2048,
        sel(log2(c)>13.0, 1024,
        sel(log2(c)>12.0,  512, 256)));
  ctile: sel(tile>=1024, tile/2, tile);
  soft(mk,   2, 0.25, sg && (k<=128));
  soft(mk,   1, 0.20, (k>128)&&(k<=2048));
  soft(tile, 2048, 0.20, log2(c)>15.0);
  soft(tile, 1024, 0.15, (log2(c)>13.0)&&(log2(c)<=15.0));
"""
DOMAIN = {
    "mk": (0, 1, 2),
    "mkd": (0, 1, 2, 3, 4, 5),
    "tile": (256, 512, 1024, 2048),
    "ctile": (128, 256, 512, 1024),
    "use_2ce": (False, True),
    "warps": (2, 4, 8),
    "stages": (1, 2, 3),
}
CTX = dict(rows=512, cols=65536, k=128, sg=True, kind="topk")


def per_call(fn, number):
    best = min(timeit.repeat(fn, number=number, repeat=5))
    return best / number


def main() -> None:
    program = parse(SEED)
    rules = program.evaluate(**CTX).soft

    def prior(a):
        return 0.01 * a["warps"] - 0.02 * a["stages"]

    tmp = Path(tempfile.mkdtemp())
    store = HeurStore(tmp / "heur.kdsl")
    store.append_all([f"soft(wg, {i}, 1, k > {i % 300});" for i in range(800)], bench=True)
    env = {"SPIRAL_HEUR_K": SEED, "SPIRAL_HEUR_FILE": str(store.path)}
    rows = [
        ("parse seed program", per_call(lambda: parse(SEED), 200)),
        ("evaluate seed program", per_call(lambda: program.evaluate(**CTX), 2000)),
        (
            "SoftLogic separable (1728 assignments)",
            per_call(lambda: solve_soft(rules, DOMAIN), 200),
        ),
        (
            "SoftLogic enumerate with prior (1728)",
            per_call(lambda: solve_soft(rules, DOMAIN, prior=prior), 5),
        ),
        (
            "SoftLogic beam with prior (width 16)",
            per_call(lambda: solve_soft(rules, DOMAIN, prior=prior, max_enumerate=64), 5),
        ),
        (
            "decide(): seed program + 800-rule heur file",
            per_call(lambda: decide(DOMAIN, **CTX, environ=env), 20),
        ),
    ]
    info = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "machine": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "note": "pure Python, single thread, shared 2-core CPU; best of 5 repeats",
    }
    lines = [
        "# SpiralK planning overhead",
        "",
        f"{info['date']}, Python {info['python']}, {info['machine']} ({info['note']}).",
        "",
        "| operation | time per call |",
        "|---|---|",
    ]
    lines += [f"| {name} | {t * 1e6:,.0f} µs |" for name, t in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "spiralk.md").write_text(text)
    payload = {**info, "results_seconds": {name: t for name, t in rows}}
    (out / "spiralk.json").write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
