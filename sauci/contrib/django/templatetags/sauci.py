"""Template filters for SauCI's pages: status words with icons, durations, ages."""

from __future__ import annotations

import math
import time
from typing import Any

from django import template
from django.utils.html import format_html

register = template.Library()

ICONS = {
    "passed": "✔",
    "failed": "✘",
    "errored": "⚠",
    "cancelled": "⊘",
    "skipped": "↷",
    "running": "◔",
    "queued": "◷",
}


@register.filter
def status(value: Any) -> str:
    """An icon and the status word: readable without colour."""
    word = str(getattr(value, "value", value) or "unknown")
    return format_html(
        '<span class="st st-{}"><span class="ic" aria-hidden="true">{}</span> {}</span>',
        word,
        ICONS.get(word, "?"),
        word,
    )


@register.filter
def seconds(value: float | None) -> str:
    """``75.2`` -> ``"1m 15s"``; "-" for None."""
    if value is None or not math.isfinite(value):  # a stored test report's 1e400
        return "-"
    value = max(0.0, float(value))
    if value < 10:
        return f"{value:.1f}s"
    total = int(value + 0.5)
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h}h {m}m"
    if m:
        return f"{m}m {s}s"
    return f"{s}s"


@register.filter
def age(value: float | None) -> str:
    """Epoch seconds as "3 min ago"."""
    if not value:
        return "-"
    delta = max(0.0, time.time() - float(value))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if delta >= size:
            return f"{int(delta // size)} {unit} ago"
    return "just now"


@register.filter
def when(value: float | None) -> str:
    """A ``<time>`` that reads "3 min ago" and shows the absolute UTC time on hover."""
    if not value:
        return "-"
    at = time.gmtime(float(value))
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        time.strftime("%Y-%m-%dT%H:%M:%SZ", at),
        time.strftime("%Y-%m-%d %H:%M:%S UTC", at),
        age(value),
    )


@register.filter
def isotime(value: float | None) -> str:
    if not value:
        return ""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(value)))


@register.filter
def short(value: str | None) -> str:
    """A sha cut to 10 characters."""
    return (value or "")[:10]


@register.filter
def firstline(value: str | None) -> str:
    return (value or "").strip().split("\n", 1)[0]


@register.filter
def repo_name(value: str | None) -> str:
    """The readable part of a repository location: its last path component."""
    parts = [p for p in (value or "").replace("\\", "/").split("/") if p]
    return (parts[-1] if parts else value or "").removesuffix(".git") or (value or "")


@register.filter
def size(value: int | None) -> str:
    from sauci.core.logsink import format_size

    return format_size(int(value or 0))


@register.filter
def pull_request(build: Any) -> Any:
    """The pull request a build is for (``.describe``: "#12 main <- feature"), or None."""
    from sauci.core.pull_requests import build_pull_request

    return build_pull_request(build)


@register.filter
def user_params(params: Any) -> dict[str, str]:
    """A build's parameters without those that record its pull request."""
    from sauci.core.pull_requests import user_params as without_request

    return without_request(params or {})
