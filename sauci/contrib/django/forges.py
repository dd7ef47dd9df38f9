"""Links to a build's commit, branch and compare view on the forge that hosts its
repository, from the ``FORGES`` setting: repository location (exact, or an
fnmatch pattern) -> ``"github:<url>"``, ``"gitlab:<url>"``, ``"gitea:<url>"``
or a dict of templates ``{"commit": ..., "branch": ..., "compare": ..., "pull": ...}``
with ``{url}``, ``{name}``, ``{sha}``, ``{old_sha}``, ``{branch}`` and a pull
request's ``{number}``.

Values from pushes go in URL-quoted (a branch keeps its ``/``), and a SHA only
when it is hexadecimal; a link that does not come out as http(s) is dropped.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from sauci.core.models import Build
from sauci.core.pull_requests import build_pull_request

__all__ = ["FORMS", "forge_links", "valid_forge"]

FORMS: dict[str, dict[str, str]] = {
    "github": {
        "commit": "{url}/commit/{sha}",
        "branch": "{url}/tree/{branch}",
        "compare": "{url}/compare/{old_sha}...{sha}",
        "pull": "{url}/pull/{number}",
    },
    "gitlab": {
        "commit": "{url}/-/commit/{sha}",
        "branch": "{url}/-/tree/{branch}",
        "compare": "{url}/-/compare/{old_sha}...{sha}",
        "pull": "{url}/-/merge_requests/{number}",
    },
    "gitea": {
        "commit": "{url}/commit/{sha}",
        "branch": "{url}/src/branch/{branch}",
        "compare": "{url}/compare/{old_sha}...{sha}",
        "pull": "{url}/pulls/{number}",
    },
}
_SHA = re.compile(r"[0-9a-fA-F]{7,64}")
_HTTP = re.compile(r"https?://[^\s\"'<>]+", re.I)
_KEYS = {"commit", "branch", "compare", "pull"}


def valid_forge(value: Any) -> bool:
    """Whether one ``FORGES`` value is a built-in form with an http(s) URL or a template dict."""
    if isinstance(value, str):
        kind, _, url = value.partition(":")
        return kind in FORMS and _HTTP.fullmatch(url) is not None
    return (
        isinstance(value, Mapping)
        and bool(value)
        and set(value) <= _KEYS | {"url"}
        and all(isinstance(v, str) for v in value.values())
    )


def _templates(value: Any) -> tuple[dict[str, str], str]:
    if isinstance(value, str):
        kind, _, url = value.partition(":")
        return FORMS[kind], url.rstrip("/")
    return {k: v for k, v in value.items() if k != "url"}, str(value.get("url", "")).rstrip("/")


def _forge(forges: Mapping[str, Any], repo: str) -> Any:
    if repo in forges:
        return forges[repo]
    for pattern, value in forges.items():
        if fnmatch.fnmatchcase(repo, pattern):
            return value
    return None


def forge_links(forges: Mapping[str, Any], build: Build) -> dict[str, str]:
    """``{"commit": url, "branch": url, "compare": url}``, each when it can be made."""
    value = _forge(forges, build.repo)
    if value is None or not valid_forge(value):
        return {}
    templates, url = _templates(value)
    name = build.repo.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
    fields = {"url": url, "name": quote(name, safe="")}
    if _SHA.fullmatch(build.sha or ""):
        fields["sha"] = build.sha
    if _SHA.fullmatch(build.old_sha or "") and set(build.old_sha) != {"0"}:
        fields["old_sha"] = build.old_sha
    if build.ref.startswith("refs/heads/"):
        fields["branch"] = quote(build.branch, safe="/")
    if (pr := build_pull_request(build)) is not None and pr.number:
        fields["number"] = str(pr.number)  # a pull (merge) request's page
    links = {}
    for key, template in templates.items():
        try:
            link = template.format(**fields)
        except (KeyError, IndexError, ValueError):
            continue  # a field this build lacks (no sha, a tag), or a bad template
        if _HTTP.fullmatch(link):
            links[key] = link
    return links
