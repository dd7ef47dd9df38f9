"""Pull-request and merge-request deliveries (GitHub, Gitea, GitLab) become
builds of the request's head commit from the forge's head ref of the base
repository: signed like pushes, never naming a URL or ref of the payload's
choosing, a fork's URL never used, shell and HTML in names kept as data."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest

from sauci.core.pull_requests import PullRequest, pull_request_of, user_params
from sauci.triggers import handle_webhook

PAYLOADS = Path(__file__).parent / "payloads"
SECRET = "pull-secret"


def body_of(name: str, **changes) -> bytes:
    data = json.loads((PAYLOADS / f"{name}.json").read_text())
    for path, value in changes.items():
        target = data
        *parents, last = path.split("__")
        for key in parents:
            target = target[key]
        target[last] = value
    return json.dumps(data).encode()


def signed(provider: str, body: bytes, secret: str = SECRET) -> dict:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if provider == "gitea":
        return {"X-Gitea-Event": "pull_request", "X-Gitea-Delivery": "g-1",
                "X-Gitea-Signature": digest, "Content-Type": "application/json"}  # fmt: skip
    return {"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "h-1",
            "X-Hub-Signature-256": "sha256=" + digest, "Content-Type": "application/json"}  # fmt: skip


def gitlab(token: str = SECRET) -> dict:
    return {"X-Gitlab-Event": "Merge Request Hook", "X-Gitlab-Token": token,
            "X-Gitlab-Event-UUID": "l-1"}  # fmt: skip


def handle(headers, body):
    return handle_webhook(headers, body, secret=SECRET, seen=lambda d: False)


def test_a_github_pull_request_from_a_fork_builds_the_head_from_the_base_repository():
    body = body_of("github_pull_request")
    result = handle(signed("github", body), body)
    assert (202, 1) == (result.status, len(result.requests))
    request = result.requests[0]
    assert "https://github.com/octo-org/widget.git" == request.repo  # never the fork's URL
    assert "evil.example" not in repr(request)
    assert ("refs/pull/42/head", "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c", "pull_request") == (
        request.ref,
        request.sha,
        request.event,
    )
    pr = pull_request_of(request.params)
    assert (
        PullRequest(
            number=42,
            base="main",
            head="feature/$(id);<b>x</b>",  # kept as data, exactly
            base_sha="6dcb09b5b57875f334f61aebed695e2e4193db5e",
            title="<script>alert(1)</script> $(touch /tmp/sauci-pwned); `id`",
            action="synchronize",  # for on.pull_request.types
        )
        == pr
    )
    assert "#42 main <- feature/$(id);<b>x</b>" == pr.describe()
    assert {} == user_params(request.params)


def test_gitea_and_gitlab_requests_use_their_forges_head_refs():
    body = body_of("gitea_pull_request")
    gitea = handle(signed("gitea", body), body).requests[0]
    assert ("http://gitea.local/team/widget.git", "refs/pull/7/head") == (gitea.repo, gitea.ref)
    assert ("main", "fix") == (
        pull_request_of(gitea.params).base,
        pull_request_of(gitea.params).head,
    )
    body = body_of("gitlab_merge_request")
    lab = handle(gitlab(), body).requests[0]
    assert ("http://example.com/gitlabhq/gitlab-test.git", "refs/merge-requests/1/head") == (
        lab.repo,
        lab.ref,
    )
    assert "da1560886d4f094c3e6c9ef40349f7d38b5d27d7" == lab.sha
    pr = pull_request_of(lab.params)
    assert (1, "master", "ms-viewport") == (pr.number, pr.base, pr.head)


@pytest.mark.parametrize(
    ("name", "headers", "changes", "message"),
    [
        ("github_pull_request", "github", {"action": "closed"}, "action 'closed' ignored"),
        ("github_pull_request", "github", {"action": "labeled"}, "action 'labeled' ignored"),
        ("gitea_pull_request", "gitea", {"action": "synchronize"}, "ignored"),  # GitHub's word
        ("gitlab_merge_request", "gitlab", {"object_attributes__oldrev": None}, "without new"),
        ("gitlab_merge_request", "gitlab", {"object_attributes__action": "merge"}, "ignored"),
    ],
)
def test_actions_without_new_commits_are_ignored(name, headers, changes, message):
    body = body_of(name, **changes)
    result = handle(gitlab() if headers == "gitlab" else signed(headers, body), body)
    assert (200, []) == (result.status, result.requests)
    assert message in result.message


@pytest.mark.parametrize(
    "changes",
    [
        {"pull_request__number": "42/../../heads/main"},  # a ref of the payload's choosing
        {"pull_request__number": "refs/heads/main"},
        {"pull_request__number": -1},
        {"pull_request__number": True},
        {"pull_request__head__ref": "--upload-pack=touch /tmp/x"},
        {"pull_request__base__ref": "main\nrefs/heads/x"},
        {"pull_request__base__ref": "../../etc"},
        {"pull_request__head__sha": "HEAD"},
        {"pull_request__head__sha": "--all"},
    ],
)
def test_a_payload_cannot_choose_a_ref_or_an_option(changes):
    body = body_of("github_pull_request", **changes)
    result = handle(signed("github", body), body)
    assert (400, []) == (result.status, result.requests), result.message


def test_gitlab_iid_must_be_a_number():
    body = body_of("gitlab_merge_request", object_attributes__iid="1/head:refs/heads/main")
    result = handle(gitlab(), body)
    assert (400, []) == (result.status, result.requests)


@pytest.mark.parametrize("who", ["unsigned", "wrong secret", "gitlab wrong token", "no token"])
def test_unsigned_or_wrongly_signed_deliveries_are_refused(who):
    body = body_of("gitlab_merge_request" if "token" in who else "github_pull_request")
    if who == "unsigned":
        headers = {"X-GitHub-Event": "pull_request", "Content-Type": "application/json"}
    elif who == "wrong secret":
        headers = signed("github", body, secret="guess")
    elif who == "gitlab wrong token":
        headers = gitlab(token="guess")
    else:
        headers = {"X-Gitlab-Event": "Merge Request Hook"}
    result = handle(headers, body)
    assert (403, []) == (result.status, result.requests)


def test_an_unregistered_base_repository_is_not_built():
    body = body_of("github_pull_request")
    result = handle_webhook(
        signed("github", body), body, secret=SECRET, seen=lambda d: False,
        accept=lambda r: f"ignored: {r.repo} is not registered",
    )  # fmt: skip
    assert (200, []) == (result.status, result.requests)


@pytest.mark.parametrize("scheme", ["memory", "sqlite", "duckdb"])
def test_every_store_keeps_the_pull_request_a_build_is_for(tmp_path, scheme):
    from sauci.core.scheduler import Scheduler
    from sauci.storage import open_store

    url = "memory://" if scheme == "memory" else f"{scheme}:///{tmp_path / 'db'}"
    if scheme == "duckdb":
        pytest.importorskip("duckdb")
    store = open_store(url)
    body = body_of("github_pull_request")
    (request,) = handle(signed("github", body), body).requests
    build = store.get_build(Scheduler(store).enqueue(request).id)
    assert ("pull_request", "refs/pull/42/head") == (build.event, build.ref)
    assert pull_request_of(request.params) == pull_request_of(build.params)
    store.close()


def test_a_ref_or_url_in_the_payload_is_never_what_is_fetched():
    body = body_of("github_pull_request", ref="refs/heads/main", pull_request__head__ref="main")
    data = json.loads(body)
    data["pull_request"]["head"]["repo"]["clone_url"] = "file:///etc"
    body = json.dumps(data).encode()
    (request,) = handle(signed("github", body), body).requests
    assert ("refs/pull/42/head", "https://github.com/octo-org/widget.git") == (
        request.ref,
        request.repo,
    )


@pytest.mark.parametrize(
    ("ref", "pull"),
    [
        ("refs/pull/7/head", True),
        ("refs/merge-requests/7/head", True),
        ("refs/pull/7/merge", False),
        ("refs/pull/0/head", False),
        ("refs/pull/7/head/../../heads/main", False),
        ("refs/heads/main", False),
    ],
)
def test_pull_ref_patterns(ref, pull):
    from sauci.core.pull_requests import is_pull_ref

    assert pull == is_pull_ref(ref)


@pytest.mark.parametrize("number", ["²", "١٢", "9" * 5000, "-1", "0x10", ""])
def test_a_number_that_is_no_pull_request_number_is_no_pull_request(number):
    """The parameters of a manual trigger (then rerun, whose event reads them)
    are whoever triggered's: str.isdigit() holds for "²", which int() refuses,
    and every page listing that build answered 500."""
    params = {"SAUCI_PR_NUMBER": number, "SAUCI_PR_BASE": "main"}
    assert pull_request_of(params) is None
