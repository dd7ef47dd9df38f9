"""On cgroup v1 a LocalSandbox step is started by a thread of its own that
enters the step's cgroup and ends there: one move per controller, none back
(a move back waits for an RCU grace period), the caller's thread stays where
it was, and the step is born inside its cgroup with its process limit."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

import sauci.sandbox._proctree as proctree
from sauci.core.models import Limits, Step
from sauci.exceptions import SandboxError
from sauci.sandbox.local import LocalSandbox
from sauci.sandbox.namespace import NamespaceSandbox


class Log:
    def __init__(self) -> None:
        self.data = b""
        self.exceeded = False

    def write(self, data: bytes) -> None:
        self.data += data


def _v1_sandbox() -> LocalSandbox:
    try:
        sandbox = LocalSandbox(use_cgroups=True, grace=0.5, cgroup_prefix="sauci-test-start-")
    except SandboxError as exc:
        pytest.skip(f"cgroups cannot be created on this machine: {exc}")
    if sandbox.layout is None or sandbox.layout.version != 1:
        pytest.skip("cgroup v1 only: v2 starts the step through cgroup.procs")
    return sandbox


def _own_cgroups() -> str:
    return Path(f"/proc/self/task/{threading.get_native_id()}/cgroup").read_text()


def test_one_move_per_controller_and_none_back(tmp_path, monkeypatch):
    sandbox = _v1_sandbox()
    moves: list[tuple[str, str, int]] = []
    real_write = proctree._write

    def recording(path, value):
        if Path(path).name == "tasks":
            moves.append((str(path), value, threading.get_native_id()))
        real_write(path, value)

    monkeypatch.setattr(proctree, "_write", recording)
    before = _own_cgroups()
    log = Log()
    script = (
        "cat /proc/self/cgroup; "
        "echo PIDS=$(cat /sys/fs/cgroup/pids$(grep :pids: /proc/self/cgroup | cut -d: -f3)/pids.max)"
    )
    result = sandbox.run(
        Step(name="s", run=script, limits=Limits(processes=7)),
        tmp_path,
        log,  # type: ignore[arg-type]
        env={"PATH": os.environ["PATH"]},
        cancel=threading.Event(),
        label="start-thread",
    )
    assert 0 == result.exit_code, log.data
    assert before == _own_cgroups()  # the caller never moved
    # Into each of the step's cgroups once, by one thread that is not the
    # caller's; never back out to a base cgroup.
    assert moves and len(moves) == len({path for path, _, _ in moves})
    assert all("/sauci-test-start-" in path for path, _, _ in moves)
    assert 1 == len({tid for _, _, tid in moves})
    assert moves[0][2] != threading.get_native_id()
    assert b"sauci-test-start-" in log.data  # the step was born inside
    assert b"PIDS=7" in log.data


def test_a_step_forking_up_to_its_process_limit_right_away_is_not_refused(tmp_path):
    """The starting thread no longer counts against pids.max once the step runs."""
    sandbox = _v1_sandbox()
    log = Log()
    result = sandbox.run(
        Step(name="s", run="true & true & wait; echo ok", limits=Limits(processes=3)),
        tmp_path,
        log,  # type: ignore[arg-type]
        env={"PATH": os.environ["PATH"]},
        cancel=threading.Event(),
        label="start-limit",
    )
    assert (0, b"ok\n") == (result.exit_code, log.data[-3:]), log.data


def test_a_step_that_must_die_with_its_starter_is_started_by_the_callers_thread():
    """bwrap's --die-with-parent ends the step with the thread that started it."""
    assert LocalSandbox.start_on_own_thread
    assert not NamespaceSandbox.start_on_own_thread
