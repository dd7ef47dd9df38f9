"""GitSource's cheaper paths give the answers of the git calls they replace: the
root in one call, the branch from the HEAD file, sha and commit in one call."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from sauci.exceptions import SourceError
from sauci.source import git as gitmod
from sauci.source.git import GitSource, find_repo_root

GIT = ["git", "-c", "user.name=T", "-c", "user.email=t@example.com"]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        [*GIT, *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "sub").mkdir(parents=True)
    (repo / "sub" / "f").write_text("x")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first line\n\nbody")
    return repo


def test_with_commit_from_a_subdirectory(repo):
    source, commit = GitSource.with_commit(repo / "sub")
    assert repo == source.repo
    assert (repo / ".git") == source.git_dir
    assert git(repo, "rev-parse", "HEAD") == commit.sha
    assert "refs/heads/main" == commit.ref
    assert "T <t@example.com>" == commit.author
    assert "first line\n\nbody" == commit.message
    assert GitSource(repo).commit("HEAD") == commit


def test_with_commit_outside_a_repository(tmp_path):
    with pytest.raises(SourceError, match="not inside a git repository"):
        GitSource.with_commit(tmp_path)
    with pytest.raises(SourceError, match="does not exist"):
        GitSource.with_commit(tmp_path / "missing")


def test_the_ref_from_the_head_file_matches_git(repo):
    source = GitSource(repo)
    assert git(repo, "symbolic-ref", "-q", "HEAD") == source.current_ref()
    git(repo, "checkout", "-q", "--detach")
    assert "" == source.current_ref()
    git(repo, "checkout", "-q", "-b", "feature/x")
    assert "refs/heads/feature/x" == source.current_ref()


def test_a_linked_worktree_has_its_own_head(repo, tmp_path):
    git(repo, "worktree", "add", "-q", "--detach", str(tmp_path / "wt"))
    wt = GitSource(tmp_path / "wt")
    assert tmp_path / "wt" == wt.repo
    assert "" == wt.current_ref()
    assert "refs/heads/main" == GitSource(repo).current_ref()


def test_a_bare_repository(repo, tmp_path):
    bare = tmp_path / "bare.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(bare)], check=True)
    assert bare == find_repo_root(bare)
    source, commit = GitSource.with_commit(bare)
    assert bare == source.repo
    assert "refs/heads/main" == commit.ref
    assert git(repo, "rev-parse", "HEAD") == commit.sha


def test_inside_the_git_directory_is_still_an_error(repo):
    with pytest.raises(SourceError):
        GitSource(repo / ".git")


def test_resolve_commit_is_resolve_and_commit(repo):
    git(repo, "tag", "-a", "v1", "-m", "a tag message")
    source = GitSource(repo)
    for rev in ("HEAD", "refs/heads/main", "main", "v1", git(repo, "rev-parse", "HEAD")):
        commit = source.resolve_commit(rev)
        assert source.resolve(rev) == commit.sha, rev
        assert "first line\n\nbody" == commit.message, rev
        assert "" == commit.ref
    for bad in ("nope", "-p", "HEAD~5"):
        with pytest.raises(SourceError, match="is not a commit in"):
            source.resolve_commit(bad)


def test_a_branch_is_resolved_again_after_each_push_and_known_commits_need_no_git(
    repo, monkeypatch
):
    import sauci.source.git as sauci_git

    source = GitSource(repo)
    first = source.resolve_commit("refs/heads/main")
    assert git(repo, "rev-parse", "HEAD") == first.sha
    (repo / "g").write_text("y")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "second")
    second = source.resolve_commit("refs/heads/main")  # the ref file moved on
    assert git(repo, "rev-parse", "HEAD") == second.sha != first.sha
    assert "second" == second.message

    git(repo, "pack-refs", "--all")  # no loose ref file: git is asked, same answer
    assert second == source.resolve_commit("refs/heads/main")

    calls = []
    real = sauci_git.run_git
    monkeypatch.setattr(sauci_git, "run_git", lambda *a, **k: calls.append(a) or real(*a, **k))
    assert first == source.resolve_commit(first.sha)
    assert [] == calls  # a known commit, by sha: from memory
    git(repo, "tag", "-a", "-m", "t", "v1", first.sha)
    assert first.sha == source.resolve_commit("refs/tags/v1").sha  # tags always go to git
    assert calls


def worktree_entries(repo: Path) -> list[str]:
    entries = repo / ".git" / "worktrees"
    return sorted(p.name for p in entries.iterdir()) if entries.exists() else []


def test_a_plain_checkout_is_removed_without_git(repo, tmp_path, monkeypatch):
    source = GitSource(repo)
    dest = tmp_path / "ws"
    source.checkout(git(repo, "rev-parse", "HEAD"), dest)
    (dest / "made-by-a-step").write_text("x")
    started: list[tuple[str, ...]] = []
    real = gitmod.GitCommand

    def recording(args, *a, **k):
        started.append(tuple(args))
        return real(args, *a, **k)

    monkeypatch.setattr(gitmod, "GitCommand", recording)
    source.remove(dest)
    assert [] == started
    assert not dest.exists()
    assert [] == worktree_entries(repo)
    assert 1 == len(git(repo, "worktree", "list").splitlines())


def test_a_checkout_whose_git_file_was_changed_is_left_to_git(repo, tmp_path):
    """A step pointed the workspace's .git at another worktree's entry: that
    other worktree must survive, and git removes this one by its own records."""
    source = GitSource(repo)
    sha = git(repo, "rev-parse", "HEAD")
    mine, other = tmp_path / "mine", tmp_path / "other"
    source.checkout(sha, mine)
    source.checkout(sha, other)
    (mine / ".git").write_text((other / ".git").read_text())
    source.remove(mine)
    assert not mine.exists()
    assert other.exists() and (other / ".git").is_file()
    assert ["other"] == worktree_entries(repo)
    assert sha == git(other, "rev-parse", "HEAD")
    source.remove(other)
    assert [] == worktree_entries(repo)


def test_a_locked_checkout_is_left_to_git(repo, tmp_path):
    source = GitSource(repo)
    dest = tmp_path / "ws"
    source.checkout(git(repo, "rev-parse", "HEAD"), dest)
    git(repo, "worktree", "lock", str(dest))
    source.remove(dest)  # git's --force --force removes a locked worktree too
    assert not dest.exists()
    assert [] == worktree_entries(repo)
