"""LocalSandbox.prepare, the pre-step warm-up of cgroup v1 moves, changes
nothing but timing.

(They belong with tests/sandbox/test_local.py; kept here while that file has
another owner.)"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from sauci.core.models import Step
from sauci.sandbox import _cgroups
from sauci.sandbox.local import LocalSandbox


def run_echo(sandbox: LocalSandbox, tmp_path: Path) -> tuple[int | None, bytes]:
    out = bytearray()

    class Log:
        exceeded = False

        def write(self, data: bytes) -> None:
            out.extend(data)

    result = sandbox.run(
        Step(name="s", run="echo fine"),
        tmp_path,
        Log(),
        env={"PATH": "/usr/bin:/bin"},
        cancel=threading.Event(),
        label="startup-test",
    )
    return result.exit_code, bytes(out)


def test_prepare_then_run(tmp_path):
    sandbox = LocalSandbox()
    sandbox.prepare()
    sandbox.prepare()  # at most one warm-up at a time; never an error
    assert (0, b"fine\n") == run_echo(sandbox, tmp_path)
    deadline = time.monotonic() + 10
    while _cgroups._moving and time.monotonic() < deadline:  # the warm-up ends by itself
        time.sleep(0.01)
    assert not _cgroups._moving


def test_prepare_without_cgroups_does_nothing(tmp_path):
    sandbox = LocalSandbox(use_cgroups=False)
    before = threading.active_count()
    sandbox.prepare()
    assert before == threading.active_count()
    assert (0, b"fine\n") == run_echo(sandbox, tmp_path)


def _own_cgroup(controller: str) -> str | None:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, names, path = line.split(":", 2)
        if controller in names.split(","):
            return path
    return None


def test_the_warm_up_move_changes_no_cgroup():
    """The no-op move puts a short-lived thread into this process's own v1
    cgroup: this process stays where it was, and a bad path is no error."""
    layout = LocalSandbox().layout
    if layout is None or layout.version != 1 or "pids" not in layout.bases:
        pytest.skip("no cgroup v1 pids controller here: nothing to warm")
    path = _own_cgroup("pids")
    tasks = layout.bases["pids"] / "tasks"
    _cgroups.warm_moves(tasks)
    _cgroups.warm_moves(Path("/nonexistent/tasks"))  # only a missed speed-up
    _cgroups.warm_moves(None)
    deadline = time.monotonic() + 10
    while _cgroups._moving and time.monotonic() < deadline:
        time.sleep(0.01)
    assert path == _own_cgroup("pids")
    assert str(threading.get_native_id()) in tasks.read_text().split()
