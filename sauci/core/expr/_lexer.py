"""Tokens of an expression, each with its offset in the source text.

The lexical rules are GitHub's (actions/languageservices): a number starts
with a digit, a sign or a dot that does not follow a name, and runs to the
next boundary character; a name is a letter or ``_`` then letters, digits,
``_`` or ``-``; strings are in single quotes, ``''`` is a quote; ``true``,
``false``, ``null``, ``NaN`` and ``Infinity`` are literals.
"""

from __future__ import annotations

import enum

import attrs

from sauci.core.expr._errors import MAX_LENGTH, ExpressionError
from sauci.core.expr._values import normal_number, parse_number

__all__ = ["Kind", "Source", "Token", "tokenize"]


class Kind(enum.Enum):
    LPAREN = "("
    RPAREN = ")"
    LBRACKET = "["
    RBRACKET = "]"
    COMMA = ","
    DOT = "."
    NOT = "!"
    NE = "!="
    EQ = "=="
    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="
    AND = "&&"
    OR = "||"
    STAR = "*"
    NUMBER = "number"
    STRING = "string"
    NAME = "name"
    LITERAL = "literal"  # true, false, null
    END = "end of expression"


@attrs.frozen
class Token:
    kind: Kind
    text: str
    offset: int
    value: object = None


@attrs.frozen
class Source:
    """An expression's text and where its first character is in the file."""

    text: str
    line: int = 1
    col: int = 1

    def position(self, offset: int) -> tuple[int, int]:
        """The file line and column of the character at ``offset``."""
        newlines = self.text.count("\n", 0, offset)
        if not newlines:
            return self.line, self.col + offset
        return self.line + newlines, offset - self.text.rindex("\n", 0, offset)

    def error(self, message: str, offset: int) -> ExpressionError:
        line, col = self.position(offset)
        return ExpressionError(message, line=line, col=col)


_BOUNDARY = frozenset("()[],.!<>=&|")
_TWO = {"!=": Kind.NE, "==": Kind.EQ, ">=": Kind.GE, "<=": Kind.LE, "&&": Kind.AND, "||": Kind.OR}
# One-character tokens, tried after _TWO (so that "!=" is not "!" then "=").
_ONE = {
    "(": Kind.LPAREN,
    ")": Kind.RPAREN,
    "[": Kind.LBRACKET,
    "]": Kind.RBRACKET,
    ",": Kind.COMMA,
    "*": Kind.STAR,
    "!": Kind.NOT,
    ">": Kind.GT,
    "<": Kind.LT,
}
_KEYWORDS: dict[str, tuple[Kind, object]] = {
    "true": (Kind.LITERAL, True),
    "false": (Kind.LITERAL, False),
    "null": (Kind.LITERAL, None),
    "NaN": (Kind.NUMBER, float("nan")),
    "Infinity": (Kind.NUMBER, float("inf")),
}
_AFTER_VALUE = frozenset({Kind.NAME, Kind.RBRACKET, Kind.RPAREN, Kind.STAR})


def _is_name(word: str) -> bool:
    first = word[:1]
    if not (first.isascii() and (first.isalpha() or first == "_")):
        return False
    return all(c.isascii() and (c.isalnum() or c in "_-") for c in word[1:])


def tokenize(source: Source) -> list[Token]:
    """The tokens of ``source.text``, ending with an END token."""
    text = source.text
    if len(text) > MAX_LENGTH:
        raise source.error(
            f"the expression is {len(text)} characters long; the limit is {MAX_LENGTH}", 0
        )
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        start = i
        if c.isspace():
            i += 1
            continue
        pair = text[i : i + 2]
        if pair in _TWO:
            tokens.append(Token(_TWO[pair], pair, start))
            i += 2
            continue
        if c in _ONE:
            tokens.append(Token(_ONE[c], c, start))
            i += 1
            continue
        if c == "'":
            i = _string(source, i, tokens)
            continue
        previous = tokens[-1].kind if tokens else None
        if c == "." and previous in _AFTER_VALUE:
            tokens.append(Token(Kind.DOT, c, start))
            i += 1
            continue
        # a number or a name: up to the next boundary (a number may hold dots)
        number = c in "0123456789+-."
        i += 1
        while (
            i < n
            and not text[i].isspace()
            and (text[i] not in _BOUNDARY or (number and text[i] == "."))
        ):
            i += 1
        word = text[start:i]
        if c in "=&|":
            raise source.error(f"unexpected symbol {word!r} (did you mean {c * 2!r}?)", start)
        if number:
            value = parse_number(word)
            if value != value:  # NaN: not a number literal
                raise source.error(f"unexpected symbol {word!r}: not a number", start)
            tokens.append(Token(Kind.NUMBER, word, start, normal_number(value)))
        elif previous is not Kind.DOT and word in _KEYWORDS:
            kind, constant = _KEYWORDS[word]
            tokens.append(Token(kind, word, start, constant))
        elif _is_name(word):
            tokens.append(Token(Kind.NAME, word, start, word))
        else:
            hint = " (strings are written in single quotes)" if '"' in word else ""
            raise source.error(f"unexpected symbol {word!r}{hint}", start)
    tokens.append(Token(Kind.END, "", n))
    return tokens


def _string(source: Source, start: int, tokens: list[Token]) -> int:
    text = source.text
    i = start + 1
    while True:
        j = text.find("'", i)
        if j < 0:
            raise source.error("unterminated string: a ' opens it and none closes it", start)
        if text.startswith("''", j):
            i = j + 2
            continue
        value = text[start + 1 : j].replace("''", "'")
        tokens.append(Token(Kind.STRING, text[start : j + 1], start, value))
        return j + 1


def closing(text: str, start: int) -> int:
    """Where the ``}}`` that ends an expression starting at ``start`` is (-1 if none):
    the first ``}}`` outside a quoted string. One pass over the text."""
    i = start
    brace = text.find("}}", i)
    while brace >= 0:
        quote = text.find("'", i, brace)
        if quote < 0:
            return brace
        end = text.find("'", quote + 1)  # '' inside a string closes and reopens it
        if end < 0:
            return -1
        i = end + 1
        if brace < i:  # that }} was inside the string
            brace = text.find("}}", i)
    return -1
