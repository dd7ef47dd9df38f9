"""``on.push`` ``branches``/``branches-ignore`` and ``tags``/``tags-ignore``:
whether a push of a ref starts the workflow, by GitHub's rules.

A branch push is filtered by the branch filters, a tag push by the tag
filters. When only one kind is given, pushes of the other kind do not
start the workflow; when neither is, every push does. ``branches`` (or
``tags``) runs for a name some pattern includes, a later ``!pattern``
excluding it again; ``branches-ignore`` (``tags-ignore``) runs unless a
pattern matches. A filter and its ``-ignore`` form on the same event is an
error, as on GitHub. Patterns are GitHub's globs (``*`` within a ``/``
segment, ``**`` across them, ``?`` one character).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sauci.workflows.github._paths import glob_regex

__all__ = ["ref_skip"]


def _included(name: str, patterns: Sequence[str]) -> bool:
    verdict = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        if glob_regex(pattern[1:] if negated else pattern).match(name):
            verdict = not negated
    return verdict


def ref_skip(ref: str, filters: Mapping[str, Sequence[str]], event: str = "push") -> str | None:
    """Why a push of ``ref`` does not start the workflow, or None when it does.

    ``filters`` maps the keys given (``branches``, ``branches-ignore``,
    ``tags``, ``tags-ignore``) to their patterns."""
    if not filters:
        return None
    if ref.startswith("refs/tags/"):
        kind, name, other = "tags", ref.removeprefix("refs/tags/"), "branches"
    elif ref.startswith("refs/heads/"):
        kind, name, other = "branches", ref.removeprefix("refs/heads/"), "tags"
    else:
        return None
    if kind in filters:
        if _included(name, filters[kind]):
            return None
        return f"skipped: on.{event}.{kind}: {name!r} matches none of its patterns"
    if f"{kind}-ignore" in filters:
        if any(glob_regex(p).match(name) for p in filters[f"{kind}-ignore"]):
            return f"skipped: on.{event}.{kind}-ignore: {name!r} is ignored"
        return None
    given = " and ".join(f"on.push.{k}" for k in sorted(filters))
    what = "tag" if kind == "tags" else "branch"
    return f"skipped: a {what} push ({name!r}) while the workflow filters only {other} ({given})"
