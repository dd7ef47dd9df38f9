"""What a GitSource read of a commit is kept: a branch that has not moved is
resolved without git, one that moved is read again, and a file at a commit is
read from git once (the server's gate, claims and runner share one source)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from sauci.exceptions import SourceError
from sauci.source import git as gitmod
from sauci.source import gitfile
from sauci.source.git import GitSource

GIT = ["git", "-c", "user.name=T", "-c", "user.email=t@example.com"]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        [*GIT, *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".sauci.yml").write_text("steps:\n  a:\n    run: 'true'\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "one")
    return repo


def counted(monkeypatch: pytest.MonkeyPatch, module: object) -> list[tuple[str, ...]]:
    calls: list[tuple[str, ...]] = []
    real = module.run_git  # type: ignore[attr-defined]

    def run_git(*args: str, **kwargs: object) -> str:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "run_git", run_git)
    return calls


def test_a_branch_is_resolved_by_git_once_until_it_moves(repo, monkeypatch):
    source = GitSource(repo)
    calls = counted(monkeypatch, gitmod)
    first = source.resolve("refs/heads/main")
    assert (git(repo, "rev-parse", "HEAD"), first) == (first, source.resolve("refs/heads/main"))
    assert 1 == len(calls)
    assert first == source.resolve_commit("refs/heads/main").sha  # the runner's lookup: none
    assert 1 == len(calls)
    (repo / "f").write_text("x")
    git(repo, "add", "f")
    git(repo, "commit", "-q", "-m", "two")
    moved = source.resolve("refs/heads/main")
    assert (git(repo, "rev-parse", "HEAD"), 2) == (moved, len(calls))


def test_a_file_at_a_commit_is_read_from_git_once(repo, monkeypatch):
    source = GitSource(repo)
    sha = source.resolve("refs/heads/main")
    calls = counted(monkeypatch, gitfile)
    text = source.read_file(sha, ".sauci.yml")
    assert text == source.read_file(sha, ".sauci.yml")
    assert None is source.read_file(sha, "absent.yml")
    assert None is source.read_file(sha, "absent.yml")
    assert 3 == len(calls)  # ls-tree and cat-file for the file, ls-tree for the absent one
    assert text == (repo / ".sauci.yml").read_text()


def test_a_symbolic_link_is_refused_every_time(repo):
    (repo / "link.yml").symlink_to("/etc/passwd")
    git(repo, "add", "link.yml")
    git(repo, "commit", "-q", "-m", "link")
    source = GitSource(repo)
    sha = source.resolve("refs/heads/main")
    for _ in range(2):
        with pytest.raises(SourceError, match="symbolic link"):
            source.read_file(sha, "link.yml")


def test_a_name_that_is_not_a_commit_is_still_an_error(repo):
    with pytest.raises(SourceError, match="is not a commit"):
        GitSource(repo).resolve("refs/heads/nope")
