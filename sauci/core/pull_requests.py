"""A build of a pull request (GitLab: merge request): what it records, and the refs it may use.

A pull-request build is an ordinary build with event ``pull_request``; its
ref is the forge's read-only ref of the request's head
(``refs/pull/N/head`` on GitHub and Gitea, ``refs/merge-requests/N/head`` on
GitLab), which the forge keeps in the base repository, so a request from a
fork is built from the base repository and never from the fork's URL. The
request's number, base and head branches (and the base's sha, when the
forge says it) are kept in the build's parameters under ``SAUCI_PR_*``
keys: every store keeps parameters, and a copy or a rerun keeps them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import attrs

__all__ = [
    "PR_ACTIONS",
    "PR_EVENT",
    "PullRequest",
    "bad_branch_name",
    "build_pull_request",
    "is_pull_ref",
    "pull_ref",
    "pull_request_of",
    "user_params",
]

PR_EVENT = "pull_request"
_PREFIX = "SAUCI_PR_"
_NUMBER, _BASE, _HEAD, _BASE_SHA, _TITLE, _ACTION = (
    f"{_PREFIX}{k}" for k in ("NUMBER", "BASE", "HEAD", "BASE_SHA", "TITLE", "ACTION")
)
# The forge's actions that build (GitHub's names; a workflow's on.pull_request.types reads them).
PR_ACTIONS = ("opened", "synchronize", "reopened")
_PULL_REF = re.compile(r"refs/(?:pull|merge-requests)/([1-9][0-9]{0,9})/head")
_HEX = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_NUMBER_TEXT = re.compile(r"[0-9]{1,10}")
# What git refuses in a ref name (git check-ref-format), and what a branch
# name must not start with to never pass for an option.
_BAD_REF = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|/\.|\.lock(?:/|$)|^[-/.]|[/.]$")
MAX_TITLE = 500


@attrs.frozen(kw_only=True)
class PullRequest:
    """The request a build is for: its number, base (target) and head (source) branch."""

    number: int = attrs.field(validator=attrs.validators.ge(0))
    base: str
    head: str
    base_sha: str = ""  # the base branch's commit when the forge said it
    title: str = ""
    action: str = ""  # opened, synchronize or reopened ("": not said, read as synchronize)

    def params(self) -> dict[str, str]:
        """The build parameters that record it."""
        out = {_NUMBER: str(self.number), _BASE: self.base, _HEAD: self.head}
        if self.base_sha:
            out[_BASE_SHA] = self.base_sha
        if self.title:
            out[_TITLE] = self.title[:MAX_TITLE]
        if self.action in PR_ACTIONS:
            out[_ACTION] = self.action
        return out

    def describe(self) -> str:
        """``#12 main <- feature`` (``main <- feature`` for a local one, number 0)."""
        head = f"#{self.number} " if self.number else ""
        return f"{head}{self.base} <- {self.head}"


def pull_request_of(params: Mapping[str, str]) -> PullRequest | None:
    """The request a build's parameters record, or None (not a pull-request build)."""
    number = params.get(_NUMBER, "")
    # ASCII digits only: str.isdigit() holds for "²", which int() refuses.
    if not _NUMBER_TEXT.fullmatch(number) or not params.get(_BASE):
        return None
    base_sha = params.get(_BASE_SHA, "")
    return PullRequest(
        number=int(number),
        base=params[_BASE],
        head=params.get(_HEAD, ""),
        base_sha=base_sha if _HEX.fullmatch(base_sha) else "",
        title=params.get(_TITLE, ""),
        action=action if (action := params.get(_ACTION, "")) in PR_ACTIONS else "",
    )


def build_pull_request(build: Any) -> PullRequest | None:
    """The request a build (or a request for one) is for: a pull-request build's, or
    a rerun's of one (a rerun keeps the parameters); None for any other build."""
    if getattr(build, "event", None) not in (PR_EVENT, "rerun"):
        return None
    return pull_request_of(getattr(build, "params", None) or {})


def user_params(params: Mapping[str, str]) -> dict[str, str]:
    """The parameters a person gave (``sauci trigger --param``), without a request's."""
    return {k: v for k, v in params.items() if not k.startswith(_PREFIX)}


def pull_ref(provider: str, number: int) -> str:
    """The forge's ref of request ``number``'s head (GitLab's or GitHub's/Gitea's)."""
    if not 0 < number < 10**10:
        raise ValueError(f"{number!r} is not a pull request number")
    kind = "merge-requests" if provider == "gitlab" else "pull"
    return f"refs/{kind}/{number}/head"


def is_pull_ref(ref: str) -> bool:
    """Whether ``ref`` is one of the forges' pull/merge-request head refs."""
    return _PULL_REF.fullmatch(ref) is not None


def bad_branch_name(name: object) -> str | None:
    """Why ``name`` cannot be a branch a request names (git's ref rules), or None."""
    if not isinstance(name, str) or not name:
        return "no branch name"
    if len(name) > 255 or _BAD_REF.search(name):
        return f"{name[:80]!r} is not a branch name git accepts"
    return None
