"""An assertion message as expected and actual values, and their difference line
by line, for the tests page: "expected:<X> but was:<Y>" (JUnit 4),
"expected: <X> but was: <Y>" (JUnit 5), "Expected: X / Received: Y" (Jest),
"assert X == Y" (pytest). The diff is difflib's; the template escapes it.
"""

from __future__ import annotations

import difflib
import re

import attrs

__all__ = ["AssertionDiff", "assertion_diff"]

# Bounded so that a hostile report cannot make the page slow: 4 KiB per value.
_LIMIT = 4096
_PATTERNS = (
    re.compile(r"expected:\s?<(?P<e>.*?)> but was:\s?<(?P<a>.*?)>", re.S),
    re.compile(
        r"^\s*Expected(?: value)?:\s?(?P<e>.*?)\n\s*(?:Received|Actual)(?: value)?:\s?(?P<a>.*?)$",
        re.M | re.S,
    ),
    re.compile(r"^(?:E\s+)?(?:AssertionError: )?assert (?P<a>.+?) == (?P<e>.+?)$", re.M),
)


@attrs.frozen(kw_only=True)
class AssertionDiff:
    """Expected and actual values and their lines marked " ", "-" (expected
    only) or "+" (actual only)."""

    expected: str
    actual: str
    lines: tuple[tuple[str, str], ...]


def assertion_diff(message: str, text: str = "") -> AssertionDiff | None:
    """The expected and actual values an assertion message names, else None."""
    for source in (message, text):
        source = source[: _LIMIT * 4]
        for pattern in _PATTERNS:
            found = pattern.search(source)
            if found is None:
                continue
            expected, actual = found["e"][:_LIMIT], found["a"][:_LIMIT]
            if expected == actual:
                continue
            marks = difflib.ndiff(expected.splitlines(), actual.splitlines())
            lines = tuple((m[0], m[2:]) for m in marks if m[:1] in (" ", "-", "+"))
            return AssertionDiff(expected=expected, actual=actual, lines=lines)
    return None
