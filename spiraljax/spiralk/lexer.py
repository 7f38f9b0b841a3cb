"""SpiralK lexer: source text → tokens.

Tokens: numbers (``12``, ``0.5``, ``.5``, ``1e-3``), double-quoted strings without
escapes (``"topk"``), names, operators ``+ - * / % < <= > >= == != && || ! : ; , ( )``
and NEWLINE. ``#`` starts a comment that runs to the end of the line. A newline is a
statement separator only outside parentheses (inside them it is whitespace, so a long
``sel(...)`` may span lines, as in the seed README).
"""

from __future__ import annotations

import math
import re
from typing import NamedTuple

from .errors import error_at

__all__ = ["Token", "tokenize"]


class Token(NamedTuple):
    kind: str  # "num" | "str" | "name" | "op" | "nl" | "eof"
    value: object  # float for "num", str otherwise
    start: int  # character offsets into the source
    end: int


_TOKEN = re.compile(
    r"""
    (?P<ws>[ \t\r\f\v]+)
  | (?P<comment>\#[^\n]*)
  | (?P<nl>\n)
  | (?P<num>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<str>"[^"\n]*")
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>&&|\|\||<=|>=|==|!=|[-+*/%<>!:;,()])
    """,
    re.VERBOSE,
)


def tokenize(source: str, *, filename: str | None = None, first_line: int = 1) -> list[Token]:
    """Split ``source`` into tokens; raises ``SpiralKError`` at the first bad character."""
    if not isinstance(source, str):
        raise TypeError(f"SpiralK source must be str, got {type(source).__name__}")
    tokens: list[Token] = []
    depth = 0
    pos = 0
    n = len(source)
    match = _TOKEN.match
    while pos < n:
        m = match(source, pos)
        if m is None:
            ch = source[pos]
            if ch == '"':
                msg = "unterminated string literal (strings end on the same line)"
            elif ch in "&|=":
                msg = f"unexpected character {ch!r} (did you mean {ch * 2!r}?)"
            else:
                msg = f"unexpected character {ch!r}"
            raise error_at(source, pos, msg, filename=filename, first_line=first_line)
        kind = m.lastgroup
        end = m.end()
        if kind == "num":
            text = m.group()
            value = float(text)
            if not math.isfinite(value):
                raise error_at(
                    source,
                    pos,
                    f"number {text} is out of range",
                    end=end,
                    filename=filename,
                    first_line=first_line,
                )
            if end < n and (source[end].isalpha() or source[end] == "_"):
                raise error_at(
                    source,
                    pos,
                    f"malformed number {source[pos : end + 1]!r}",
                    end=end + 1,
                    filename=filename,
                    first_line=first_line,
                )
            tokens.append(Token("num", value, pos, end))
        elif kind == "str":
            tokens.append(Token("str", m.group()[1:-1], pos, end))
        elif kind == "name":
            tokens.append(Token("name", m.group(), pos, end))
        elif kind == "op":
            op = m.group()
            if op == "(":
                depth += 1
            elif op == ")":
                depth = max(0, depth - 1)
            tokens.append(Token("op", op, pos, end))
        elif kind == "nl":
            if depth == 0:
                tokens.append(Token("nl", "\n", pos, end))
        # whitespace and comments produce nothing
        pos = end
    tokens.append(Token("eof", "", n, n))
    return tokens
