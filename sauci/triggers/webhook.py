"""Push webhooks from GitHub, Gitea and GitLab, turned into build requests.

Framework-independent: the web layer hands over headers and the raw body
and sends back ``status`` and ``message``. The body is the attacker's input,
so the order is fixed: size first (before reading JSON), then the signature
or token (compared in constant time), then the event and payload; a delivery
id is recorded only for a push that will be built, so a sender's retry of a
request we failed still works. :func:`handle_webhook` never raises.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs

import attrs

from sauci._logging import get_logger
from sauci.core.models import BuildRequest
from sauci.triggers._names import ref_problem, shown, valid_text
from sauci.triggers._pull_payloads import PULL_EVENTS, PayloadError, field, pull_request_build
from sauci.triggers.spool import PUSH_PRIORITY, is_null_sha, is_object_name

__all__ = ["MAX_WEBHOOK_BODY", "WebhookResult", "handle_webhook"]

log = get_logger(__name__)

MAX_WEBHOOK_BODY = 1024 * 1024  # GitHub caps its payloads at 25 MB; a push is a few KiB
MAX_DELIVERY_ID = 200  # forges send a UUID (36 characters)


@attrs.frozen(kw_only=True)
class WebhookResult:
    """What to answer the sender (``status``, ``message``) and what to build."""

    status: int
    message: str
    requests: list[BuildRequest] = attrs.field(factory=list)
    provider: str = ""  # github, gitea, gitlab; "" when not recognised
    delivery: str = ""


class _Reject(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def handle_webhook(
    headers: Mapping[str, str],
    body: bytes,
    *,
    secret: str | None,
    token: str | None = None,
    seen: Callable[[str], bool],
    accept: Callable[[BuildRequest], str | None] = lambda request: None,
    acted_on: Callable[[BuildRequest], bool] = lambda request: True,
    max_body: int = MAX_WEBHOOK_BODY,
) -> WebhookResult:
    """Check one webhook delivery and return the build requests it asks for.

    ``secret`` is the shared secret of GitHub/Gitea signatures (and, for
    GitLab, an accepted token); ``token`` is GitLab's secret token. With
    neither set every delivery is refused: an open endpoint would let anyone
    start builds. ``seen(key)`` returns True if the key was recorded
    before and records it otherwise; the keys are the delivery id and, for a
    signed (GitHub, Gitea) delivery, ``body_key(body)``. Statuses: 202 queued, 200 ignored or
    duplicate, 400 malformed, 403 not authenticated, 413 too large, 503 when
    ``seen`` itself fails (the sender should retry). ``accept(request)``
    returns why a request is not acted on (an unregistered repository), or
    None: a delivery refused so is not recorded as seen, so the sender can
    deliver it again once the reason is gone. ``acted_on(request)`` says
    whether the build a delivery asked for exists: a delivery seen before
    whose build does not (queueing it failed after the id was recorded) is
    acted on when delivered again, so only deliveries acted on count as seen.
    """
    provider = ""
    delivery = ""
    try:
        if len(body) > max_body:
            raise _Reject(413, f"body of {len(body)} bytes exceeds the {max_body} byte limit")
        lower = {str(k).lower(): str(v) for k, v in headers.items()}
        _check_length(lower.get("content-length"), max_body)
        provider = _provider(lower)
        _authenticate(provider, lower, body, secret=secret, token=token)
        delivery = lower.get(_DELIVERY_HEADER[provider], "").strip()
        if len(delivery) > MAX_DELIVERY_ID:  # forges send a UUID; the store keeps it
            name = _DELIVERY_NAME[provider]
            delivery = delivery[:MAX_DELIVERY_ID]
            raise _Reject(400, f"{name} is longer than {MAX_DELIVERY_ID} characters")
        event = lower[_EVENT_HEADER[provider]].strip()
        if event in PULL_EVENTS[provider]:  # sauci.triggers._pull_payloads
            try:
                request = pull_request_build(provider, _payload(lower, body))
            except PayloadError as exc:
                raise _Reject(400, str(exc)) from None
            if isinstance(request, str):
                return WebhookResult(
                    status=200, message=request, provider=provider, delivery=delivery
                )
        elif event not in _PUSH_EVENTS[provider]:
            what = "ping received" if event == "ping" else f"event {event!r} ignored"
            return WebhookResult(status=200, message=what, provider=provider, delivery=delivery)
        else:
            payload = _payload(lower, body)
            parsed = _PARSERS[provider](payload)
            if parsed is None:
                ref = payload.get("ref")
                return WebhookResult(
                    status=200,
                    message=f"deletion of {ref} ignored",
                    provider=provider,
                    delivery=delivery,
                )
            request = parsed
        request = _storable(request)
        refused = accept(request)
        if refused:
            log.info("webhook_not_acted_on", provider=provider, delivery=delivery, reason=refused)
            return WebhookResult(status=200, message=refused, provider=provider, delivery=delivery)
        duplicate = _seen_before(provider, delivery, body, seen)
        if duplicate and not acted_on(request):
            log.info("webhook_redelivered_not_acted_on", delivery=delivery)
            duplicate = ""
        if duplicate:
            log.info("webhook_duplicate", provider=provider, delivery=delivery, seen=duplicate)
            return WebhookResult(
                status=200,
                message=_DUPLICATE[duplicate],
                provider=provider,
                delivery=delivery,
            )
        log.info(
            "webhook_push", provider=provider, delivery=delivery, repo=request.repo, event=event
        )
        return WebhookResult(
            status=202,
            message=f"queued {request.ref} at {request.sha[:12]}",
            requests=[request],
            provider=provider,
            delivery=delivery,
        )
    except _Reject as exc:
        log.info("webhook_rejected", provider=provider, status=exc.status, reason=exc.message)
        return WebhookResult(
            status=exc.status, message=exc.message, provider=provider, delivery=delivery
        )
    except Exception as exc:  # a bug must not turn into a 500 loop of retries
        log.exception("webhook_failed", provider=provider, error=repr(exc))
        return WebhookResult(
            status=400, message="malformed request", provider=provider, delivery=delivery
        )


_EVENT_HEADER = {"github": "x-github-event", "gitea": "x-gitea-event", "gitlab": "x-gitlab-event"}
_DELIVERY_NAME = {
    "github": "X-GitHub-Delivery",
    "gitea": "X-Gitea-Delivery",
    "gitlab": "X-Gitlab-Event-UUID",
}
_DELIVERY_HEADER = {
    "github": "x-github-delivery",
    "gitea": "x-gitea-delivery",
    "gitlab": "x-gitlab-event-uuid",
}
_DUPLICATE = {
    "id": "duplicate delivery ignored",
    "body": "duplicate delivery ignored: the same signed body was delivered before under "
    "another delivery id; to build this commit again, rerun its build",
}
# Providers whose deliveries are signed (an HMAC of the body), not sent a token.
_SIGNED = frozenset({"github", "gitea"})
_PUSH_EVENTS = {"github": {"push"}, "gitea": {"push"}, "gitlab": {"Push Hook", "Tag Push Hook"}}


def body_key(body: bytes) -> str:
    """The id under which a signed body is recorded as seen (see :func:`_seen_before`)."""
    return "webhook-body:" + hashlib.sha256(body).hexdigest()


def _seen_before(provider: str, delivery: str, body: bytes, seen: Callable[[str], bool]) -> str:
    """Which of its body or id was handled before ("" if neither), recording them.

    A delivery id is only a header: the signature covers the body, not the id,
    so whoever saw one signed delivery (a proxy's log, the forge's delivery
    page) could resend its body under new ids and have the commit built again
    each time. A signed body is therefore recorded too, and the same body is
    the same delivery whatever id it comes with; a forge's redelivery keeps
    both. A push with the same before, after and ref has the same body: Gitea's
    names no time, GitHub's ``pushed_at`` whole seconds (docs/triggers.md). A
    GitLab token is sent with every delivery: its bodies are not recorded.
    """
    try:
        # Both are recorded, whichever was seen: a forge's redelivery is told by its id.
        id_seen = bool(delivery) and seen(delivery)
        body_seen = provider in _SIGNED and seen(body_key(body))
        if id_seen or body_seen:
            return "id" if id_seen else "body"
    except Exception as exc:
        log.error("webhook_seen_failed", delivery=delivery, error=str(exc))
        raise _Reject(503, "could not record the delivery; try again") from exc
    return ""


def _storable(request: BuildRequest) -> BuildRequest:
    """``request`` as a store can keep it: 400 for a ref no store can (see
    :func:`~sauci.triggers._names.ref_problem`); a lone surrogate JSON spelled
    ("\\udcff") or a NUL in any other text shown as U+FFFD (SQLite refuses the
    one, PostgreSQL both: queueing them was a 500, or a 503 at every retry)."""
    problem = ref_problem(request.ref)
    if problem is not None:
        raise _Reject(400, f"ref {shown(request.ref)!r} {problem}")
    changes: dict[str, Any] = {
        name: valid_text(value)
        for name in ("repo", "pusher", "author", "message")
        if (value := getattr(request, name)) != valid_text(value)
    }
    params = {valid_text(k): valid_text(v) for k, v in request.params.items()}
    if params != dict(request.params):
        changes["params"] = params
    return attrs.evolve(request, **changes) if changes else request


def _check_length(value: str | None, max_body: int) -> None:
    if value is None:
        return
    try:
        length = int(value.strip())
    except ValueError:
        raise _Reject(400, f"Content-Length {value!r} is not a number") from None
    if length > max_body:
        raise _Reject(413, f"body of {length} bytes exceeds the {max_body} byte limit")


def _provider(headers: Mapping[str, str]) -> str:
    # Gitea also sends X-GitHub-Event for compatibility, so it is asked first.
    for provider in ("gitea", "gitlab", "github"):
        if _EVENT_HEADER[provider] in headers:
            return provider
    raise _Reject(400, "not a webhook: no X-GitHub-Event, X-Gitea-Event or X-Gitlab-Event header")


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(
        given.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape")
    )


def _authenticate(
    provider: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    secret: str | None,
    token: str | None,
) -> None:
    if provider == "gitlab":
        given = headers.get("x-gitlab-token")
        accepted = [t for t in (token, secret) if t]
        if not accepted:
            raise _Reject(403, "no webhook token is configured; refusing unchecked deliveries")
        if given is None:
            raise _Reject(403, "missing X-Gitlab-Token")
        # Compare against every accepted value, so the time taken does not
        # tell which one was configured.
        matches = [_same(given, t) for t in accepted]
        if not any(matches):
            raise _Reject(403, "wrong X-Gitlab-Token")
        return
    if not secret:
        raise _Reject(403, "no webhook secret is configured; refusing unsigned deliveries")
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    signature = headers.get("x-hub-signature-256")
    if signature is not None:
        if not _same(signature.strip().lower(), "sha256=" + digest):
            raise _Reject(403, "wrong X-Hub-Signature-256")
        return
    if provider == "gitea" and "x-gitea-signature" in headers:
        if not _same(headers["x-gitea-signature"].strip().lower(), digest):
            raise _Reject(403, "wrong X-Gitea-Signature")
        return
    raise _Reject(403, "missing signature header (X-Hub-Signature-256)")


def _payload(headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        text = body.decode("utf-8")
        if content_type == "application/x-www-form-urlencoded":
            # GitHub's and Gitea's form option: the JSON is the "payload" field.
            text = parse_qs(text, strict_parsing=False).get("payload", [""])[0]
        payload = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _Reject(400, f"body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise _Reject(400, "body is not a JSON object")
    return payload


def _text(payload: Any, *paths: str) -> str:
    """The first of ``paths`` that holds a non-empty string, else ""."""
    for path in paths:
        value = field(payload, path)
        if isinstance(value, str) and value:
            return value
    return ""


def _require(payload: dict[str, Any], fields: dict[str, str]) -> dict[str, str]:
    """The named fields (name -> payload path); 400 listing every one missing."""
    values = {name: _text(payload, path) for name, path in fields.items()}
    missing = [fields[name] for name, value in values.items() if not value]
    if missing:
        raise _Reject(400, f"push payload is missing: {', '.join(missing)}")
    if not values["ref"].startswith("refs/"):
        raise _Reject(400, f"ref {values['ref']!r} is not a full ref name (refs/...)")
    for name in ("before", "after"):
        if not is_object_name(values[name]):
            raise _Reject(400, f"{name} {values[name][:80]!r} is not a commit sha")
    return values


_PUSH_FIELDS = {"ref": "ref", "after": "after", "before": "before"}


def _author(commit: Any) -> str:
    name = _text(commit, "author.name")
    email = _text(commit, "author.email")
    return f"{name} <{email}>" if email else name


def _commit(payload: dict[str, Any], sha: str) -> Any:
    """The pushed commit: the one whose id is ``sha``, else head_commit, else the last."""
    commits = payload.get("commits")
    commits = [c for c in commits if isinstance(c, dict)] if isinstance(commits, list) else []
    for commit in commits:
        if commit.get("id") == sha:
            return commit
    head = payload.get("head_commit")
    if isinstance(head, dict):
        return head
    return commits[-1] if commits else {}


def _request(values: dict[str, str], sha: str, commit: Any, pusher: str) -> BuildRequest:
    """The build of a push: ``values`` from :func:`_require`, ``sha`` the commit."""
    return BuildRequest(
        repo=values["repo"],
        ref=values["ref"],
        sha=sha,
        old_sha=values["before"],
        event="webhook",
        priority=PUSH_PRIORITY,
        pusher=pusher,
        author=_author(commit),
        message=_text(commit, "message"),
    )


def _github(payload: dict[str, Any]) -> BuildRequest | None:
    """GitHub and Gitea push payloads (Gitea's copies GitHub's shape)."""
    values = _require(payload, {**_PUSH_FIELDS, "repo": "repository.clone_url"})
    if payload.get("deleted") is True or is_null_sha(values["after"]):
        return None
    commit = _commit(payload, values["after"])
    # For an annotated tag "after" is the tag object; build the commit it names.
    sha = values["after"]
    if values["ref"].startswith("refs/tags/") and is_object_name(_text(commit, "id")):
        sha = _text(commit, "id")
    pusher = _text(payload, "pusher.name", "pusher.login", "pusher.username", "sender.login")
    return _request(values, sha, commit, pusher)


def _gitlab(payload: dict[str, Any]) -> BuildRequest | None:
    # Older GitLab versions name the clone URL only under "repository".
    repo_path = "project.git_http_url"
    if not _text(payload, repo_path) and _text(payload, "repository.git_http_url"):
        repo_path = "repository.git_http_url"
    values = _require(payload, {**_PUSH_FIELDS, "repo": repo_path})
    if is_null_sha(values["after"]):
        return None
    # checkout_sha is the commit (for an annotated tag "after" is the tag object).
    sha = _text(payload, "checkout_sha")
    if not is_object_name(sha):
        sha = values["after"]
    return _request(
        values, sha, _commit(payload, sha), _text(payload, "user_username", "user_name")
    )


_PARSERS: dict[str, Callable[[dict[str, Any]], BuildRequest | None]] = {
    "github": _github,
    "gitea": _github,
    "gitlab": _gitlab,
}
