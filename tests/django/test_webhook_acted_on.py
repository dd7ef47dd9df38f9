"""Only deliveries that were acted on count as seen, over real HTTP to the
webhook endpoint: a delivery refused for an unregistered repository, or one
whose build could not be queued (the store failed after its id was
recorded), is acted on when delivered again; one that was acted on is a
duplicate."""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from sauci.core.models import Build, BuildRequest, Repo, Status
from sauci.exceptions import StoreError
from sauci.storage.memory import MemoryStore

_REPO = "https://git.example/app.git"


def _payload(sha: str = "c" * 40) -> bytes:
    return json.dumps(
        {
            "ref": "refs/heads/main",
            "before": "0" * 40,
            "after": sha,
            "repository": {"clone_url": _REPO},
            "pusher": {"name": "pat"},
            "head_commit": {"id": sha, "message": "hi", "author": {"name": "P", "email": "p@x"}},
        }
    ).encode()


def _deliver(base: str, delivery: str, body: bytes | None = None) -> tuple[int, dict[str, Any]]:
    body = body or _payload()
    signature = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(
        f"{base}/ci/webhook/",
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": signature,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


class FailsOnce(MemoryStore):
    """A store whose first create_build fails (a database that was down)."""

    failures = 1

    def create_build(self, request: BuildRequest, *, status: Status = Status.QUEUED) -> Build:
        if self.failures:
            self.failures -= 1
            raise StoreError("connection refused")
        return super().create_build(request, status=status)


@pytest.fixture
def site(live_server: Any, settings: Any) -> tuple[str, FailsOnce]:
    store = FailsOnce()
    settings.SAUCI = {"STORE": store, "WEBHOOK_SECRET": "s3cret"}
    from django.urls import reverse

    assert "/ci/webhook/" == reverse("sauci:webhook")
    return live_server.url, store


def test_a_delivery_whose_build_could_not_be_queued_is_acted_on_when_delivered_again(
    site: tuple[str, FailsOnce],
) -> None:
    base, store = site
    store.save_repo(Repo(id="app", location=_REPO, added_at=1.0))
    status, answer = _deliver(base, "gh-1")
    assert (503, []) == (status, answer["builds"])
    assert "deliver it again" in answer["message"] and [] == store.list_builds()
    status, answer = _deliver(base, "gh-1")  # GitHub's "Redeliver"
    assert 202 == status
    assert [b.id for b in store.list_builds()] == answer["builds"]
    status, answer = _deliver(base, "gh-1")  # acted on now: a duplicate
    assert (200, "duplicate delivery ignored") == (status, answer["message"])
    assert 1 == len(store.list_builds())


def test_a_delivery_for_an_unregistered_repository_is_acted_on_after_repo_add(
    site: tuple[str, FailsOnce],
) -> None:
    base, store = site
    store.failures = 0
    status, answer = _deliver(base, "gh-2")
    assert (200, []) == (status, answer["builds"])
    assert "not registered" in answer["message"]
    store.save_repo(Repo(id="app", location=_REPO, added_at=1.0))  # sauci repo add
    status, answer = _deliver(base, "gh-2")
    assert 202 == status and 1 == len(answer["builds"])
    assert 200 == _deliver(base, "gh-2")[0]
    assert 1 == len(store.list_builds())


def test_a_signed_body_resent_under_new_ids_is_a_duplicate_however_old_its_build(
    site: tuple[str, FailsOnce],
) -> None:
    """The delivery id is not signed: a resent body under a new id is the same
    delivery, also once its build is far down the branch's history (acted_on
    looks for the commit, not among the branch's latest builds)."""
    base, store = site
    store.failures = 0
    store.save_repo(Repo(id="app", location=_REPO, added_at=1.0))
    assert 202 == _deliver(base, "gh-1")[0]
    for n in range(250):  # later pushes of other commits
        store.create_build(BuildRequest(repo=_REPO, ref="refs/heads/main", sha=f"{n:040x}"))
    status, answer = _deliver(base, "gh-new-id")
    assert (200, []) == (status, answer["builds"])
    assert answer["message"].startswith("duplicate delivery ignored")
    assert 251 == len(store.list_builds(limit=1000))


def test_a_push_of_a_commit_already_queued_on_its_ref_is_collapsed_and_says_so(
    site: tuple[str, FailsOnce],
) -> None:
    """A second push event for a queued commit (another forge's hook, a
    redelivery under a new id of a body that differs) queues nothing new."""
    base, store = site
    store.failures = 0
    store.save_repo(Repo(id="app", location=_REPO, added_at=1.0))
    first = _deliver(base, "gh-a")
    other = json.loads(_payload())
    other["pusher"] = {"name": "someone else"}  # another body, the same push
    status, answer = _deliver(base, "gh-b", json.dumps(other).encode())
    assert (202, first[1]["builds"]) == (status, answer["builds"])
    assert answer["message"].endswith(
        f"already queued or running as build #{first[1]['builds'][0]}"
    )
    assert 1 == len(store.list_builds())
