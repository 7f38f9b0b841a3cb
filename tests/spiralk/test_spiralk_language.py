"""SpiralK language: every construct, the seed README program, errors, rendering."""

import math
import subprocess
import sys

import pytest

from spiraljax.spiralk import FIELDS, Program, SoftRule, SpiralKError, parse, parse_expression

# The shorter example in the seed's PyTorch-migration guide (seeds/000).
SEED_GUIDE_PROGRAM = """
  mk: sel(sg && (k<=128), 2, sel(k<=2048, 1, 0));
  tile: sel(log2(c)>15.0, 2048, sel(log2(c)>13.0, 1024, 512));
"""


def _soft(out):
    return [(r.field, r.value, r.weight) for r in out.soft]


# Each case: context, expected hard values and soft hits, arithmetic worked by hand.
SEED_CASES = [
    # r=512 c=65536 k=128 sg: sg && k<=128 → mk=2; mk==2 → mkd=4;
    # log2(65536)=16 > 15 → tile=2048; 2048>=1024 → ctile=2048/2=1024.
    # soft: rule 1 (sg && 128<=128) holds; rule 2 (128>128) fails; rule 3 (16>15) holds;
    # rule 4 (16<=15) fails.
    (
        dict(rows=512, cols=65536, k=128, sg=True),
        dict(mk=2, mkd=4, tile=2048, ctile=1024),
        [("mk", 2, 0.25), ("tile", 2048, 0.20)],
    ),
    # r=1024 c=16384 k=512 sg: k<=128 fails → sel(512<=2048,1,0)=1; mk==1 → mkd=1;
    # log2(16384)=14: not >15, >13 → tile=1024; ctile=512.
    # soft: rule 2 (512>128 && 512<=2048) holds; rule 4 (14>13 && 14<=15) holds.
    (
        dict(rows=1024, cols=16384, k=512, sg=True),
        dict(mk=1, mkd=1, tile=1024, ctile=512),
        [("mk", 1, 0.20), ("tile", 1024, 0.15)],
    ),
    # r=64 c=5000 k=4096 no sg: sg false → sel(4096<=2048,1,0)=0; mk 0 → mkd=3;
    # log2(5000)=12.29: not >15, not >13, >12 → tile=512; 512<1024 → ctile=512.
    # soft: none (rule 2 needs k<=2048; log2(c) <= 13).
    (dict(rows=64, cols=5000, k=4096, sg=False), dict(mk=0, mkd=3, tile=512, ctile=512), []),
    # r=8 c=4096 k=64 no sg: mk = sel(64<=2048,1,0) = 1; mkd=1; log2(4096)=12, not >12
    # → tile=256; ctile=256. soft: rule 1 needs sg; rule 2 needs k>128 → none.
    (dict(rows=8, cols=4096, k=64, sg=False), dict(mk=1, mkd=1, tile=256, ctile=256), []),
    # Boundary c=32768: log2=15 exactly, not >15 → >13 → tile=1024, ctile=512;
    # k=128 with sg → mk=2, mkd=4; soft rule 1 and rule 4 (15>13 && 15<=15).
    (
        dict(rows=256, cols=32768, k=128, sg=True),
        dict(mk=2, mkd=4, tile=1024, ctile=512),
        [("mk", 2, 0.25), ("tile", 1024, 0.15)],
    ),
    # Just past it, c=32769: log2 > 15 → tile=2048, ctile=1024; k=2048 (no sg): mk=1, mkd=1;
    # soft rule 2 (2048>128 && 2048<=2048) and rule 3.
    (
        dict(rows=2, cols=32769, k=2048, sg=False),
        dict(mk=1, mkd=1, tile=2048, ctile=1024),
        [("mk", 1, 0.20), ("tile", 2048, 0.20)],
    ),
    # k=2049: k<=2048 fails → mk=0, mkd=3; c=8192: log2=13, not >13, >12 → tile=512.
    (dict(rows=1, cols=8192, k=2049, sg=True), dict(mk=0, mkd=3, tile=512, ctile=512), []),
]


@pytest.mark.parametrize(("ctx", "hard", "soft"), SEED_CASES)
def test_seed_readme_program_by_hand(seed_readme_program, ctx, hard, soft):
    out = parse(seed_readme_program, filename="SPIRAL_HEUR_K").evaluate(**ctx, kind="topk")
    assert out.hard == hard
    assert list(out.hard) == ["mk", "mkd", "tile", "ctile"]
    assert all(type(v) is int for v in out.hard.values())
    assert _soft(out) == soft  # weights are the literals, parsed exactly


def test_seed_guide_program():
    # c=65536: log2 16 > 15 → 2048; k=4096 → not <= 2048 → mk 0.
    out = parse(SEED_GUIDE_PROGRAM).evaluate(rows=1, cols=65536, k=4096, sg=True)
    assert out.hard == {"mk": 0, "tile": 2048}
    # c=10000: log2 13.29 > 13 → 1024; sg && k=5 <= 128 → 2.
    out = parse(SEED_GUIDE_PROGRAM).evaluate(rows=1, cols=10000, k=5, sg=True)
    assert out.hard == {"mk": 2, "tile": 1024}


def test_seed_program_soft_rule_origins_name_lines(seed_readme_program):
    out = parse(seed_readme_program, filename="SPIRAL_HEUR_K").evaluate(
        rows=512, cols=65536, k=128, sg=True
    )
    # soft(mk, 2, ...) is on line 14 of the program text (line 1 is the empty first line).
    assert out.soft[0].origin == "SPIRAL_HEUR_K:14"
    assert out.soft[1].origin == "SPIRAL_HEUR_K:16"
    assert out.soft[0].cond == "sg && k <= 128"


def ev(src, **ctx):
    base = dict(rows=100, cols=1000, k=10, sg=True, kind="topk")
    base.update(ctx)
    return parse(src).evaluate(**base)


def val(expr, **ctx):
    """Evaluate an expression through a field (wg holds integers, so scale by 1000)."""
    return ev(f"wg: round(({expr}) * 1000)", **ctx).hard["wg"] / 1000


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("10 - 4 - 3", 3),  # left associative
        ("2 * 3 / 4", 1.5),
        ("7 % 3", 1),
        ("-7 % 3", -1),  # fmod: sign of the dividend
        ("7 % -3", 1),
        ("-(2 + 3)", -5),
        ("--4", 4),
        (".5 + 1.25", 1.75),
        ("1e3 / 1E2", 10),
        ("2.5e-1 * 4", 1),
        ("r / 4 + c / 100 + k", 25 + 10 + 10),
        ("log2(1024)", 10),
        ("log2(3)", math.log2(3)),
        ("min(5, 3, 9)", 3),
        ("max(5, 3, 9)", 9),
        ("min(4)", 4),
        ("abs(-2.5)", 2.5),
        ("floor(-2.5)", -3),
        ("ceil(-2.5)", -2),
        ("round(2.5)", 3),  # half away from zero
        ("round(-2.5)", -3),
        ("round(2.4)", 2),
        ("sqrt(16)", 4),
        ("clamp(15, 0, 10)", 10),
        ("clamp(-5, 0, 10)", 0),
        ("clamp(5, 0, 10)", 5),
        ("pow(2, 10)", 1024),
        ("pow(9, 0.5)", 3),
        ("sel(true, 1, 2)", 1),
        ("sel(false, 1, 2)", 2),
        ("sel(0, 1, 2)", 2),  # numbers are true when non-zero
        ("sel(-3, 1, 2)", 1),
        ("true + true", 2),  # booleans read as 1/0
        ("sel(sg, 8, 4)", 8),
        ('sel(kind == "topk", 1, 0)', 1),
        ('sel(kind != "midk", 1, 0)', 1),
    ],
)
def test_arithmetic_and_functions(expr, expected):
    assert val(expr) == pytest.approx(expected, abs=1e-3)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("1 < 2", True),
        ("2 < 2", False),
        ("2 <= 2", True),
        ("3 > 2", True),
        ("2 >= 3", False),
        ("2 == 2.0", True),
        ("2 != 2", False),
        ("true == 1", True),
        ("!true", False),
        ("!0", True),
        ("!!5", True),
        ("true && false", False),
        ("true || false", True),
        ("false || false", False),
        ("1 < 2 && 2 < 3", True),
        ("1 > 2 || 2 < 3 && false", False),  # && binds tighter than ||
        ("(1 > 2 || 2 < 3) && true", True),
        ("!(1 > 2)", True),
        ("sg && k <= 10", True),
        ("sg && k < 10", False),
        ('kind == "topk"', True),
        ('"a" == "b"', False),
    ],
)
def test_conditions(expr, expected):
    assert ev(f"u2: {expr}").hard["use_2ce"] is expected


def test_short_circuit_never_evaluates_the_other_branch():
    # Each bad branch would raise (sqrt(-1), 1/0, log2(0)).
    out = ev("wg: sel(false, sqrt(-1), 7); kl: sel(true, 3, 1/0); u2: false && log2(0) > 1")
    assert out.hard == {"wg": 7, "kl": 3, "use_2ce": False}
    assert ev("u2: true || 1/0 > 0").hard["use_2ce"] is True


def test_fields_read_after_assignment_and_reassignment():
    out = ev("tile: 2048; ctile: sel(tile>=1024, tile/2, tile); tile: 512; ch: tile + ctile")
    assert out.hard == {"tile": 512, "ctile": 1024, "ch": 1536}


def test_all_fields_and_u2_alias():
    src = "; ".join(f"{f}: {i + 1}" for i, f in enumerate(FIELDS) if f != "use_2ce")
    out = ev(src + "; u2: true")
    assert set(out.hard) == set(FIELDS)
    assert out.hard["use_2ce"] is True
    assert ev("use_2ce: 0").hard["use_2ce"] is False
    assert ev("u2: 1; wg: sel(use_2ce, 256, 128); kl: sel(u2, 1, 2)").hard["wg"] == 256


def test_separators_comments_and_multiline_expressions():
    src = """
    # a comment line
    wg: 256   # trailing comment
    kl: (1 +
         2)
    ;;
    ch: 4; mk: 1
    soft(tile, 512,
         0.5, true)
    """
    out = ev(src)
    assert out.hard == {"wg": 256, "kl": 3, "ch": 4, "mk": 1}
    assert _soft(out) == [("tile", 512, 0.5)]
    assert ev("").hard == {}
    assert ev("# only a comment").hard == {}


def test_soft_rules_only_when_condition_holds():
    src = """
    soft(mk, 2, 0.25, k <= 10);
    soft(mk, 1, -0.5, k > 10);
    soft(u2, true, 1, true);
    soft(tile, r * 2, k / 4, c >= 1000);
    """
    out = ev(src)
    assert _soft(out) == [("mk", 2, 0.25), ("use_2ce", True, 1.0), ("tile", 200, 2.5)]
    out = ev(src, k=11)
    assert _soft(out) == [("mk", 1, -0.5), ("use_2ce", True, 1.0), ("tile", 200, 2.75)]
    assert all(isinstance(r, SoftRule) for r in out.soft)
    assert out.hard == {}


def test_variables_missing_from_context_only_matter_when_read():
    prog = parse("wg: 64")
    assert prog.evaluate().hard == {"wg": 64}
    with pytest.raises(SpiralKError, match="variable 'kind' was not given"):
        parse('wg: sel(kind == "topk", 1, 2)').evaluate(rows=1, cols=1, k=1)


def test_sg_may_be_numeric():
    assert parse("wg: sg * 2").evaluate(sg=32).hard["wg"] == 64


@pytest.mark.parametrize(
    ("src", "message", "line", "col"),
    [
        ("wg: 1 +", "expected an expression, found end of input", 1, 8),
        ("wg: (1 + 2", "expected ')' to close '('", 1, 11),
        ("wg: foo", "unknown name 'foo'", 1, 5),
        ("r: 1", "'r' is a context variable", 1, 1),
        ("foo: 1", "expected a statement", 1, 1),
        ("wg 1", "expected ':' after the field 'wg'", 1, 4),
        ("wg: 1 kl: 2", "expected ';' or a newline", 1, 7),
        ("wg: 1 < 2 < 3", "comparisons do not chain", 1, 11),
        ("wg: 1 & 2", "did you mean '&&'", 1, 7),
        ("wg: 1 = 2", "did you mean '=='", 1, 7),
        ("wg: $", "unexpected character '$'", 1, 5),
        ('wg: "abc', "unterminated string", 1, 5),
        ("wg: 12abc", "malformed number", 1, 5),
        ("wg: 1e999", "out of range", 1, 5),
        ("wg: sel(1, 2)", "sel() takes 3 arguments, got 2", 1, 5),
        ("wg: log2()", "log2() takes 1 argument, got 0", 1, 5),
        ("wg: pow(1, 2, 3)", "pow() takes 2 arguments, got 3", 1, 5),
        ("wg: log2 5", "expected '(' after the function name 'log2'", 1, 10),
        ("wg: soft(mk, 1, 1, true)", "soft(...) is a statement", 1, 5),
        ("soft(foo, 1, 1, true)", "expected a field name", 1, 6),
        ("soft(mk, 1, 1)", "expected ',' after the weight", 1, 14),
        ("soft(mk, 1, 1, true", "expected ')' to close soft", 1, 20),
        ("wg: 1\n\n  kl: 2 +", "expected an expression", 3, 10),
        ("wg: " + "(" * 60 + "1" + ")" * 60, "nested deeper than", 1, 4 + 49),
        ("wg: " + "-" * 60 + "1", "nested deeper than", 1, 4 + 49),
        ("wg: " + " + ".join(["1"] * 300), "taller than 256", 1, 4 + 256 * 4 - 1),
    ],
)
def test_parse_errors_have_position_and_caret(src, message, line, col):
    with pytest.raises(SpiralKError) as info:
        parse(src, filename="prog.kdsl")
    err = info.value
    assert message in err.message
    assert (err.line, err.column) == (line, col)
    assert "^" in err.excerpt
    # The caret sits under the reported column.
    text_line, caret_line = err.excerpt.splitlines()
    gutter = text_line.index("|") + 2
    assert caret_line.index("^") - gutter == col - 1
    assert str(err).startswith(f"prog.kdsl:{line}:{col}: ")
    assert isinstance(err, ValueError)


@pytest.mark.parametrize(
    ("src", "ctx", "message", "expression"),
    [
        ("wg: c / (k - k)", {}, "division by zero", "c / (k - k)"),
        ("wg: c % 0", {}, "remainder by zero", "c % 0"),
        ("wg: log2(k - 10)", {}, "log2 of non-positive value 0", "log2(k - 10)"),
        ("wg: sqrt(-c)", {}, "sqrt of negative value -1000", "sqrt(-c)"),
        ("wg: pow(-8, 0.5)", {}, "is not a finite real", "pow(-8, 0.5)"),
        ("wg: pow(10, 400)", {}, "is not a finite real", "pow(10, 400)"),
        ("wg: 1e300 * 1e300", {}, "non-finite result", "1e300 * 1e300"),
        ("wg: 1e308 + 1e308", {}, "non-finite result", "1e308 + 1e308"),
        ("wg: clamp(1, 5, 2)", {}, "clamp bounds reversed", "clamp(1, 5, 2)"),
        ("wg: tile + 1", {}, "field 'tile' is read before it is assigned", "tile"),
        ("wg: 1.5", {}, "wg = 1.5 is not an integer", "1.5"),
        ("wg: true", {}, "wg must be a number", "true"),
        ("u2: 2", {}, "use_2ce must be true/false", "2"),
        ("wg: kind + 1", {}, 'expected a number, got string "topk"', "kind"),
        ("u2: kind == 1", {}, "cannot compare a string with a number", "kind == 1"),
        ("u2: kind < 1", {}, "expected a number", "kind"),
        ("u2: !kind", {}, "expected a condition", "kind"),
        ("soft(mk, 1, kind, true)", {}, "expected a number", "kind"),
        ("soft(mk, 1.5, 1, true)", {}, "mk = 1.5 is not an integer", "1.5"),
        ("soft(mk, 1, 1, c / 0 > 1)", {}, "division by zero", "c / 0"),
        ("wg: k", {"k": None}, "variable 'k' was not given", "k"),
    ],
)
def test_evaluation_errors_name_the_expression(src, ctx, message, expression):
    base = dict(rows=100, cols=1000, k=10, sg=True, kind="topk")
    base.update(ctx)
    with pytest.raises(SpiralKError) as info:
        parse(src, filename="SPIRAL_HEUR_K").evaluate(**base)
    err = info.value
    assert message in err.message
    assert err.expression == expression
    assert f"`{expression}`" in err.message
    assert err.filename == "SPIRAL_HEUR_K"
    assert err.line == 1 and src[err.column - 1 :].startswith(expression.split(" ")[0][:1])
    assert "^" in err.excerpt


def test_evaluation_error_position_on_later_line():
    src = "wg: 1\nkl: 2\nch:  k / (r - r)"
    with pytest.raises(SpiralKError) as info:
        parse(src).evaluate(rows=3, cols=4, k=5, sg=False)
    assert (info.value.line, info.value.column) == (3, 6)
    assert "k / (r - r)" in info.value.excerpt


@pytest.mark.parametrize(
    ("name", "value"),
    [("rows", float("nan")), ("cols", math.inf), ("k", "3"), ("rows", True), ("sg", math.nan)],
)
def test_bad_context_values(name, value):
    with pytest.raises(ValueError, match=name):
        parse("wg: 1").evaluate(**{name: value})
    with pytest.raises(ValueError, match="kind"):
        parse("wg: 1").evaluate(kind=3)


def test_render_round_trip_and_canonical_form(seed_readme_program):
    prog = parse(seed_readme_program)
    text = prog.render()
    assert parse(text) == prog
    assert parse(text).render() == text
    assert text.splitlines()[0] == "mk: sel(sg && k <= 128, 2, sel(k <= 2048, 1, 0));"
    assert "soft(tile, 1024, 0.15, log2(c) > 13 && log2(c) <= 15);" in text
    # Parentheses kept exactly where the tree needs them.
    for src in [
        "wg: 1 - (2 - 3)",
        "wg: (1 - 2) - 3",
        "wg: 2 * (3 + 4)",
        "u2: (1 < 2) == true",
        "u2: !(1 < 2)",
        "u2: a || b".replace("a", "sg").replace("b", "false"),
        "u2: sg || (false || true)",
        "wg: -(-3)",
        "wg: 1e-7 * 1e20",
        'u2: kind == "midk"',
        "u2: use_2ce",
    ]:
        src = src if not src.startswith("u2: use_2ce") else "u2: true; u2: use_2ce"
        p = parse(src)
        assert parse(p.render()) == p, src
        assert parse(p.render()).render() == p.render()
    assert parse("u2: 1").render() == "use_2ce: 1;\n"


def test_program_equality_ignores_positions_and_comments():
    assert parse("wg: 1+2 # c") == parse("\n\n   wg:1 + 2;")
    assert parse("wg: 1+2") != parse("wg: 2+1")
    assert isinstance(parse("wg: 1"), Program)
    assert parse("wg: 1; soft(mk, 1, 1, true)").assigned_fields == ("wg",)
    assert len(parse("wg: 1; soft(mk, 1, 1, true)").soft_statements) == 1


def test_parse_expression():
    assert (
        parse_expression("c > 8192 && k <= 128")
        == parse("u2: c > 8192 && k <= 128").statements[0].expr
    )
    with pytest.raises(SpiralKError, match="after the expression"):
        parse_expression("c > 1 )")
    with pytest.raises(TypeError):
        parse(b"wg: 1")


def test_error_pickles_across_processes():
    import pickle

    with pytest.raises(SpiralKError) as info:
        parse("wg: )", filename="f")
    again = pickle.loads(pickle.dumps(info.value))
    assert (again.line, again.column, again.filename, str(again)) == (
        1,
        5,
        "f",
        str(info.value),
    )


def test_import_floor_spiralk_imports_nothing_else():
    code = (
        "import sys, spiraljax.spiralk\n"
        "bad = sorted(m for m in sys.modules if (m.startswith('spiraljax.') and not "
        "m.startswith('spiraljax.spiralk')) or m.split('.')[0] in ('jax', 'numpy'))\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "true"),
        (False, "false"),
        (-3, "-3"),
        (2048, "2048"),
        (0.25, "0.25"),
        (-1e-7, "-1e-07"),
        (1e20, "1e+20"),
        ("topk", '"topk"'),
    ],
)
def test_format_value_reads_back(value, text):
    from spiraljax.spiralk import format_value

    assert format_value(value) == text
    if not isinstance(value, str):
        got = parse(f"soft(mk, 1, {text}, true)").evaluate().soft[0].weight
        assert got == float(value)


@pytest.mark.parametrize("value", [math.nan, math.inf, 'a"b', "a\nb", None, [1]])
def test_format_value_rejects(value):
    from spiraljax.spiralk import format_value

    with pytest.raises(ValueError, match="value="):
        format_value(value)


def test_soft_rule_text_parses_back():
    rule = SoftRule("use_2ce", False, -0.5, cond="c > 8192 && k <= 128")
    assert rule.text == "soft(use_2ce, false, -0.5, c > 8192 && k <= 128);"
    [again] = parse(rule.text).evaluate(cols=10000, k=1).soft
    assert (again.field, again.value, again.weight, again.cond) == (
        rule.field,
        rule.value,
        rule.weight,
        rule.cond,
    )
