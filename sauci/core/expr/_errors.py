"""The one error of expressions, and the limits that keep hostile input cheap.

The limits are GitHub's where GitHub states one (an expression of at most
21,000 characters, parentheses, calls and ``!`` nested at most 50 deep) and
SauCI's own elsewhere (how deep a syntax tree may get through chains of
operators, how long a string a function may build, how much JSON ``fromJSON``
reads), so that an expression in a pushed file costs bounded time and memory.
"""

from __future__ import annotations

from sauci.exceptions import PipelineError, Problem

__all__ = [
    "MAX_DEPTH",
    "MAX_JSON_CHARS",
    "MAX_LENGTH",
    "MAX_TREE_DEPTH",
    "MAX_VALUE_CHARS",
    "MAX_WORK",
    "ExpressionError",
]

MAX_LENGTH = 21_000  # characters of one expression (GitHub's limit)
MAX_DEPTH = 50  # nesting of ( ), [ ], calls and ! (GitHub's limit)
MAX_TREE_DEPTH = 100  # levels of the syntax tree, chains of == or . included
MAX_VALUE_CHARS = 1 << 20  # the longest string format/join/toJSON/interpolate builds
MAX_JSON_CHARS = 1 << 20  # the longest text fromJSON reads
MAX_WORK = 500_000  # units of work of one evaluation (see _evaluate.Budget)


class ExpressionError(PipelineError):
    """An expression that cannot be parsed or evaluated, at ``line``:``col``.

    ``line`` and ``col`` are 1-based positions in the file the expression was
    read from (when the caller said where it starts), 0 when unknown.
    :meth:`problem` gives the :class:`~sauci.exceptions.Problem` to report
    with the file's name.
    """

    def __init__(self, message: str, *, line: int = 0, col: int = 0, file: str = "expression"):
        self.message = message
        self.line = line
        self.col = col
        self.file = file
        super().__init__([Problem(file=file, line=line, column=col, message=message)])

    def __reduce__(self) -> tuple[object, ...]:  # picklable with its position
        return (_rebuild, (self.message, self.line, self.col, self.file))

    def problem(self, file: str) -> Problem:
        """This error as a problem of ``file``."""
        return Problem(file=file, line=self.line, column=self.col, message=self.message)


def _rebuild(message: str, line: int, col: int, file: str) -> ExpressionError:
    return ExpressionError(message, line=line, col=col, file=file)
