"""SpiralK parser: tokens → ``Program``.

Grammar (``;`` or a newline outside parentheses ends a statement; empty statements are
allowed)::

    program   := { statement (";" | NEWLINE | EOF) }
    statement := FIELD ":" expr
               | "soft" "(" FIELD "," expr "," expr "," expr ")"
    expr      := and { "||" and }
    and       := cmp { "&&" cmp }
    cmp       := add [ ("=="|"!="|"<"|"<="|">"|">=") add ]     # comparisons do not chain
    add       := mul { ("+"|"-") mul }
    mul       := unary { ("*"|"/"|"%") unary }
    unary     := ("-"|"!") unary | atom
    atom      := NUMBER | STRING | "true" | "false" | VARIABLE | FIELD
               | FUNCTION "(" expr { "," expr } ")" | "(" expr ")"

Names are checked here (an unknown name is a parse error with its position); arities of
the built-in functions too. Nesting is bounded so no input can exhaust the Python stack.
"""

from __future__ import annotations

from .errors import SpiralKError, error_at
from .lexer import Token, tokenize
from .nodes import (
    COMPARISONS,
    FIELD_ALIASES,
    FIELDS,
    FUNCTIONS,
    VARIABLES,
    Assign,
    Binary,
    Bool,
    Call,
    Name,
    Num,
    Soft,
    Str,
    Unary,
)
from .program import Program

__all__ = ["MAX_HEIGHT", "MAX_NESTING", "parse", "parse_expression"]

#: Deepest nesting of parentheses, calls and unary operators.
MAX_NESTING = 48
#: Tallest expression tree (long operator chains count too).
MAX_HEIGHT = 256

_FIELD_NAMES = frozenset(FIELDS) | frozenset(FIELD_ALIASES)


def _describe(tok: Token) -> str:
    if tok.kind == "eof":
        return "end of input"
    if tok.kind == "nl":
        return "a newline"
    if tok.kind == "num":
        return f"number {tok.value:g}"
    if tok.kind == "str":
        return f'string "{tok.value}"'
    if tok.kind == "name":
        return f"name {tok.value!r}"
    return f"{tok.value!r}"


class _Parser:
    def __init__(self, source: str, filename: str | None, first_line: int) -> None:
        self.source = source
        self.filename = filename
        self.first_line = first_line
        self.toks = tokenize(source, filename=filename, first_line=first_line)
        self.i = 0
        self.nesting = 0

    # -- helpers -------------------------------------------------------------------
    def error(self, start: int, message: str, end: int | None = None) -> SpiralKError:
        return error_at(
            self.source,
            start,
            message,
            end=end,
            filename=self.filename,
            first_line=self.first_line,
        )

    def peek(self) -> Token:
        return self.toks[self.i]

    def advance(self) -> Token:
        tok = self.toks[self.i]
        if tok.kind != "eof":
            self.i += 1
        return tok

    def is_op(self, op: str) -> bool:
        tok = self.toks[self.i]
        return tok.kind == "op" and tok.value == op

    def expect(self, op: str, context: str) -> Token:
        tok = self.peek()
        if tok.kind == "op" and tok.value == op:
            return self.advance()
        raise self.error(tok.start, f"expected {op!r} {context}, found {_describe(tok)}", tok.end)

    def enter(self, tok: Token) -> None:
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise self.error(tok.start, f"expression nested deeper than {MAX_NESTING} levels")

    def field_name(self, context: str) -> tuple[str, Token]:
        tok = self.peek()
        if tok.kind == "name" and tok.value in _FIELD_NAMES:
            self.advance()
            return FIELD_ALIASES.get(tok.value, tok.value), tok
        raise self.error(
            tok.start,
            f"expected a field name {context} ({', '.join(FIELDS)} or u2), found {_describe(tok)}",
            tok.end,
        )

    # -- statements ----------------------------------------------------------------
    def program(self) -> tuple:
        statements = []
        while True:
            tok = self.peek()
            if tok.kind == "eof":
                return tuple(statements)
            if tok.kind == "nl" or (tok.kind == "op" and tok.value == ";"):
                self.advance()
                continue
            statements.append(self.statement())
            tok = self.peek()
            if tok.kind in ("nl", "eof") or (tok.kind == "op" and tok.value == ";"):
                continue
            raise self.error(
                tok.start,
                f"expected ';' or a newline after the statement, found {_describe(tok)}",
                tok.end,
            )

    def statement(self) -> object:
        tok = self.peek()
        if tok.kind == "name" and tok.value == "soft":
            self.advance()
            self.expect("(", "after 'soft'")
            field, _ = self.field_name("as the first argument of soft(...)")
            self.expect(",", "after the field of soft(...)")
            value = self.expr()
            self.expect(",", "after the value of soft(...)")
            weight = self.expr()
            self.expect(",", "after the weight of soft(...)")
            cond = self.expr()
            close = self.expect(")", "to close soft(field, value, weight, cond)")
            return Soft(field, value, weight, cond, span=(tok.start, close.end))
        if tok.kind == "name" and tok.value in _FIELD_NAMES:
            field, _ = self.field_name("")
            self.expect(":", f"after the field {tok.value!r}")
            expr = self.expr()
            return Assign(field, expr, span=(tok.start, expr.span[1]))
        if tok.kind == "name" and tok.value in VARIABLES:
            raise self.error(
                tok.start,
                f"{tok.value!r} is a context variable and cannot be assigned; "
                f"fields are {', '.join(FIELDS)} (u2 = use_2ce)",
                tok.end,
            )
        raise self.error(
            tok.start,
            f"expected a statement ('FIELD: expr' or 'soft(FIELD, value, weight, cond)'), "
            f"found {_describe(tok)}",
            tok.end,
        )

    # -- expressions -----------------------------------------------------------------
    def expr(self) -> object:
        node, _ = self._or()
        return node

    def _chain(self, ops: tuple[str, ...], sub) -> tuple[object, int]:
        left, height = sub()
        while True:
            tok = self.peek()
            if not (tok.kind == "op" and tok.value in ops):
                return left, height
            self.advance()
            right, rheight = sub()
            height = max(height, rheight) + 1
            if height > MAX_HEIGHT:
                raise self.error(tok.start, f"expression taller than {MAX_HEIGHT} operators")
            left = Binary(
                tok.value,
                left,
                right,
                span=(left.span[0], right.span[1]),
                op_span=(tok.start, tok.end),
            )

    def _or(self) -> tuple[object, int]:
        return self._chain(("||",), self._and)

    def _and(self) -> tuple[object, int]:
        return self._chain(("&&",), self._cmp)

    def _cmp(self) -> tuple[object, int]:
        left, height = self._add()
        tok = self.peek()
        if tok.kind == "op" and tok.value in COMPARISONS:
            self.advance()
            right, rheight = self._add()
            nxt = self.peek()
            if nxt.kind == "op" and nxt.value in COMPARISONS:
                raise self.error(
                    nxt.start,
                    "comparisons do not chain; write 'a < b && b < c'",
                    nxt.end,
                )
            height = max(height, rheight) + 1
            if height > MAX_HEIGHT:
                raise self.error(tok.start, f"expression taller than {MAX_HEIGHT} operators")
            left = Binary(
                tok.value,
                left,
                right,
                span=(left.span[0], right.span[1]),
                op_span=(tok.start, tok.end),
            )
        return left, height

    def _add(self) -> tuple[object, int]:
        return self._chain(("+", "-"), self._mul)

    def _mul(self) -> tuple[object, int]:
        return self._chain(("*", "/", "%"), self._unary)

    def _unary(self) -> tuple[object, int]:
        tok = self.peek()
        if tok.kind == "op" and tok.value in ("-", "!"):
            self.advance()
            self.enter(tok)
            operand, height = self._unary()
            self.nesting -= 1
            return Unary(tok.value, operand, span=(tok.start, operand.span[1])), height + 1
        return self._atom()

    def _atom(self) -> tuple[object, int]:
        tok = self.peek()
        if tok.kind == "num":
            self.advance()
            return Num(tok.value, span=(tok.start, tok.end)), 1
        if tok.kind == "str":
            self.advance()
            return Str(tok.value, span=(tok.start, tok.end)), 1
        if tok.kind == "op" and tok.value == "(":
            self.advance()
            self.enter(tok)
            node, height = self._or()
            close = self.expect(")", "to close '('")
            self.nesting -= 1
            # Keep the inner node (parentheses are not part of the tree) but widen its
            # span so error excerpts underline what the user wrote.
            return _with_span(node, (tok.start, close.end)), height
        if tok.kind == "name":
            name = tok.value
            if name in ("true", "false"):
                self.advance()
                return Bool(name == "true", span=(tok.start, tok.end)), 1
            if name in FUNCTIONS:
                return self._call()
            if name in VARIABLES:
                self.advance()
                return Name(name, span=(tok.start, tok.end)), 1
            if name in _FIELD_NAMES:
                self.advance()
                return Name(FIELD_ALIASES.get(name, name), span=(tok.start, tok.end)), 1
            if name == "soft":
                raise self.error(tok.start, "soft(...) is a statement, not an expression", tok.end)
            raise self.error(
                tok.start,
                f"unknown name {name!r} (variables: {', '.join(VARIABLES)}; fields: "
                f"{', '.join(FIELDS)}, u2; functions: {', '.join(FUNCTIONS)})",
                tok.end,
            )
        raise self.error(tok.start, f"expected an expression, found {_describe(tok)}", tok.end)

    def _call(self) -> tuple[object, int]:
        tok = self.advance()
        name = tok.value
        self.expect("(", f"after the function name {name!r}")
        self.enter(tok)
        args, height = [], 0
        if not self.is_op(")"):
            while True:
                arg, h = self._or()
                args.append(arg)
                height = max(height, h)
                if self.is_op(","):
                    self.advance()
                    continue
                break
        close = self.expect(")", f"to close {name}(...)")
        self.nesting -= 1
        lo, hi = FUNCTIONS[name]
        if len(args) < lo or (hi is not None and len(args) > hi):
            want = f"{lo}" if lo == hi else (f"at least {lo}" if hi is None else f"{lo}..{hi}")
            raise self.error(
                tok.start,
                f"{name}() takes {want} argument{'s' if want != '1' else ''}, got {len(args)}",
                close.end,
            )
        return Call(name, tuple(args), span=(tok.start, close.end)), height + 1


def _with_span(node: object, span: tuple[int, int]) -> object:
    if isinstance(node, Binary):
        return Binary(node.op, node.left, node.right, span=span, op_span=node.op_span)
    return type(node)(*(getattr(node, f) for f in node.__dataclass_fields__ if f != "span"), span)


def parse(source: str, *, filename: str | None = None, first_line: int = 1) -> Program:
    """Parse a SpiralK program.

    Args:
      source: program text.
      filename: where it came from, used in error messages (e.g. ``"SPIRAL_HEUR_K"``).
      first_line: number of the first line of ``source`` inside ``filename``.

    Returns:
      A ``Program``; ``program.render()`` gives canonical source that parses back
      to an equal program.

    Raises:
      SpiralKError: with ``line``, ``column`` and a caret ``excerpt``.
    """
    if not isinstance(source, str):
        raise TypeError(f"source must be str, got {type(source).__name__}")
    parser = _Parser(source, filename, first_line)
    statements = parser.program()
    return Program(statements, source=source, filename=filename, first_line=first_line)


def parse_expression(source: str, *, filename: str | None = None) -> object:
    """Parse a single expression (e.g. a rule condition); raises ``SpiralKError``."""
    parser = _Parser(source, filename, 1)
    node = parser.expr()
    tok = parser.peek()
    if tok.kind != "eof":
        raise parser.error(tok.start, f"unexpected {_describe(tok)} after the expression", tok.end)
    return node
