"""Errors of the SpiralK language: every one carries a position and a caret excerpt."""

from __future__ import annotations

__all__ = ["SpiralKError", "SpiralKWarning", "excerpt", "line_col"]


def line_col(source: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of character ``offset`` in ``source``."""
    offset = max(0, min(offset, len(source)))
    line = source.count("\n", 0, offset) + 1
    start = source.rfind("\n", 0, offset) + 1
    return line, offset - start + 1


def excerpt(source: str, start: int, end: int | None = None, *, first_line: int = 1) -> str:
    """The source line holding ``start`` with a caret under it (tildes up to ``end``).

    ``first_line`` is the number of the first line of ``source`` (for text cut out of a
    larger file).
    """
    start = max(0, min(start, len(source)))
    line_start = source.rfind("\n", 0, start) + 1
    line_end = source.find("\n", start)
    if line_end < 0:
        line_end = len(source)
    text = source[line_start:line_end].replace("\t", " ")
    col = start - line_start
    stop = line_end if end is None else max(start + 1, min(end, line_end))
    width = max(1, stop - start) if end is not None else 1
    number = source.count("\n", 0, start) + first_line
    gutter = f"{number:>4} | "
    return f"{gutter}{text}\n{' ' * len(gutter)}{' ' * col}^{'~' * (width - 1)}"


class SpiralKError(ValueError):
    """A malformed or failing SpiralK program.

    Attributes:
      message: what went wrong (names the offending expression for evaluation errors).
      line, column: 1-based position in the program text.
      excerpt: the source line with a caret under the position.
      filename: where the program came from (``SPIRAL_HEUR_K``, a heur file path, …).
      expression: source text of the failing expression, when there is one.
    """

    def __init__(
        self,
        message: str,
        *,
        line: int,
        column: int,
        excerpt: str = "",
        filename: str | None = None,
        expression: str | None = None,
    ) -> None:
        self.message = message
        self.line = int(line)
        self.column = int(column)
        self.excerpt = excerpt
        self.filename = filename
        self.expression = expression
        super().__init__(self._render())

    def _render(self) -> str:
        where = f"{self.filename or '<spiralk>'}:{self.line}:{self.column}"
        text = f"{where}: {self.message}"
        if self.excerpt:
            text += "\n" + self.excerpt
        return text

    def with_filename(self, filename: str) -> SpiralKError:
        """The same error, attributed to ``filename``."""
        return SpiralKError(
            self.message,
            line=self.line,
            column=self.column,
            excerpt=self.excerpt,
            filename=filename,
            expression=self.expression,
        )

    def __reduce__(self):  # picklable across processes
        return (
            _rebuild,
            (self.message, self.line, self.column, self.excerpt, self.filename, self.expression),
        )


def _rebuild(message, line, column, excerpt_, filename, expression) -> SpiralKError:
    return SpiralKError(
        message,
        line=line,
        column=column,
        excerpt=excerpt_,
        filename=filename,
        expression=expression,
    )


class SpiralKWarning(UserWarning):
    """Emitted (loudly) instead of raising when ``SPIRAL_HEUR_ON_ERROR=warn``."""


def error_at(
    source: str,
    start: int,
    message: str,
    *,
    end: int | None = None,
    filename: str | None = None,
    first_line: int = 1,
    expression: str | None = None,
) -> SpiralKError:
    """Build a ``SpiralKError`` at character ``start`` of ``source``."""
    line, col = line_col(source, start)
    return SpiralKError(
        message,
        line=line + first_line - 1,
        column=col,
        excerpt=excerpt(source, start, end, first_line=first_line),
        filename=filename,
        expression=expression,
    )
