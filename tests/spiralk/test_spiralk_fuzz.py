"""Fuzzing: 10⁴ random / mutated programs never fail with anything but a positioned
SpiralKError; every program that parses renders back to an equal program that evaluates
to the same result."""

import random

import pytest

from spiraljax.spiralk import FIELDS, SpiralKError, parse

PIECES = [
    "(", ")", ",", ";", "\n", " ", "&&", "||", "!", "-", "+", "*", "/", "%", "<", "<=",
    ">", ">=", "==", "!=", ":", "#", '"', '"topk"', "kind", "r", "c", "k", "sg", "true",
    "false", "0", "1", "2", ".5", "1e308", "9e999", "1e-320", "128", "2048", "sel(",
    "log2(", "min(", "max(", "abs(", "floor(", "ceil(", "round(", "sqrt(", "clamp(",
    "pow(", "soft(", "mk", "mkd", "tile", "ctile", "u2", "use_2ce", "wg:", "tile:",
    "soft(mk, 2, 0.25, ", "foo", "$", "&", "=", "12abc", "\t", "/0", "*1e308", "((((",
]  # fmt: skip

CORPUS = [
    "wg: sel(r > 512, 256, 128); kl: clamp(k / 4, 8, 32); ch: sel(c > 16384, 8192, 0)",
    'u2: kind == "midk" || (c > 32768 && k > 128); soft(u2, true, 0.5, sg)',
    "tile: pow(2, floor(log2(c))); ctile: min(tile, 1024); soft(tile, tile, 1, true)",
    "mk: round(sqrt(k)) % 3; mkd: abs(-mk) + ceil(0.5)",
]

FUNCS = {"sel": 3, "log2": 1, "min": 2, "max": 3, "abs": 1, "floor": 1, "ceil": 1}
FUNCS.update({"round": 1, "sqrt": 1, "clamp": 3, "pow": 2})
# Mostly numbers (so many programs evaluate), a few leaves that provoke type errors.
LEAVES = ["r", "c", "k", "sg", "true", "1", "3", "0.5", "2048", "r", "c", "k", "2", "7"]
LEAVES += ["0", "1e308", "mk", "tile", "kind", '"topk"']
OPS = ["+", "-", "*", "/", "%", "<", "<=", ">", ">=", "==", "!=", "&&", "||"]


def random_expr(rng, depth):
    roll = rng.random()
    if depth <= 0 or roll < 0.25:
        return rng.choice(LEAVES)
    if roll < 0.55:
        a, op, b = random_expr(rng, depth - 1), rng.choice(OPS), random_expr(rng, depth - 1)
        # Mostly parenthesised (bare chains of comparisons are parse errors).
        return f"{a} {op} {b}" if rng.random() < 0.2 else f"({a} {op} {b})"
    if roll < 0.65:
        return f"{rng.choice('-!')}{random_expr(rng, depth - 1)}"
    if roll < 0.75:
        return f"({random_expr(rng, depth - 1)})"
    name = rng.choice(sorted(FUNCS))
    args = ", ".join(random_expr(rng, depth - 1) for _ in range(FUNCS[name]))
    return f"{name}({args})"


def random_program(rng):
    stmts = []
    for _ in range(rng.randint(1, 4)):
        field = rng.choice([*FIELDS, "u2"])
        if rng.random() < 0.6:
            stmts.append(f"{field}: {random_expr(rng, 3)}")
        else:
            parts = [random_expr(rng, 2) for _ in range(3)]
            stmts.append(f"soft({field}, {', '.join(parts)})")
    return rng.choice([";\n", "; ", "\n"]).join(stmts)


def mutate(rng, src):
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(src) + 1)
        op = rng.random()
        if op < 0.4:
            src = src[:i] + rng.choice(PIECES) + src[i:]
        elif op < 0.75:
            src = src[:i] + src[i + rng.randint(1, 6) :]
        else:
            j = rng.randrange(len(src) + 1)
            src = src[:i] + src[min(i, j) : max(i, j)][:40] + src[i:]
    return src


def soup(rng):
    return "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 30)))


def _summary(out):
    return out.hard, [(r.field, r.value, r.weight, r.cond) for r in out.soft]


def check(src, rng, stats):
    n_lines = src.count("\n") + 1
    try:
        prog = parse(src, filename="fuzz")
    except SpiralKError as err:
        assert 1 <= err.line <= n_lines and err.column >= 1, (src, err)
        assert "^" in err.excerpt and err.filename == "fuzz"
        stats["parse_error"] += 1
        return
    text = prog.render()
    again = parse(text)
    assert again == prog, (src, text)
    ctx = dict(
        rows=rng.choice([0, 1, 512, 1e6]),
        cols=rng.choice([1, 4096, 65536]),
        k=rng.choice([0, 1, 128, 4096]),
        sg=rng.choice([True, False]),
        kind=rng.choice(["topk", "midk", None]),
    )
    try:
        out = prog.evaluate(**ctx)
    except SpiralKError as err:
        assert 1 <= err.line <= n_lines and err.column >= 1, (src, err)
        assert "^" in err.excerpt and err.expression is not None
        # The rendered program fails the same way (possibly at another position).
        with pytest.raises(SpiralKError):
            again.evaluate(**ctx)
        stats["eval_error"] += 1
        return
    assert _summary(again.evaluate(**ctx)) == _summary(out)
    stats["ok"] += 1


def test_fuzz_ten_thousand_programs(seed_readme_program):
    corpus = [seed_readme_program, *CORPUS]
    rng = random.Random(20261121)
    stats = {"ok": 0, "parse_error": 0, "eval_error": 0}
    for i in range(10_000):
        kind = i % 4
        if kind == 0:
            src = mutate(rng, rng.choice(corpus))
        elif kind == 1:
            src = soup(rng)
        elif kind == 2:
            src = random_program(rng)
        else:
            src = mutate(rng, random_program(rng))
        check(src, rng, stats)
    # The generator reaches every outcome often (so the test exercises all paths).
    assert min(stats.values()) > 400, stats
