"""A `sauci run` killed with SIGKILL mid-step: the next `sauci run` on the same
data dir ends its build and steps as errored (runner lost) and ends the step's
processes, instead of leaving them running forever (sauci.app.reconcile)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sauci.core.lost import alive
from sauci.core.models import Status
from sauci.sandbox._cglayout import detect_cgroups
from sauci.storage import open_store

GIT = ["git", "-c", "user.name=Tester", "-c", "user.email=t@example.com"]


def make_repo(path: Path, pipeline: str) -> Path:
    path.mkdir()
    (path / ".sauci.yml").write_text(pipeline)
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "c"]):
        subprocess.run([*GIT, *args], cwd=path, check=True, capture_output=True)
    return path


def worktrees(repo: Path) -> int:
    listed = subprocess.run(
        ["git", "worktree", "list", "--porcelain"], cwd=repo, capture_output=True, text=True
    ).stdout
    return listed.count("worktree ")


def wait_for(predicate, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAUCI_", "GIT_"))}
    env["SAUCI_DATA_DIR"] = str(tmp_path / "data")
    return env


def sauci(*args: str, env: dict[str, str], **kwargs) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "sauci", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    )


def test_the_next_run_ends_what_a_killed_run_left(tmp_path: Path, env: dict[str, str]) -> None:
    marker = tmp_path / "step.pid"
    slow = make_repo(
        tmp_path / "slow",
        f"steps:\n  install:\n    run: echo ok\n  hang:\n    needs: [install]\n"
        f"    run: echo $$ > {marker}; sleep 300\n",
    )
    first = sauci("run", str(slow), env=env)
    try:
        wait_for(lambda: marker.exists() and marker.read_text().strip(), "the step to start")
        step_pid = int(marker.read_text())
        first.kill()  # kill -9: no handler runs
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    store = open_store(f"sqlite:///{tmp_path / 'data' / 'sauci.db'}")
    try:
        (left,) = store.list_builds()
        assert Status.RUNNING is left.status
        workspaces = tmp_path / "data" / "workspaces"
        (ws,) = workspaces.glob(f"run-{first.pid}-*")  # named by the killed run's pid
        assert 2 == worktrees(slow)  # the workspace is a worktree of the user's repository
        assert alive(step_pid), "the step outlives a kill -9 of its runner"

        quick = make_repo(tmp_path / "quick", "steps:\n  s:\n    run: echo fine\n")
        second = sauci("run", str(quick), "--color", "never", env=env)
        _out, err = second.communicate(timeout=120)
        assert 0 == second.returncode, err.decode()
        assert f"build {left.id} runner lost" in err.decode()

        ended = store.get_build(left.id)
        assert Status.ERRORED is ended.status
        assert f"pid {first.pid}" in (ended.reason or "")
        steps = {s.name: s for s in store.list_steps(left.id)}
        assert Status.PASSED is steps["install"].status  # what finished keeps its result
        assert Status.ERRORED is steps["hang"].status
        assert "runner lost" in (steps["hang"].reason or "")
        assert steps["hang"].finished_at is not None
        if detect_cgroups()[0] is not None:  # the step ran in a cgroup of its own
            wait_for(lambda: not alive(step_pid), "the left step to end", timeout=10)
        assert not ws.exists()
        assert [] == list(workspaces.iterdir())  # the second run's own is gone too
        assert 1 == worktrees(slow)  # and the user's repository lists it no more
        newest = store.list_builds(limit=1)[0]
        assert Status.PASSED is newest.status
    finally:
        store.close()
        with contextlib.suppress(ProcessLookupError, ValueError, OSError):
            os.kill(int(marker.read_text()), signal.SIGKILL)


def test_a_live_run_is_left_alone(tmp_path: Path, env: dict[str, str]) -> None:
    marker = tmp_path / "step.pid"
    slow = make_repo(tmp_path / "slow", f"steps:\n  hang:\n    run: echo $$ > {marker}; sleep 30\n")
    first = sauci("run", str(slow), env=env)
    try:
        wait_for(lambda: marker.exists() and marker.read_text().strip(), "the step to start")
        quick = make_repo(tmp_path / "quick", "steps:\n  s:\n    run: echo fine\n")
        second = sauci("run", str(quick), env=env)
        _, err = second.communicate(timeout=120)
        assert 0 == second.returncode, err.decode()
        assert b"runner lost" not in err
        assert alive(int(marker.read_text()))
        assert list((tmp_path / "data" / "workspaces").glob(f"run-{first.pid}-*"))  # still its
        store = open_store(f"sqlite:///{tmp_path / 'data' / 'sauci.db'}")
        try:
            assert Status.RUNNING is store.list_builds()[-1].status
        finally:
            store.close()
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
