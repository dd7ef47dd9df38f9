"""SauCI's git hooks, driven by real `git push` and `git commit`: every pushed ref
lands in the spool, deletions do not, an existing hook keeps working, and a
broken spool never blocks a push."""

from __future__ import annotations

import os
import subprocess

import pytest

from sauci.core.models import BuildRequest
from sauci.exceptions import ConfigError, SourceError
from sauci.triggers import hook_installed, install_hook, is_bare, read_requests, remove_hook
from sauci.triggers.hooks import CHAINED_SUFFIX, HOOK_MARKER

ZERO = "0" * 40


def spooled(spool) -> list[BuildRequest]:
    return [request for _path, request in read_requests(spool)]


def write_hook(path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)


def test_bare_repo_gets_post_receive_and_work_tree_gets_post_commit(tmp_path, remote, work_repo):
    bare, _clone = remote
    assert is_bare(bare) and not is_bare(work_repo)
    assert bare / "hooks" / "post-receive" == install_hook(bare, tmp_path / "spool")
    assert work_repo / ".git" / "hooks" / "post-commit" == install_hook(
        work_repo, tmp_path / "spool"
    )


def test_push_of_three_branches_a_tag_and_a_deletion_spools_exactly_the_pushed_refs(
    tmp_path, git, commit, remote
):
    bare, clone = remote
    spool = tmp_path / "spool"
    install_hook(bare, spool)
    old_main = git(clone, "rev-parse", "main")
    new_main = commit(clone, message="second")
    git(clone, "branch", "feature/a")
    git(clone, "checkout", "-q", "-b", "b")
    b_sha = commit(clone, message="on b")
    git(clone, "tag", "-a", "-m", "release", "v1.0")
    tag_object = git(clone, "rev-parse", "v1.0")
    git(clone, "push", "-q", "origin", "main", "feature/a", "b", "v1.0")
    git(clone, "push", "-q", "origin", ":feature/a")  # a deletion: nothing to build

    repo = str(bare.resolve())
    expected = [
        BuildRequest(repo=repo, event="push", priority=10, pusher="alice", ref=ref, sha=sha,
                     old_sha=old)
        for old, sha, ref in sorted([
            (old_main, new_main, "refs/heads/main"),
            (ZERO, new_main, "refs/heads/feature/a"),
            (ZERO, b_sha, "refs/heads/b"),
            (ZERO, tag_object, "refs/tags/v1.0"),
        ], key=lambda t: t[2])
    ]  # fmt: skip
    actual = sorted(spooled(spool), key=lambda r: r.ref)
    assert expected == actual
    assert [] == list((spool / "tmp").iterdir())
    assert [] == list((spool / "bad").iterdir())
    # The deletion's file was read, found empty of builds, and removed.
    assert 1 == len(list((spool / "new").iterdir()))


def test_each_push_is_its_own_file_in_time_order(tmp_path, git, commit, remote):
    bare, clone = remote
    spool = tmp_path / "spool"
    install_hook(bare, spool)
    shas = []
    for n in range(3):
        shas.append(commit(clone, message=f"c{n}"))
        git(clone, "push", "-q", "origin", "main")
    requests = spooled(spool)
    assert shas == [r.sha for r in requests]
    assert shas[:2] == [r.old_sha for r in requests[1:]]


def test_existing_hook_is_chained_first_with_the_same_stdin(tmp_path, git, commit, remote):
    bare, clone = remote
    hook = bare / "hooks" / "post-receive"
    seen = tmp_path / "seen-by-original"
    original = f'#!/bin/sh\ncat > "{seen}"\necho original ran >&2\n'
    write_hook(hook, original)
    install_hook(bare, tmp_path / "spool")
    assert original == (bare / "hooks" / ("post-receive" + CHAINED_SUFFIX)).read_text()

    sha = commit(clone, message="second")
    old = git(clone, "rev-parse", "origin/main")
    push = subprocess.run(
        ["git", "push", "origin", "main"], cwd=clone, capture_output=True, text=True
    )
    assert 0 == push.returncode
    assert "original ran" in push.stderr
    assert f"{old} {sha} refs/heads/main\n" == seen.read_text()
    assert [sha] == [r.sha for r in spooled(tmp_path / "spool")]


def test_chained_hook_exit_status_is_passed_through_and_the_push_still_spools(
    tmp_path, git, commit, remote
):
    bare, clone = remote
    hook = bare / "hooks" / "post-receive"
    write_hook(hook, "#!/bin/sh\ncat >/dev/null\necho rejected by policy >&2\nexit 1\n")
    install_hook(bare, tmp_path / "spool")
    sha = commit(clone, message="second")
    push = subprocess.run(
        ["git", "push", "origin", "main"], cwd=clone, capture_output=True, text=True
    )
    # post-receive runs after the refs moved: its status cannot reject a push.
    assert 0 == push.returncode and "rejected by policy" in push.stderr
    assert sha == git(bare, "rev-parse", "main")
    assert [sha] == [r.sha for r in spooled(tmp_path / "spool")]

    # Run directly, SauCI's hook exits with the chained hook's status.
    direct = subprocess.run(
        [str(hook)], input=f"{ZERO} {sha} refs/heads/x\n", cwd=bare, capture_output=True, text=True
    )
    assert 1 == direct.returncode


def test_hook_without_chained_hook_exits_zero_and_never_blocks_when_spool_is_gone(
    tmp_path, commit, remote
):
    bare, clone = remote
    spool = tmp_path / "spool"
    install_hook(bare, spool)
    (spool / "new").rmdir()
    (spool / "new").write_text("not a directory")  # the rename into new/ must fail
    commit(clone, message="second")
    push = subprocess.run(
        ["git", "push", "origin", "main"], cwd=clone, capture_output=True, text=True
    )
    assert 0 == push.returncode
    assert "sauci: warning: cannot write to" in push.stderr
    assert [] == list((spool / "tmp").iterdir())  # nothing left behind


def test_a_missing_spool_directory_only_warns(tmp_path, remote):
    bare, _clone = remote
    spool = tmp_path / "spool"
    hook = install_hook(bare, spool)
    for sub in ("tmp", "new", "bad"):
        (spool / sub).rmdir()
    spool.rmdir()
    direct = subprocess.run(
        [str(hook)], input=f"{ZERO} {'1' * 40} refs/heads/x\n", cwd=bare,
        capture_output=True, text=True,
    )  # fmt: skip
    assert 0 == direct.returncode
    assert "sauci: warning: cannot create a file in" in direct.stderr


def test_post_commit_spools_each_branch_commit_with_its_parent(tmp_path, git, commit, work_repo):
    spool = tmp_path / "spool"
    install_hook(work_repo, spool)
    first = commit(work_repo, message="first")
    second = commit(work_repo, message="second")
    git(work_repo, "checkout", "-q", "--detach")
    commit(work_repo, message="detached: on no branch, not built")
    repo = str(work_repo.resolve())
    expected = [
        BuildRequest(repo=repo, ref="refs/heads/main", sha=first, old_sha=ZERO, event="push",
                     priority=10, pusher="alice"),
        BuildRequest(repo=repo, ref="refs/heads/main", sha=second, old_sha=first, event="push",
                     priority=10, pusher="alice"),
    ]  # fmt: skip
    assert expected == spooled(spool)


def test_post_commit_chains_an_existing_hook(tmp_path, commit, work_repo):
    marker = tmp_path / "original-ran"
    write_hook(work_repo / ".git" / "hooks" / "post-commit", f'#!/bin/sh\ntouch "{marker}"\n')
    install_hook(work_repo, tmp_path / "spool")
    sha = commit(work_repo, message="first")
    assert marker.exists()
    assert [sha] == [r.sha for r in spooled(tmp_path / "spool")]


def test_core_hooks_path_is_respected(tmp_path, git, commit, work_repo):
    git(work_repo, "config", "core.hooksPath", "githooks")
    hook = install_hook(work_repo, tmp_path / "spool")
    assert work_repo / "githooks" / "post-commit" == hook
    sha = commit(work_repo, message="first")
    assert [sha] == [r.sha for r in spooled(tmp_path / "spool")]


def test_install_is_idempotent_and_never_chains_itself(tmp_path, remote):
    bare, _clone = remote
    hook = bare / "hooks" / "post-receive"
    write_hook(hook, "#!/bin/sh\nexit 0\n")
    install_hook(bare, tmp_path / "spool")
    first = hook.read_text()
    install_hook(bare, tmp_path / "spool")
    assert first == hook.read_text()
    assert HOOK_MARKER in first.splitlines()
    assert "#!/bin/sh\nexit 0\n" == (hook.parent / ("post-receive" + CHAINED_SUFFIX)).read_text()
    assert os.access(hook, os.X_OK)


def test_remove_restores_the_original_hook(tmp_path, remote):
    bare, _clone = remote
    hook = bare / "hooks" / "post-receive"
    write_hook(hook, "#!/bin/sh\necho mine\n")
    install_hook(bare, tmp_path / "spool")
    assert remove_hook(bare) is True
    assert "#!/bin/sh\necho mine\n" == hook.read_text()
    assert not (hook.parent / ("post-receive" + CHAINED_SUFFIX)).exists()
    assert remove_hook(bare) is False  # not ours: left alone
    assert hook.exists()


def test_remove_without_original_leaves_no_hook(tmp_path, work_repo):
    hook = install_hook(work_repo, tmp_path / "spool")
    assert remove_hook(work_repo) is True
    assert not hook.exists()
    assert remove_hook(work_repo) is False


def test_foreign_hook_with_an_existing_chained_file_is_not_overwritten(tmp_path, remote):
    bare, _clone = remote
    write_hook(bare / "hooks" / "post-receive", "#!/bin/sh\necho new\n")
    write_hook(bare / "hooks" / ("post-receive" + CHAINED_SUFFIX), "#!/bin/sh\necho old\n")
    with pytest.raises(SourceError, match="already exists"):
        install_hook(bare, tmp_path / "spool")
    assert "#!/bin/sh\necho new\n" == (bare / "hooks" / "post-receive").read_text()


def test_paths_with_spaces_and_quotes_survive_shell_quoting(tmp_path, git, commit):
    repo = tmp_path / "it's a repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    spool = tmp_path / "spool $HOME `x`"
    install_hook(repo, spool)
    sha = commit(repo, message="first")
    assert [(str(repo.resolve()), sha)] == [(r.repo, r.sha) for r in spooled(spool)]


def test_bad_kind_and_non_repository_are_clear_errors(tmp_path, work_repo):
    with pytest.raises(ConfigError, match="hook kind must be"):
        install_hook(work_repo, tmp_path / "spool", kind="pre-push")  # type: ignore[arg-type]
    (tmp_path / "plain").mkdir()
    with pytest.raises(SourceError, match="not a git repository"):
        install_hook(tmp_path / "plain", tmp_path / "spool")


def test_hook_installed_knows_our_hooks_only(tmp_path, remote, work_repo):
    bare, _clone = remote
    write_hook(bare / "hooks" / "post-receive", "#!/bin/sh\nexit 0\n")
    assert not hook_installed(bare)
    install_hook(bare, tmp_path / "spool")
    assert hook_installed(bare) and hook_installed(bare, "receive")
    assert not hook_installed(bare, "commit")
    install_hook(work_repo, tmp_path / "spool", kind="receive")  # pushes into a work tree
    assert hook_installed(work_repo)  # either kind counts: such a repo needs no polling
    remove_hook(work_repo, kind="receive")
    assert not hook_installed(work_repo)
    assert not hook_installed(tmp_path / "not-a-repo")
