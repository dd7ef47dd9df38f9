"""A GitHub workflow job's ``GITHUB_STEP_SUMMARY``, rendered as Markdown for the build page.

The summary is whatever the pushed code wrote, so it is hostile: Markdown is
rendered by markdown-it-py with raw HTML off (tags come out as text) and its
own link check (no ``javascript:``, ``vbscript:``, ``data:``), then cleaned
again by nh3 (an allow-list of tags and attributes, links ``http``,
``https`` and ``mailto`` only, ``rel="noopener noreferrer nofollow"``), so a
slip in either still leaves no script, handler or foreign markup. Images are
dropped: a summary must not make the page fetch from elsewhere.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

from sauci.core.artifacts import confined
from sauci.core.paths import safe_name
from sauci.typing import Store

__all__ = ["MAX_BYTES", "render_summary", "step_summaries"]

MAX_BYTES = 1 << 20  # GitHub's own limit for one step's summary
_PATTERN = ".sauci-gha/*/step-summary.md"  # where the job driver keeps it
_TAGS = {
    "a", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "li", "ol", "p", "pre", "s", "strong", "table", "tbody", "td", "th", "thead",
    "tr", "ul",
}  # fmt: skip
_ATTRIBUTES = {"a": {"href", "title"}, "td": {"style"}, "th": {"style"}, "ol": {"start"}}
_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(
    ["table", "strikethrough"]
)


def render_summary(text: str) -> SafeString:
    """``text`` (Markdown from a pushed step) as HTML safe to put in the page."""
    html = _MARKDOWN.render(text)
    cleaned = nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        filter_style_properties={"text-align"},  # markdown-it's table column alignment
    )
    return mark_safe(cleaned)  # cleaned by nh3 just above


def step_summaries(store: Store, build_id: int, root: Path) -> list[tuple[str, SafeString]]:
    """(step, rendered summary) for each step of the build that left one, in
    ``root`` (the build's artifact directory); a summary over MAX_BYTES is cut."""
    out = []
    for step, artifact in store.list_artifacts(build_id):
        if not fnmatch.fnmatchcase(artifact.path, _PATTERN):
            continue
        target = confined(root, f"{safe_name(step)}/{artifact.path}")
        if target is None or not target.is_file() or target.is_symlink():
            continue
        try:
            with target.open("rb") as fh:
                data = fh.read(MAX_BYTES + 1)
        except OSError:
            continue
        text = data[:MAX_BYTES].decode("utf-8", errors="replace")
        if len(data) > MAX_BYTES:
            text += "\n\n*(summary cut at 1 MiB)*\n"
        out.append((step, render_summary(text)))
    return out
