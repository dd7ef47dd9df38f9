"""Commits read through GitPython (sauci.source.objects) survive what a pusher
can put in them: an encoding no codec knows, control characters, and a remote
named like an option or through git's ext:: helper is refused."""

from __future__ import annotations

import subprocess

import pytest

from sauci.exceptions import SourceError
from sauci.source.objects import commit_of, ls_remote, open_repo


def git(cwd, *args, stdin=None):
    return subprocess.run(
        ["git", "-c", "user.name=T", "-c", "user.email=t@e.com", *args],
        cwd=cwd, input=stdin, check=True, capture_output=True,
    ).stdout.strip()  # fmt: skip


@pytest.fixture
def repo(tmp_path):
    repo = tmp_path / "r"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "commit", "-q", "--allow-empty", "-m", "root")
    return repo


def test_a_commit_with_an_unknown_encoding_and_control_characters_is_read(repo):
    tree = git(repo, "rev-parse", "HEAD^{tree}").decode()
    raw = (
        f"tree {tree}\n"
        "author Ev\x1bil <e@x> 1700000000 +0000\n"
        "committer Ev\x1bil <e@x> 1700000000 +0000\n"
        "encoding x-no-such-codec\n"
        "\n"
        "title \x1b[31mred\x07\n"
    ).encode()
    sha = git(repo, "hash-object", "-t", "commit", "-w", "--stdin", stdin=raw).decode()
    with open_repo(repo) as opened:
        commit = commit_of(opened, sha)
    assert (sha, "Ev\x1bil <e@x>", "title \x1b[31mred\x07") == (
        commit.sha, commit.author, commit.message
    )  # fmt: skip


def test_a_missing_commit_is_a_source_error(repo):
    with open_repo(repo) as opened, pytest.raises(SourceError, match="is not a commit in"):
        commit_of(opened, "1" * 40)


def test_ls_remote_refuses_helpers_and_options(repo):
    assert "refs/heads/main" in dict((n, s) for s, n in ls_remote(str(repo), "--heads"))
    for hostile in ("ext::sh -c touch% /tmp/pwned", "--upload-pack=touch /tmp/pwned"):
        with pytest.raises(SourceError):
            ls_remote(hostile)
