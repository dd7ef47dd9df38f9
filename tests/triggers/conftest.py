"""Real git repositories for trigger tests, isolated from the machine's git configuration."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

Git = Callable[..., str]


@pytest.fixture(autouse=True)
def isolated_git(monkeypatch, tmp_path_factory):
    """No global or system git config (a global core.hooksPath would hide our hooks)."""
    empty = tmp_path_factory.mktemp("gitconfig") / "config"
    empty.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Tess Ter")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "tess@example.com")
    monkeypatch.setenv("USER", "alice")
    for name in ("GL_USERNAME", "GL_USER", "GIT_DIR", "GIT_WORK_TREE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def git() -> Git:
    """Run git in a directory; returns stdout, fails the test with stderr on error."""

    def run(cwd: Path, *args: str, check: bool = True) -> str:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
        if check and proc.returncode != 0:
            pytest.fail(f"git {' '.join(args)} failed: {proc.stderr}")
        return proc.stdout.strip()

    return run


@pytest.fixture
def commit(git) -> Callable[..., str]:
    """Write a file and commit it; returns the new sha."""

    def make(repo: Path, name: str = "f", text: str | None = None, message: str = "change") -> str:
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text if text is not None else f"{message}\n")
        git(repo, "add", name)
        git(repo, "commit", "-q", "-m", message)
        return git(repo, "rev-parse", "HEAD")

    return make


@pytest.fixture
def work_repo(tmp_path, git) -> Path:
    repo = tmp_path / "work"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    return repo


@pytest.fixture
def remote(tmp_path, git, commit) -> tuple[Path, Path]:
    """A bare repository and a clone of it with one commit pushed on main."""
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(bare), str(clone))
    git(clone, "checkout", "-q", "-b", "main")
    commit(clone, message="first")
    git(clone, "push", "-q", "origin", "main")
    return bare, clone
