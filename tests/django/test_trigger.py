"""The Trigger action builds only registered repositories and branches they have."""

from __future__ import annotations

import subprocess

import pytest
from django.urls import reverse

from sauci.contrib.django.branches import BranchError, branch_exists, branch_ref
from sauci.core.models import Repo


def _trigger(client, repo, branch, params=""):
    return client.post(reverse("sauci:trigger"), {"repo": repo, "branch": branch, "params": params})


@pytest.mark.django_db
class TestTrigger:
    def test_an_existing_branch_of_a_registered_repository_is_built(
        self, admin_client, store, registered_repo
    ):
        """The one case that queues a build: registered repository, branch it has."""
        response = _trigger(admin_client, registered_repo, "feature/x", "A=1")
        assert 302 == response.status_code
        build = store.list_builds()[0]
        assert (registered_repo, "refs/heads/feature/x", {"A": "1"}) == (
            build.repo,
            build.ref,
            dict(build.params),
        )

    def test_a_double_click_queues_one_build(self, admin_client, store, registered_repo):
        first = _trigger(admin_client, registered_repo, "main", "A=1")
        second = _trigger(admin_client, registered_repo, "main", "A=1")
        (build,) = store.list_builds()
        assert first["Location"] == second["Location"] == reverse("sauci:build", args=[build.id])
        _trigger(admin_client, registered_repo, "main", "A=2")  # another request: its own build
        assert 2 == len(store.list_builds())

    def test_a_full_branch_ref_is_accepted(self, admin_client, store, registered_repo):
        """refs/heads/main names the same branch as main."""
        assert 302 == _trigger(admin_client, registered_repo, "refs/heads/main").status_code
        assert "refs/heads/main" == store.list_builds()[0].ref

    @pytest.mark.parametrize("path", ["/etc", "/", "/srv/app.git"])
    def test_an_unregistered_path_is_refused_and_nothing_is_queued(
        self, admin_client, store, registered_repo, path
    ):
        """Any path on the server (/etc included) is not a repository to build."""
        response = _trigger(admin_client, path, "main")
        assert 404 == response.status_code
        assert b"not a repository registered with SauCI" in response.content
        assert [] == store.list_builds()

    def test_an_unregistered_git_repository_is_refused(self, admin_client, store, git_repo):
        """A real git repository on the server is still refused until it is registered."""
        assert 404 == _trigger(admin_client, str(git_repo), "main").status_code
        assert [] == store.list_builds()

    def test_a_missing_branch_is_refused(self, admin_client, store, registered_repo):
        response = _trigger(admin_client, registered_repo, "nope")
        assert 404 == response.status_code
        assert b"has no branch 'nope'" in response.content
        assert [] == store.list_builds()

    @pytest.mark.parametrize(
        "branch",
        [
            "",
            "-x",
            "--upload-pack=touch /tmp/sauci-pwned",
            "a..b",
            "has space",
            "ends.lock",
            "x~1",
            "HEAD^",
            "a\x00b",
            "refs/tags/v1",
            "x" * 300,
        ],
    )
    def test_a_branch_name_git_refuses_is_a_400(self, admin_client, store, registered_repo, branch):
        """Names git's check-ref-format refuses, options, other refs: 400, nothing queued."""
        response = _trigger(admin_client, registered_repo, branch)
        assert 400 == response.status_code
        assert [] == store.list_builds()

    def test_a_name_that_looks_like_an_option_reaches_git_as_no_option(
        self, admin_client, store, registered_repo, tmp_path
    ):
        """A branch name is only ever passed as refs/heads/<name>: no option injection."""
        marker = tmp_path / "pwned"
        _trigger(admin_client, registered_repo, f"--upload-pack=touch {marker}")
        _trigger(admin_client, registered_repo, f"--output={marker}")
        assert not marker.exists()

    def test_a_viewer_cannot_trigger(self, viewer_client, store, registered_repo):
        assert 403 == _trigger(viewer_client, registered_repo, "main").status_code
        assert [] == store.list_builds()

    def test_a_repository_known_by_url_is_asked_with_ls_remote(self, admin_client, store, git_repo):
        """A registered URL (no mirror yet) has its branches listed by git ls-remote."""
        url = f"file://{git_repo}"
        store.save_repo(Repo(id="app-url", location=url, added_at=1.0))
        assert 302 == _trigger(admin_client, url, "main").status_code
        assert 404 == _trigger(admin_client, url, "nope").status_code
        assert [url] == [b.repo for b in store.list_builds()]


class TestBranchRef:
    def test_a_leading_dash_is_refused_though_the_ref_format_allows_it(self):
        """git check-ref-format accepts refs/heads/-x; git refuses it as a branch name."""
        assert 0 == subprocess.run(["git", "check-ref-format", "refs/heads/-x"]).returncode
        with pytest.raises(BranchError, match="not a valid branch name"):
            branch_ref("-x")

    def test_names_become_full_refs(self):
        assert ("refs/heads/main", "refs/heads/a/b") == (
            branch_ref(" main "),
            branch_ref("refs/heads/a/b"),
        )

    def test_only_full_branch_refs_are_looked_up(self, git_repo):
        with pytest.raises(BranchError):
            branch_exists(str(git_repo), "--all")
