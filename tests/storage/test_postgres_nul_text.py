"""A NUL in text a pusher wrote (a commit message, an author) on PostgreSQL,
which refuses NUL in text: the build is queued with it as U+FFFD, and text
that reaches the store with a NUL anyway is a StoreError, never a driver's."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from sauci.core.models import BuildRequest
from sauci.core.scheduler import Scheduler
from sauci.exceptions import StoreError
from sauci.source.objects import commit_of, open_repo
from sauci.storage import open_store


def _commit_with_nul(repo: Path) -> str:
    """A commit whose author and message hold a NUL (git commit refuses to
    write one; a pushed object may hold anything)."""
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    run = {"cwd": repo, "check": True, "capture_output": True}
    tree = subprocess.run(["git", "mktree"], input=b"", **run).stdout.decode().strip()
    body = f"tree {tree}\nauthor A\x00B <a@b> 0 +0000\ncommitter C <c@d> 0 +0000\n\nfix\x00bad\n"
    made = subprocess.run(
        ["git", "hash-object", "-t", "commit", "-w", "--stdin", "--literally"],
        input=body.encode(),
        **run,
    )
    return made.stdout.decode().strip()


def test_a_commit_read_with_nul_in_its_message_is_queued_on_postgres(
    postgres_url: str, tmp_path: Path
) -> None:
    sha = _commit_with_nul(tmp_path / "r")
    with open_repo(tmp_path / "r") as repo:
        commit = commit_of(repo, sha)
    assert ("A\ufffdB <a@b>", "fix\ufffdbad") == (commit.author, commit.message)
    store = open_store(postgres_url)
    request = BuildRequest(
        repo="/r", ref="refs/heads/main", sha=sha, message=commit.message, author=commit.author
    )
    build = Scheduler(store).enqueue(request)
    assert "fix\ufffdbad" == store.get_build(build.id).message


def test_a_message_with_nul_is_refused_as_a_store_error(postgres_url: str) -> None:
    """A guard: the store's own refusal is a SauCIError (a 503 at the webhook,
    not a driver's DataError and a 500)."""
    store = open_store(postgres_url)
    request = BuildRequest(
        repo="/r", ref="refs/heads/main", sha="a" * 40, message="fix\x00bad", author="x"
    )
    with pytest.raises(StoreError):
        Scheduler(store).enqueue(request)
