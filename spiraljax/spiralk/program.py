"""SpiralK programs and their evaluation.

Values are finite floats, booleans and strings (``kind``). Booleans read as 1/0 in
arithmetic; a number is true when it is ≠ 0; strings only compare with ``==``/``!=``.
``&&``, ``||`` and ``sel`` short-circuit, so ``sel(false, sqrt(-1), 7)`` is 7. ``/`` is
float division, ``%`` the remainder with the sign of the dividend (C ``fmod``), ``round``
rounds half away from zero. Any non-finite intermediate is an error naming the
expression. Integer fields must evaluate to integral numbers; ``use_2ce`` to a boolean
(or 0/1).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

from .errors import error_at
from .nodes import (
    BOOL_FIELDS,
    FIELDS,
    Assign,
    Binary,
    Bool,
    Call,
    Name,
    Num,
    Soft,
    Str,
    Unary,
    format_value,
    render_expr,
    render_statement,
)

__all__ = ["Out", "Program", "SoftRule"]

FieldValue = int | bool


@dataclass(frozen=True)
class SoftRule:
    """A soft rule whose condition held: add ``weight`` to candidates with ``field == value``.

    ``cond`` is the condition's canonical source and ``origin`` where the rule was written
    (``"SPIRAL_HEUR_K:12"``, ``"/home/me/.spiraljax/heur.kdsl:40"``).
    """

    field: str
    value: FieldValue
    weight: float
    cond: str = "true"
    origin: str = "<spiralk>"

    @property
    def text(self) -> str:
        """The rule as a SpiralK statement."""
        value, weight = format_value(self.value), format_value(float(self.weight))
        return f"soft({self.field}, {value}, {weight}, {self.cond});"


@dataclass(frozen=True)
class Out:
    """Result of ``Program.evaluate``.

    ``hard``: field → value of the hard assignments (the last assignment of a field
    wins). ``soft``: the soft rules whose condition held, in program order.
    """

    hard: dict[str, FieldValue]
    soft: list[SoftRule]


class _Eval:
    __slots__ = ("assigned", "ctx", "program")

    def __init__(self, program: Program, ctx: dict[str, object]) -> None:
        self.program = program
        self.ctx = ctx
        self.assigned: dict[str, FieldValue] = {}

    def fail(self, node: object, message: str, *, at: tuple[int, int] | None = None):
        src = self.program.source
        start, end = node.span
        text = src[start:end]
        where = at or node.span
        return error_at(
            src,
            where[0],
            f"{message} in `{text}`" if text else message,
            end=where[1],
            filename=self.program.filename,
            first_line=self.program.first_line,
            expression=text,
        )

    def number(self, value: object, node: object) -> float:
        if isinstance(value, bool):
            return 1.0 if value else 0.0
        if isinstance(value, float):
            return value
        raise self.fail(node, f'expected a number, got string "{value}"')

    def truth(self, value: object, node: object) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, float):
            return value != 0.0
        raise self.fail(node, f'expected a condition, got string "{value}"')

    def finite(self, value: float, node: object) -> float:
        if not math.isfinite(value):
            raise self.fail(node, f"non-finite result {value}")
        return value

    def eval(self, node: object) -> object:
        if isinstance(node, Num | Bool | Str):
            return node.value
        if isinstance(node, Name):
            name = node.name
            if name in FIELDS:
                if name not in self.assigned:
                    raise self.fail(node, f"field {name!r} is read before it is assigned")
                value = self.assigned[name]
                return value if isinstance(value, bool) else float(value)
            value = self.ctx.get(name)
            if value is None:
                raise self.fail(node, f"variable {name!r} was not given to evaluate()")
            return value
        if isinstance(node, Unary):
            value = self.eval(node.operand)
            if node.op == "!":
                return not self.truth(value, node.operand)
            return -self.number(value, node.operand)
        if isinstance(node, Binary):
            return self.binary(node)
        if isinstance(node, Call):
            return self.call(node)
        raise TypeError(f"not a SpiralK node: {node!r}")

    def binary(self, node: Binary) -> object:
        op = node.op
        if op == "&&":
            return self.truth(self.eval(node.left), node.left) and self.truth(
                self.eval(node.right), node.right
            )
        if op == "||":
            return self.truth(self.eval(node.left), node.left) or self.truth(
                self.eval(node.right), node.right
            )
        left, right = self.eval(node.left), self.eval(node.right)
        if op in ("==", "!="):
            if isinstance(left, str) or isinstance(right, str):
                if not (isinstance(left, str) and isinstance(right, str)):
                    raise self.fail(node, "cannot compare a string with a number")
                equal = left == right
            else:
                equal = self.number(left, node.left) == self.number(right, node.right)
            return equal if op == "==" else not equal
        a, b = self.number(left, node.left), self.number(right, node.right)
        if op == "<":
            return a < b
        if op == "<=":
            return a <= b
        if op == ">":
            return a > b
        if op == ">=":
            return a >= b
        if op == "+":
            return self.finite(a + b, node)
        if op == "-":
            return self.finite(a - b, node)
        if op == "*":
            return self.finite(a * b, node)
        if b == 0.0:
            raise self.fail(node, "division by zero" if op == "/" else "remainder by zero")
        if op == "/":
            return self.finite(a / b, node)
        return self.finite(math.fmod(a, b), node)

    def call(self, node: Call) -> object:
        name, args = node.func, node.args
        if name == "sel":
            cond = self.truth(self.eval(args[0]), args[0])
            chosen = args[1] if cond else args[2]
            return self.eval(chosen)
        xs = [self.number(self.eval(a), a) for a in args]
        x = xs[0]
        if name == "log2":
            if x <= 0.0:
                raise self.fail(node, f"log2 of non-positive value {x:g}")
            return math.log2(x)
        if name == "sqrt":
            if x < 0.0:
                raise self.fail(node, f"sqrt of negative value {x:g}")
            return math.sqrt(x)
        if name == "abs":
            return abs(x)
        if name == "floor":
            return float(math.floor(x))
        if name == "ceil":
            return float(math.ceil(x))
        if name == "round":
            return math.copysign(math.floor(abs(x) + 0.5), x)
        if name == "min":
            return min(xs)
        if name == "max":
            return max(xs)
        if name == "clamp":
            lo, hi = xs[1], xs[2]
            if lo > hi:
                raise self.fail(node, f"clamp bounds reversed (lo={lo:g} > hi={hi:g})")
            return min(max(x, lo), hi)
        if name == "pow":
            try:
                result = math.pow(x, xs[1])
            except (OverflowError, ValueError):
                raise self.fail(node, f"pow({x:g}, {xs[1]:g}) is not a finite real") from None
            return self.finite(result, node)
        raise TypeError(f"unknown function {name!r}")  # the parser rejects these

    def field_value(self, field_name: str, value: object, node: object) -> FieldValue:
        if field_name in BOOL_FIELDS:
            if isinstance(value, bool):
                return value
            if isinstance(value, float) and value in (0.0, 1.0):
                return value == 1.0
            raise self.fail(node, f"{field_name} must be true/false (or 0/1), got {value!r}")
        if isinstance(value, bool) or isinstance(value, str):
            raise self.fail(node, f"{field_name} must be a number, got {value!r}")
        if value != math.floor(value):
            raise self.fail(node, f"{field_name} = {value:g} is not an integer")
        return int(value)

    def run(self) -> Out:
        soft: list[SoftRule] = []
        program = self.program
        for stmt in program.statements:
            if isinstance(stmt, Assign):
                value = self.eval(stmt.expr)
                self.assigned[stmt.field] = self.field_value(stmt.field, value, stmt.expr)
            else:
                if not self.truth(self.eval(stmt.cond), stmt.cond):
                    continue
                value = self.field_value(stmt.field, self.eval(stmt.value), stmt.value)
                weight = self.number(self.eval(stmt.weight), stmt.weight)
                line = program.source.count("\n", 0, stmt.span[0]) + program.first_line
                soft.append(
                    SoftRule(
                        stmt.field,
                        value,
                        weight,
                        cond=render_expr(stmt.cond),
                        origin=f"{program.filename or '<spiralk>'}:{line}",
                    )
                )
        return Out(hard=dict(self.assigned), soft=soft)


def _context_number(name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}={value!r} must be a real number")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name}={value!r} must be finite")
    return value


@dataclass(frozen=True)
class Program:
    """A parsed SpiralK program (see ``spiraljax.spiralk.parse``).

    Equality compares statements only (not source text or positions), so
    ``parse(p.render()) == p``.
    """

    statements: tuple
    source: str = field(default="", compare=False, repr=False)
    filename: str | None = field(default=None, compare=False)
    first_line: int = field(default=1, compare=False)

    def evaluate(
        self,
        *,
        rows: float | None = None,
        cols: float | None = None,
        k: float | None = None,
        sg: bool | float | None = None,
        kind: str | None = None,
    ) -> Out:
        """Run the program for one problem.

        Args:
          rows, cols, k: the variables ``r``, ``c``, ``k``.
          sg: ``sg`` — subgroup / warp-level primitives available (bool, or a number).
          kind: ``kind`` — e.g. ``"topk"``; compare with ``kind == "topk"``.
          A variable left as ``None`` is an error only if the program reads it.

        Returns:
          ``Out`` with the hard assignments and the soft rules whose condition held.

        Raises:
          SpiralKError: naming the failing expression (division by zero, non-finite
            value, field read before assignment, missing variable, wrong type).
          ValueError: a non-finite or non-numeric context value.
        """
        ctx: dict[str, object] = {
            "r": _context_number("rows", rows),
            "c": _context_number("cols", cols),
            "k": _context_number("k", k),
        }
        if sg is None or isinstance(sg, bool):
            ctx["sg"] = sg
        else:
            ctx["sg"] = _context_number("sg", sg)
        if kind is not None and not isinstance(kind, str):
            raise ValueError(f"kind={kind!r} must be a string such as 'topk'")
        if isinstance(kind, str) and ('"' in kind or "\n" in kind):
            raise ValueError(f"kind={kind!r} must not contain quotes or newlines")
        ctx["kind"] = kind
        return _Eval(self, ctx).run()

    def render(self) -> str:
        """Canonical source: one statement per line."""
        return "".join(render_statement(s) + "\n" for s in self.statements)

    def __str__(self) -> str:
        return self.render()

    @property
    def assigned_fields(self) -> tuple[str, ...]:
        """Fields with a hard assignment, in first-assignment order."""
        return tuple(dict.fromkeys(s.field for s in self.statements if isinstance(s, Assign)))

    @property
    def soft_statements(self) -> tuple[Soft, ...]:
        return tuple(s for s in self.statements if isinstance(s, Soft))
