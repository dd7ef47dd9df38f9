"""The build page and the build list show a pull-request build as such
(number, base <- head), its names escaped, its recording parameters hidden;
and the webhook view queues one for a registered repository."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from django.urls import reverse

from sauci.core.models import BuildRequest
from sauci.core.pull_requests import PullRequest
from sauci.core.scheduler import Scheduler

HEAD = 'x"><script>alert(1)</script>'
TITLE = "<img src=x onerror=alert(2)>"


def queue_pull_request(store):
    pr = PullRequest(number=12, base="main", head=HEAD, title=TITLE)
    request = BuildRequest(
        repo="/srv/app.git", ref="refs/pull/12/head", sha="a" * 40, event="pull_request",
        params={**pr.params(), "level": "full"},
    )  # fmt: skip
    return Scheduler(store).enqueue(request)


@pytest.mark.django_db
def test_the_build_page_names_the_pull_request_escaped(viewer_client, store, settings):
    settings.SAUCI = {
        **settings.SAUCI,
        "FORGES": {"/srv/app.git": "github:https://github.com/acme/app"},
    }
    build = queue_pull_request(store)
    text = viewer_client.get(reverse("sauci:build", args=[build.id])).content.decode()
    assert (
        '<dd class="pull-request">#12 main &lt;- x&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;'
        ' · &lt;img src=x onerror=alert(2)&gt; <a class="forge"'
    ) in text
    assert "<script>alert(1)" not in text and "<img src=x" not in text
    assert '<a class="forge" href="https://github.com/acme/app/pull/12"' in text
    assert "<code>level=full</code>" in text
    assert "SAUCI_PR_" not in text


@pytest.mark.django_db
def test_the_build_list_shows_pr_number_and_branches(viewer_client, store):
    queue_pull_request(store)
    text = viewer_client.get(reverse("sauci:builds")).content.decode()
    assert '<span class="pull-request">PR #12 main &lt;- x&quot;&gt;&lt;script&gt;' in text


@pytest.mark.parametrize(
    ("form", "page"),
    [("github", "/pull/12"), ("gitlab", "/-/merge_requests/12"), ("gitea", "/pulls/12")],
)
def test_the_forge_link_of_a_pull_request(form, page):
    from sauci.contrib.django.forges import forge_links
    from sauci.core.models import Build

    pr = PullRequest(number=12, base="main", head=HEAD)
    build = Build(id=1, repo="/r.git", ref="refs/pull/12/head", sha="a" * 40,
                  event="pull_request", params=pr.params())  # fmt: skip
    links = forge_links({"/r.git": f"{form}:https://forge.example/a/r"}, build)
    assert "https://forge.example/a/r" + page == links["pull"]
    assert "branch" not in links


@pytest.mark.django_db
def test_the_webhook_view_queues_a_pull_request_of_a_registered_repository(client, store, settings):
    from sauci.core.models import Repo

    settings.SAUCI = {**settings.SAUCI, "WEBHOOK_SECRET": "s"}
    url = "https://github.com/octo-org/widget.git"
    store.save_repo(Repo(id="widget", location=url, added_at=1.0))
    body = json.dumps({
        "action": "reopened",
        "pull_request": {"number": 3, "title": "t", "head": {"ref": "f", "sha": "b" * 40},
                         "base": {"ref": "main", "sha": "c" * 40}},
        "repository": {"clone_url": url}, "sender": {"login": "x"},
    }).encode()  # fmt: skip
    digest = hmac.new(b"s", body, hashlib.sha256).hexdigest()
    response = client.post(
        reverse("sauci:webhook"), body, content_type="application/json",
        headers={"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "d1",
                 "X-Hub-Signature-256": f"sha256={digest}"},
    )  # fmt: skip
    assert 202 == response.status_code, response.content
    (build,) = store.list_builds()
    assert ("refs/pull/3/head", "pull_request", "b" * 40) == (build.ref, build.event, build.sha)
