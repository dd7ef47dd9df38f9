"""Pull-request (GitLab: merge-request) webhook payloads turned into build requests.

GitHub's ``pull_request`` event (actions ``opened``, ``synchronize``,
``reopened``), Gitea's (``opened``, ``synchronized``, ``reopened``) and
GitLab's ``Merge Request Hook`` (``open``, ``reopen``, and ``update`` when it
brings new commits, which GitLab marks with ``oldrev``) each queue a build of
the request's head commit. The repository built is the base repository (the
one the hook belongs to, which the server must have registered), and the ref
is the forge's read-only head ref that SauCI makes from the request's number
(:func:`sauci.core.pull_requests.pull_ref`): a payload never names a URL to
fetch from or a ref, so a request from a fork is built from the base
repository, never by cloning the fork. Called by :mod:`sauci.triggers.webhook`
after the signature or token was checked.
"""

from __future__ import annotations

from typing import Any

from sauci.core.models import BuildRequest
from sauci.core.pull_requests import (
    PR_EVENT,
    PullRequest,
    bad_branch_name,
    is_pull_ref,
    pull_ref,
)
from sauci.triggers.spool import PUSH_PRIORITY, is_object_name

__all__ = ["PULL_EVENTS", "PayloadError", "field", "pull_request_build"]

PULL_EVENTS = {
    "github": {"pull_request"},
    "gitea": {"pull_request"},
    "gitlab": {"Merge Request Hook"},
}
_BUILT = {
    "github": {"opened", "synchronize", "reopened"},
    "gitea": {"opened", "synchronized", "reopened"},
    "gitlab": {"open", "reopen", "update"},
}


class PayloadError(ValueError):
    """The payload lacks or garbles what a build needs (answered 400)."""


def field(payload: Any, path: str) -> Any:
    """``payload``'s value at the dotted ``path`` (None where any part is missing)."""
    value = payload
    for key in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _text(payload: Any, path: str) -> str:
    value = field(payload, path)
    return value if isinstance(value, str) else ""


def _number(value: Any, what: str) -> int:
    # bool is an int to Python; a string "7/../heads/main" is not a number.
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 10**10:
        raise PayloadError(f"{what} {str(value)[:40]!r} is not a pull request number")
    return value


def _branch(value: str, what: str) -> str:
    why = bad_branch_name(value)
    if why is not None:
        raise PayloadError(f"{what}: {why}")
    return value


def _sha(value: str, what: str) -> str:
    if not is_object_name(value):
        raise PayloadError(f"{what} {value[:80]!r} is not a commit sha")
    return value


def _ref(provider: str, number: int) -> str:
    ref = pull_ref(provider, number)
    if not is_pull_ref(ref):  # made here from a checked number; never the payload's text
        raise PayloadError(f"{ref!r} is not a pull request ref")
    return ref


def pull_request_build(provider: str, payload: dict[str, Any]) -> BuildRequest | str:
    """The build a pull-request delivery asks for, or why it asks for none
    (an action that brings no new commit: closed, labeled, edited)."""
    if provider == "gitlab":
        return _gitlab(payload)
    action = _text(payload, "action")
    if action not in _BUILT[provider]:
        return f"pull request action {action[:40]!r} ignored"
    pr = field(payload, "pull_request")
    if not isinstance(pr, dict):
        raise PayloadError("pull request payload is missing: pull_request")
    number = _number(pr.get("number", payload.get("number")), "pull_request.number")
    repo = _text(payload, "repository.clone_url")
    if not repo:
        raise PayloadError("pull request payload is missing: repository.clone_url")
    request = PullRequest(
        number=number,
        base=_branch(_text(pr, "base.ref"), "pull_request.base.ref"),
        head=_branch(_text(pr, "head.ref"), "pull_request.head.ref"),
        base_sha=_text(pr, "base.sha") if is_object_name(_text(pr, "base.sha")) else "",
        title=_text(pr, "title"),
        # Gitea's "synchronized" is GitHub's "synchronize" (on.pull_request.types).
        action="synchronize" if action == "synchronized" else action,
    )
    return BuildRequest(
        repo=repo,
        ref=_ref(provider, number),
        sha=_sha(_text(pr, "head.sha"), "pull_request.head.sha"),
        event=PR_EVENT,
        priority=PUSH_PRIORITY,
        params=request.params(),
        pusher=_text(payload, "sender.login") or _text(pr, "user.login"),
        message=request.title,
    )


def _gitlab(payload: dict[str, Any]) -> BuildRequest | str:
    attrs = field(payload, "object_attributes")
    if not isinstance(attrs, dict):
        raise PayloadError("merge request payload is missing: object_attributes")
    action = _text(attrs, "action")
    if action not in _BUILT["gitlab"] or (action == "update" and not _text(attrs, "oldrev")):
        # An update without oldrev changed the title, labels or the like, not the commits.
        return f"merge request action {action[:40]!r} without new commits ignored"
    number = _number(attrs.get("iid"), "object_attributes.iid")
    repo = _text(payload, "project.git_http_url")
    if not repo:
        raise PayloadError("merge request payload is missing: project.git_http_url")
    request = PullRequest(
        number=number,
        base=_branch(_text(attrs, "target_branch"), "object_attributes.target_branch"),
        head=_branch(_text(attrs, "source_branch"), "object_attributes.source_branch"),
        title=_text(attrs, "title"),
        action={"open": "opened", "reopen": "reopened"}.get(action, "synchronize"),
    )
    name, email = _text(attrs, "last_commit.author.name"), _text(attrs, "last_commit.author.email")
    return BuildRequest(
        repo=repo,
        ref=_ref("gitlab", number),
        sha=_sha(_text(attrs, "last_commit.id"), "object_attributes.last_commit.id"),
        event=PR_EVENT,
        priority=PUSH_PRIORITY,
        params=request.params(),
        pusher=_text(payload, "user.username"),
        author=f"{name} <{email}>" if email else name,
        message=request.title,
    )
