"""A worker's workspace (a worktree of its mirror, one per build) is deleted
in the background once the build is over, so that the worker's slot is free
for its next build at once; wait_for_tidying (what a stopping worker calls)
waits for the deletion."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

from sauci.source.mirrors import MirrorSource
from sauci.source.workspaces import wait_for_tidying

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]


def upstream(path: Path) -> Path:
    path.mkdir()
    (path / ".sauci.yml").write_text("steps: {}\n")
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "x"]):
        subprocess.run([*GIT, *args], cwd=path, check=True, capture_output=True)
    return path


def worktrees(mirror: Path) -> str:
    done = subprocess.run(
        ["git", "worktree", "list"], cwd=mirror, check=True, capture_output=True, text=True
    )
    return done.stdout


def test_a_build_over_frees_its_workspace_in_the_background(tmp_path, monkeypatch):
    source = MirrorSource(f"file://{upstream(tmp_path / 'up')}", tmp_path / "mirrors")
    lease = source.reserve(tmp_path / "workspaces")
    path = lease.reset(source.resolve("refs/heads/main"))
    assert (path / ".sauci.yml").exists()
    assert str(path) in worktrees(source.mirror_path)
    remove = source.remove
    go = threading.Event()

    def slow_remove(dest: Path) -> None:
        go.wait(10)
        remove(dest)

    monkeypatch.setattr(source, "remove", slow_remove)
    lease.release(tidy=True)  # returns while the deletion waits
    assert path.exists()
    assert not wait_for_tidying(0.05)
    go.set()
    assert wait_for_tidying(10)
    assert not path.exists()
    assert str(path) not in worktrees(source.mirror_path)
    lease.release(tidy=True)  # a second release changes nothing


def test_a_release_without_tidy_deletes_at_once(tmp_path):
    source = MirrorSource(f"file://{upstream(tmp_path / 'up')}", tmp_path / "mirrors")
    lease = source.reserve(tmp_path / "workspaces")
    path = lease.reset(source.resolve("refs/heads/main"))
    lease.release()
    assert not path.exists()
    assert str(path) not in worktrees(source.mirror_path)
