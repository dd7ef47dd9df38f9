"""file_at_commit: a file at a commit of a local repository through the git
binary (a server's read without GitPython), against what a pusher may commit."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from sauci.exceptions import SourceError, SourceUnavailableError
from sauci.source.gitfile import file_at_commit


def _git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@x",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@x",
    }
    return subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, str]:
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q", "-b", "main")
    (root / "dir").mkdir()
    (root / "dir" / "x.yml").write_text("in dir\n")
    (root / "tab\tname.yml").write_text("tabbed\n")
    (root / "*.yml").write_text("a star\n")
    (root / "plain.yml").write_text("plain\n")
    os.symlink("plain.yml", root / "link.yml")
    _git(root, "add", "-A")
    # A submodule's entry (a gitlink) without a checkout of it.
    _git(root, "update-index", "--add", "--cacheinfo", f"160000,{'1' * 40},sub")
    _git(root, "commit", "-q", "-m", "files")
    return root, _git(root, "rev-parse", "HEAD")


def test_a_plain_file_a_nested_one_and_odd_names_are_read(repo):
    root, sha = repo
    assert "plain\n" == file_at_commit(root, sha, "plain.yml")
    assert "in dir\n" == file_at_commit(root, sha, "dir/x.yml")
    assert "tabbed\n" == file_at_commit(root, sha, "tab\tname.yml")
    assert "a star\n" == file_at_commit(root, sha, "*.yml")


@pytest.mark.parametrize(
    "path",
    [
        "dir",
        "sub",
        "missing.yml",
        ":(glob)*.yml",
        "*.y?l",
        "dir/",
        "./plain.yml",
        "../repo/plain.yml",
        "/etc/passwd",
        "",
        "dir//x.yml",
    ],
)
def test_a_directory_a_submodule_a_pattern_or_an_outside_path_is_no_file(repo, path):
    root, sha = repo
    assert None is file_at_commit(root, sha, path)


def test_a_symbolic_link_is_refused(repo):
    root, sha = repo
    with pytest.raises(SourceError, match="symbolic link"):
        file_at_commit(root, sha, "link.yml")


def test_a_sha_that_is_no_commit_is_said_so(repo):
    root, sha = repo
    blob = _git(root, "rev-parse", f"{sha}:plain.yml")
    for rev in (blob, "0" * 40):
        with pytest.raises(SourceUnavailableError, match="is not a commit in"):
            file_at_commit(root, rev, "plain.yml")
