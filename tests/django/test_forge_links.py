"""Links from a build to its commit, branch and compare view on the forge, from
the per-repository FORGES setting; hostile branch names stay in the URL path."""

from __future__ import annotations

import pytest
from django.core.checks import run_checks
from django.urls import reverse

from sauci.contrib.django.forges import forge_links, valid_forge
from sauci.core.models import Build, BuildRequest

SHA, OLD = "a" * 40, "b" * 40


def _build(**kw):
    values = {"id": 1, "repo": "/srv/git/app.git", "ref": "refs/heads/main", "sha": SHA}
    return Build(**(values | kw))


@pytest.mark.parametrize(
    ("form", "commit", "branch", "compare"),
    [
        ("github", "/commit/" + SHA, "/tree/main", f"/compare/{OLD}...{SHA}"),
        ("gitlab", "/-/commit/" + SHA, "/-/tree/main", f"/-/compare/{OLD}...{SHA}"),
        ("gitea", "/commit/" + SHA, "/src/branch/main", f"/compare/{OLD}...{SHA}"),
    ],
)
def test_the_built_in_forms(form, commit, branch, compare):
    base = "https://forge.example/acme/app"
    links = forge_links({"/srv/git/app.git": f"{form}:{base}/"}, _build(old_sha=OLD))
    assert {"commit": base + commit, "branch": base + branch, "compare": base + compare} == links


def test_a_pattern_and_templates_with_the_repository_name():
    forges = {"/srv/git/*": {"commit": "https://cgit.example/{name}/commit/?id={sha}"}}
    assert {"commit": f"https://cgit.example/app/commit/?id={SHA}"} == forge_links(forges, _build())
    assert {} == forge_links(forges, _build(repo="/elsewhere/app.git"))


def test_what_a_build_lacks_has_no_link():
    forges = {"/srv/git/app.git": "github:https://github.com/acme/app"}
    # a tag: no branch; no old sha (a new branch's push has zeros): no compare
    links = forge_links(forges, _build(ref="refs/tags/v1", old_sha="0" * 40))
    assert ["commit"] == list(links)
    assert {} == forge_links(forges, _build(sha="", ref="refs/tags/v1"))


@pytest.mark.parametrize(
    "branch",
    ['x"><img src=x onerror=alert(1)>', "a b?c#d", "../../../evil", "javascript:alert(1)"],
)
def test_a_hostile_branch_stays_quoted_in_the_path(branch):
    """Hostile: branch names come from pushers."""
    links = forge_links(
        {"/srv/git/app.git": "github:https://github.com/acme/app"},
        _build(ref=f"refs/heads/{branch}", sha="not-hex<script>"),
    )
    assert ["branch"] == list(links)
    assert links["branch"].startswith("https://github.com/acme/app/tree/")
    assert not any(c in links["branch"] for c in '"<> ?#')


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("github:https://github.com/a/b", True),
        ("gitlab:http://gitlab.local/a/b", True),
        ("github:javascript:alert(1)", False),
        ("bitbucket:https://x", False),
        ({"commit": "https://x/{sha}"}, True),
        ({"commits": "https://x/{sha}"}, False),
        ({}, False),
    ],
)
def test_valid_forge_values(value, ok):
    assert ok is valid_forge(value)


def test_a_template_that_is_not_http_gives_no_link():
    forges = {"/srv/git/app.git": {"commit": "javascript:alert('{sha}')"}}
    assert {} == forge_links(forges, _build())


def test_a_bad_setting_is_a_system_check_error(settings, store):
    settings.SAUCI = {"STORE": store, "FORGES": {"/srv/git/app.git": "github:ftp://x"}}
    assert any("FORGES" in str(m.msg) for m in run_checks())


@pytest.mark.django_db
def test_the_build_page_links_to_the_forge(viewer_client, store, settings):
    settings.SAUCI = {
        "STORE": store,
        "FORGES": {"/srv/git/*": "gitea:https://gitea.example/acme/app"},
    }
    build = store.create_build(
        BuildRequest(repo="/srv/git/app.git", ref="refs/heads/feature/x", sha=SHA, old_sha=OLD)
    )
    html = viewer_client.get(reverse("sauci:build", args=[build.id])).content.decode()
    base = "https://gitea.example/acme/app"
    assert (
        f'<a class="forge" href="{base}/commit/{SHA}" rel="nofollow noopener noreferrer">' in html
    )
    assert f'href="{base}/src/branch/feature/x"' in html
    assert f'href="{base}/compare/{OLD}...{SHA}"' in html
