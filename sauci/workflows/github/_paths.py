"""``on.push.paths`` and ``paths-ignore``: whether a push's changed files start the workflow.

GitHub's rules: ``*`` matches within one path segment, ``**`` across
segments, ``?`` one character; in ``paths`` a pattern starting with ``!``
excludes what the patterns before it included, and later patterns override
earlier ones. ``paths``: the workflow runs when at least one changed file
is included. ``paths-ignore``: it runs unless every changed file is
ignored. When the changed files are not known (a new branch, a first push,
``sauci run``) the workflow runs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["glob_regex", "paths_skip"]


def glob_regex(pattern: str) -> re.Pattern[str]:
    """The regular expression of one of GitHub's path patterns."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):  # "**/" also matches no directory at all
                out.append("(?:.*/)?")
                i += 1
            else:
                out.append(".*")
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


def _included(path: str, patterns: Sequence[str]) -> bool:
    verdict = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        if glob_regex(pattern[1:] if negated else pattern).match(path):
            verdict = not negated
    return verdict


def paths_skip(
    changed: Sequence[str] | None,
    paths: Sequence[str],
    ignore: Sequence[str],
    event: str = "push",
) -> str | None:
    """Why the push does not start the workflow, or None when it does."""
    if changed is None or not changed or (not paths and not ignore):
        return None
    if paths and not any(_included(p, paths) for p in changed):
        return f"skipped: on.{event}.paths: none of the {len(changed)} changed files matches"
    if ignore and all(_included(p, ignore) for p in changed):
        return f"skipped: on.{event}.paths-ignore: all {len(changed)} changed files are ignored"
    return None
