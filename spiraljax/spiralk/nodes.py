"""SpiralK syntax tree and its rendering back to canonical source.

Node equality ignores source positions, so ``parse(render(p)) == p`` is a testable
round trip. Rendering uses the fewest parentheses that keep the tree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = [
    "BOOL_FIELDS",
    "COMPARISONS",
    "FIELDS",
    "FIELD_ALIASES",
    "FUNCTIONS",
    "VARIABLES",
    "Assign",
    "Binary",
    "Bool",
    "Call",
    "Name",
    "Num",
    "Soft",
    "Str",
    "Unary",
    "format_value",
    "render_expr",
    "render_statement",
]

#: Fields a program may assign (hard) or bias (soft). ``u2`` is an alias of ``use_2ce``.
FIELDS = (
    "mk",
    "mkd",
    "tile",
    "ctile",
    "use_2ce",
    "wg",
    "kl",
    "ch",
    "warps",
    "stages",
    "sample",
    "family",
)
FIELD_ALIASES = {"u2": "use_2ce"}
#: Fields whose values are booleans; all others hold integers.
BOOL_FIELDS = frozenset({"use_2ce"})
#: Context variables: rows, cols, k, subgroup/warp available, and the selection kind.
VARIABLES = ("r", "c", "k", "sg", "kind")
#: Built-in functions → (min arity, max arity or None for variadic).
FUNCTIONS = {
    "sel": (3, 3),
    "log2": (1, 1),
    "min": (1, None),
    "max": (1, None),
    "abs": (1, 1),
    "floor": (1, 1),
    "ceil": (1, 1),
    "round": (1, 1),
    "sqrt": (1, 1),
    "clamp": (3, 3),
    "pow": (2, 2),
}
COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")

_PREC = {"||": 1, "&&": 2, **dict.fromkeys(COMPARISONS, 3), "+": 4, "-": 4, "*": 5, "/": 5, "%": 5}
_UNARY_PREC = 6
_ATOM_PREC = 7


def _span():
    # Positions are not part of a node's identity: parse(render(p)) == p.
    return field(default=(0, 0), compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Num:
    value: float
    span: tuple[int, int] = _span()


@dataclass(frozen=True, slots=True)
class Bool:
    value: bool
    span: tuple[int, int] = _span()


@dataclass(frozen=True, slots=True)
class Str:
    value: str
    span: tuple[int, int] = _span()


@dataclass(frozen=True, slots=True)
class Name:
    """A context variable (``r c k sg kind``) or a field read after its assignment."""

    name: str
    span: tuple[int, int] = _span()


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # "-" or "!"
    operand: object
    span: tuple[int, int] = _span()


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    left: object
    right: object
    span: tuple[int, int] = _span()
    op_span: tuple[int, int] = _span()


@dataclass(frozen=True, slots=True)
class Call:
    func: str
    args: tuple
    span: tuple[int, int] = _span()


@dataclass(frozen=True, slots=True)
class Assign:
    """``FIELD: expr`` — a hard assignment (the last one of a field wins)."""

    field: str
    expr: object
    span: tuple[int, int] = _span()


@dataclass(frozen=True, slots=True)
class Soft:
    """``soft(FIELD, value, weight, cond)`` — a weighted hint, recorded when ``cond`` holds."""

    field: str
    value: object
    weight: object
    cond: object
    span: tuple[int, int] = _span()


def format_number(value: float) -> str:
    """Shortest text that the lexer reads back as exactly ``value`` (finite, ≥ 0)."""
    if value == int(value) and abs(value) < 1e16:
        return str(int(value))
    return repr(float(value))


def format_value(value: object) -> str:
    """SpiralK source for a Python value: bool → ``true/false``, number, or ``"string"``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"value={value!r} is not finite; SpiralK numbers are finite")
        text = format_number(abs(float(value))) if isinstance(value, float) else str(abs(value))
        return f"-{text}" if value < 0 else text
    if isinstance(value, str):
        if '"' in value or "\n" in value:
            raise ValueError(f"value={value!r}: SpiralK strings cannot hold quotes or newlines")
        return f'"{value}"'
    raise ValueError(f"value={value!r} of type {type(value).__name__} has no SpiralK form")


def _prec(node: object) -> int:
    if isinstance(node, Binary):
        return _PREC[node.op]
    if isinstance(node, Unary):
        return _UNARY_PREC
    return _ATOM_PREC


def render_expr(node: object) -> str:
    """Canonical source of an expression."""
    if isinstance(node, Num):
        return format_number(node.value)
    if isinstance(node, Bool):
        return "true" if node.value else "false"
    if isinstance(node, Str):
        return f'"{node.value}"'
    if isinstance(node, Name):
        return node.name
    if isinstance(node, Unary):
        inner = render_expr(node.operand)
        if _prec(node.operand) < _UNARY_PREC:
            inner = f"({inner})"
        return f"{node.op}{inner}"
    if isinstance(node, Binary):
        p = _PREC[node.op]
        left, right = render_expr(node.left), render_expr(node.right)
        # Left-associative operators; comparisons do not chain, so both sides need
        # parentheses when they are comparisons themselves.
        lp = _prec(node.left)
        if lp < p or (p == 3 and lp == 3):
            left = f"({left})"
        if _prec(node.right) <= p:
            right = f"({right})"
        return f"{left} {node.op} {right}"
    if isinstance(node, Call):
        return f"{node.func}({', '.join(render_expr(a) for a in node.args)})"
    raise TypeError(f"not a SpiralK expression node: {node!r}")


def render_statement(node: object) -> str:
    """Canonical source of one statement, ending in ``;``."""
    if isinstance(node, Assign):
        return f"{node.field}: {render_expr(node.expr)};"
    if isinstance(node, Soft):
        parts = (node.field, render_expr(node.value), render_expr(node.weight))
        return f"soft({', '.join(parts)}, {render_expr(node.cond)});"
    raise TypeError(f"not a SpiralK statement node: {node!r}")
