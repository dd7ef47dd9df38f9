"""Webhooks from GitHub, Gitea and GitLab: real payload shapes become build
requests; size, authentication, duplicates and malformed input get the right
status; no input makes the handler raise."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sauci.core.models import BuildRequest
from sauci.triggers import WebhookResult, handle_webhook, webhook

PAYLOADS = Path(__file__).parent / "payloads"
SECRET = "It's a Secret to Everybody"


def payload(name: str) -> bytes:
    return (PAYLOADS / f"{name}.json").read_bytes()


def sign(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Seen:
    """The delivery-id record a server keeps (in its store)."""

    def __init__(self) -> None:
        self.ids: set[str] = set()

    def __call__(self, delivery: str) -> bool:
        if delivery in self.ids:
            return True
        self.ids.add(delivery)
        return False


def github(body: bytes, event: str = "push", delivery: str = "d-1", **extra: str) -> dict:
    return {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": "sha256=" + sign(body), "Content-Type": "application/json",
            **extra}  # fmt: skip


def handle(headers, body, **kw) -> WebhookResult:
    kw.setdefault("secret", SECRET)
    kw.setdefault("seen", Seen())
    return handle_webhook(headers, body, **kw)


def test_github_push_becomes_one_build_request():
    body = payload("github_push")
    result = handle(github(body), body)
    expected = BuildRequest(
        repo="https://github.com/octo-org/widget.git",
        ref="refs/heads/main",
        sha="6dcb09b5b57875f334f61aebed695e2e4193db5e",
        old_sha="a10867b14bb761a232cd80139fbd4c0d33264240",
        event="webhook",
        priority=10,
        pusher="mona",
        author="Mona Lisa <mona@example.com>",
        message="Add a widget\n\nWith a longer body.",
    )
    assert (202, [expected]) == (result.status, result.requests)
    assert ("github", "d-1") == (result.provider, result.delivery)


def test_github_annotated_tag_builds_the_commit_not_the_tag_object():
    body = payload("github_tag_push")
    [request] = handle(github(body), body).requests
    assert ("refs/tags/v1.2.0", "6dcb09b5b57875f334f61aebed695e2e4193db5e", "0" * 40) == (
        request.ref, request.sha, request.old_sha
    )  # fmt: skip


def test_gitea_push_with_its_own_signature_header():
    body = payload("gitea_push")
    # Gitea sends X-GitHub-Event too, for compatibility.
    headers = {"X-Gitea-Event": "push", "X-Gitea-Delivery": "g-1", "X-Gitea-Signature": sign(body),
               "X-GitHub-Event": "push"}  # fmt: skip
    result = handle(headers, body)
    assert 202 == result.status and "gitea" == result.provider
    [request] = result.requests
    assert ("https://gitea.example.com/gitea/webhooks.git", "refs/heads/develop") == (
        request.repo, request.ref
    )  # fmt: skip
    assert ("bffeb74224043ba2feb48d137756c8a9331c449a", "gitea") == (request.sha, request.pusher)
    assert ("Gitea <someone@gitea.io>", "Webhooks Yay!\n") == (request.author, request.message)


def test_gitea_also_accepts_x_hub_signature_256():
    body = payload("gitea_push")
    headers = {"X-Gitea-Event": "push", "X-Hub-Signature-256": "sha256=" + sign(body)}
    assert 202 == handle(headers, body).status


def test_gitlab_push_with_token():
    body = payload("gitlab_push")
    headers = {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "tok",
               "X-Gitlab-Event-UUID": "u-1"}  # fmt: skip
    result = handle(headers, body, secret=None, token="tok")
    assert (202, "gitlab", "u-1") == (result.status, result.provider, result.delivery)
    [request] = result.requests
    expected = BuildRequest(
        repo="https://gitlab.example.com/mike/diaspora.git",
        ref="refs/heads/master",
        sha="da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
        old_sha="95790bf891e76fee5e1747ab589903a6a1f80f22",
        event="webhook",
        priority=10,
        pusher="jsmith",
        author="GitLab dev user <gitlabdev@example.com>",
        message="fixed readme\n",
    )
    assert expected == request


def test_gitlab_token_may_be_the_shared_secret_and_tag_push_builds_checkout_sha():
    body = payload("gitlab_tag_push")
    headers = {"x-gitlab-event": "Tag Push Hook", "x-gitlab-token": SECRET}
    [request] = handle(headers, body).requests
    assert ("refs/tags/v1.0.0", "da1560886d4f094c3e6c9ef40349f7d38b5d27d7") == (
        request.ref, request.sha
    )  # fmt: skip


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"X-GitHub-Event": "push"}, "missing signature header"),
        ({"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + "0" * 64}, "wrong"),
        ({"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=ünïcode"}, "wrong"),
        ({"X-Gitea-Event": "push", "X-Gitea-Signature": "abc"}, "wrong X-Gitea-Signature"),
        ({"X-Gitlab-Event": "Push Hook"}, "missing X-Gitlab-Token"),
        ({"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "nope"}, "wrong X-Gitlab-Token"),
    ],
)
def test_missing_or_wrong_signature_is_403(headers, message):
    result = handle(headers, payload("github_push"))
    assert 403 == result.status and message in result.message and [] == result.requests


def test_signature_made_with_another_secret_is_403():
    body = payload("github_push")
    headers = github(body)
    headers["X-Hub-Signature-256"] = "sha256=" + sign(body, "other")
    assert 403 == handle(headers, body).status


def test_no_configured_secret_refuses_everything():
    body = payload("github_push")
    assert 403 == handle(github(body), body, secret=None).status
    gitlab = {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": ""}
    assert 403 == handle(gitlab, payload("gitlab_push"), secret=None, token=None).status


def test_too_large_is_413_before_anything_else():
    body = b"x" * 101
    assert 413 == handle({}, body, max_body=100).status
    assert 413 == handle({"Content-Length": "5000000"}, b"{}", max_body=100).status
    assert 400 == handle({"Content-Length": "lots"}, b"{}").status


def test_duplicate_delivery_is_200_without_requests():
    body = payload("github_push")
    seen = Seen()
    assert 202 == handle(github(body), body, seen=seen).status
    again = handle(github(body), body, seen=seen)
    assert (200, "duplicate delivery ignored", []) == (again.status, again.message, again.requests)


@pytest.mark.parametrize("provider", ["github", "gitea"])
def test_a_signed_body_resent_under_a_new_delivery_id_is_a_duplicate(provider):
    """The delivery id is a header the signature does not cover: whoever saw one
    signed delivery could resend it under fresh ids and have the commit built
    each time. The same signed body is the same delivery."""
    body = payload(f"{provider}_push")
    if provider == "github":
        headers = [github(body, delivery=f"d-{n}") for n in range(3)]
    else:
        headers = [{"X-Gitea-Event": "push", "X-Gitea-Delivery": f"g-{n}",
                    "X-Gitea-Signature": sign(body)} for n in range(3)]  # fmt: skip
    seen = Seen()
    results = [handle(h, body, seen=seen) for h in headers]
    assert [202, 200, 200] == [r.status for r in results]
    assert [] == results[1].requests + results[2].requests
    assert "the same signed body was delivered before" in results[1].message


def test_a_new_push_of_an_already_built_commit_is_built_again():
    """A real push has a body of its own (GitHub's names the time of the push):
    moving a branch back to a commit it had is built, like any push."""
    seen = Seen()
    first = json.loads(payload("github_push"))
    again = {**first, "before": "b" * 40,
             "repository": {**first["repository"], "pushed_at": 1999999999}}  # fmt: skip
    bodies = [json.dumps(p).encode() for p in (first, again)]
    results = [handle(github(b, delivery=f"d-{n}"), b, seen=seen) for n, b in enumerate(bodies)]
    assert [202, 202] == [r.status for r in results]
    assert results[0].requests[0].sha == results[1].requests[0].sha


def test_a_replayed_body_whose_build_is_missing_is_acted_on():
    """Only deliveries acted on count as seen, by body as by id."""
    body = payload("github_push")
    seen = Seen()
    assert 202 == handle(github(body), body, seen=seen).status
    again = handle(github(body, delivery="d-2"), body, seen=seen, acted_on=lambda r: False)
    assert 202 == again.status


def test_gitlab_bodies_are_not_recorded_only_its_event_uuid():
    """A GitLab token travels with every delivery: whoever can resend one can
    write any, so there is nothing to gain from recording its bodies (and a
    branch moved back to a commit sends the same body again)."""
    body = payload("gitlab_push")
    seen = Seen()
    for uuid in ("u-1", "u-2"):
        headers = {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "tok",
                   "X-Gitlab-Event-UUID": uuid}  # fmt: skip
        assert 202 == handle(headers, body, secret=None, token="tok", seen=seen).status
    assert {"u-1", "u-2"} == seen.ids


def test_rejected_deliveries_are_not_recorded_as_seen():
    body = payload("github_push")
    seen = Seen()
    bad = github(body)
    bad["X-Hub-Signature-256"] = "sha256=" + "0" * 64
    assert 403 == handle(bad, body, seen=seen).status
    assert set() == seen.ids


def test_a_failing_seen_record_is_503_so_the_sender_retries():
    def broken(_delivery: str) -> bool:
        raise RuntimeError("store down")

    body = payload("github_push")
    assert 503 == handle(github(body), body, seen=broken).status


def test_ping_and_other_events_are_ignored():
    body = payload("github_ping")
    ping = handle(github(body, event="ping"), body)
    assert (200, "ping received", []) == (ping.status, ping.message, ping.requests)
    issue = handle(github(b"{}", event="issues"), b"{}")
    assert (200, "event 'issues' ignored") == (issue.status, issue.message)
    note = handle({"X-Gitlab-Event": "Note Hook", "X-Gitlab-Token": SECRET}, b"{}")
    assert 200 == note.status


@pytest.mark.parametrize("name", ["github_delete", "gitlab_delete"])
def test_deletions_are_ignored(name):
    body = payload(name)
    headers = github(body) if name.startswith("github") else {
        "X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": SECRET}  # fmt: skip
    result = handle(headers, body)
    assert 200 == result.status and "deletion of refs/heads/" in result.message
    assert [] == result.requests


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "body is not valid JSON"),
        (b"\xff\xfe", "body is not valid JSON"),
        (b"[1, 2]", "body is not a JSON object"),
        (b"{}", "push payload is missing: ref, after, before, repository.clone_url"),
        (b'{"ref": "main", "after": "' + b"a" * 40 + b'", "before": "' + b"b" * 40
         + b'", "repository": {"clone_url": "u"}}', "is not a full ref name"),
        (b'{"ref": "refs/heads/x", "after": "zz", "before": "' + b"b" * 40
         + b'", "repository": {"clone_url": "u"}}', "after 'zz' is not a commit sha"),
        (b"[" * 100_000, "body is not valid JSON"),
    ],
)  # fmt: skip
def test_malformed_payloads_are_400_saying_what_is_wrong(body, message):
    result = handle(github(body), body)
    assert 400 == result.status and message in result.message


def test_form_encoded_github_payload():
    from urllib.parse import quote

    body = b"payload=" + quote(payload("github_push").decode()).encode()
    headers = github(body, **{"Content-Type": "application/x-www-form-urlencoded"})
    assert 202 == handle(headers, body).status


def test_not_a_webhook_at_all_is_400():
    assert 400 == handle({"Content-Type": "application/json"}, b"{}").status


header_names = st.sampled_from([
    "X-GitHub-Event", "X-GitHub-Delivery", "X-Hub-Signature-256", "X-Gitea-Event",
    "X-Gitea-Signature", "X-Gitea-Delivery", "X-Gitlab-Event", "X-Gitlab-Token",
    "X-Gitlab-Event-UUID", "Content-Length", "Content-Type",
]) | st.text(max_size=20)  # fmt: skip
header_values = st.text() | st.sampled_from(
    [
        "push",
        "ping",
        "Push Hook",
        "Tag Push Hook",
        SECRET,
        "sha256=",
        "application/x-www-form-urlencoded",
    ]
)
bodies = st.binary(max_size=2000) | st.sampled_from(
    [payload(p.stem) for p in sorted(PAYLOADS.glob("*.json"))]
).flatmap(lambda b: st.sampled_from([b, b[: len(b) // 2], b.replace(b'"', b"'")]))


@settings(max_examples=500, deadline=None)
@given(
    headers=st.dictionaries(header_names, header_values, max_size=8),
    body=bodies,
    secret=st.none() | st.just(SECRET),
    token=st.none() | st.text(max_size=5),
    sign_it=st.booleans(),
)
def test_any_input_gets_an_answer_and_never_raises(headers, body, secret, token, sign_it):
    if sign_it:  # reach past authentication too
        headers = {**headers, "X-Hub-Signature-256": "sha256=" + sign(body),
                   "X-Gitea-Signature": sign(body), "X-Gitlab-Token": SECRET}  # fmt: skip
    with mock.patch.object(webhook, "log") as log:
        result = handle_webhook(
            headers, body, secret=secret, token=token, seen=Seen(), max_body=1500
        )
    assert result.status in {200, 202, 400, 403, 413}
    assert not log.exception.called, log.exception.call_args  # no bug hidden behind a 400
    assert isinstance(result.message, str) and result.message
    assert (result.status == 202) == bool(result.requests)


def test_the_handler_does_not_depend_on_header_case():
    body = payload("github_push")
    headers = {k.upper(): v for k, v in github(body).items()}
    assert 202 == handle(headers, body).status
    assert json.loads(body)["after"] == handle(headers, body).requests[0].sha


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("refs/heads/x\\udcff", "is not UTF-8"),
        ("refs/heads/" + "y" * 3000, "is longer than 1024 bytes"),
    ],
)
def test_a_ref_no_store_can_keep_is_400(ref, message):
    """JSON can spell a lone surrogate ("\\udcff"), which SQLite and PostgreSQL
    refuse (the view answered 500), and PostgreSQL refuses a ref past its
    index row (503, forever)."""
    body = payload("github_push").replace(b'"refs/heads/main"', f'"{ref}"'.encode())
    result = handle(github(body), body)
    assert 400 == result.status and message in result.message, result.message
    assert [] == result.requests


def test_text_a_store_cannot_keep_is_replaced_not_refused():
    """A lone surrogate in a commit message or a pull request's title or
    branch is shown as U+FFFD (the view answered 500 when it queued it)."""
    body = payload("github_pull_request").replace(b'"title": "', b'"title": "\\udcff')
    [request] = handle(github(body, event="pull_request"), body).requests
    assert request.params["SAUCI_PR_TITLE"].startswith("\ufffd")
    data = json.loads(payload("github_push"))
    data["head_commit"]["message"] = data["commits"][-1]["message"] = "fix \ud800"
    data["pusher"]["name"] = "\udcffmona"
    body = json.dumps(data).encode()
    [request] = handle(github(body), body).requests
    assert ("fix \ufffd", "\ufffdmona") == (request.message, request.pusher)


def test_a_nul_in_the_head_commit_message_is_replaced_not_a_500():
    """PostgreSQL refuses NUL in text: a pushed message or pusher holding one
    was queued as is, and the store's refusal answered 500."""
    data = json.loads(payload("github_push"))
    data["head_commit"]["message"] = data["commits"][-1]["message"] = "fix\x00bad"
    data["pusher"]["name"] = "mo\x00na"
    body = json.dumps(data).encode()
    result = handle(github(body), body)
    assert 202 == result.status, result.message
    [request] = result.requests
    assert ("fix\ufffdbad", "mo\ufffdna") == (request.message, request.pusher)


def test_a_delivery_id_longer_than_any_forge_sends_is_400():
    body = payload("github_push")
    result = handle(github(body, delivery="d" * 300), body)
    assert 400 == result.status and "X-GitHub-Delivery" in result.message
