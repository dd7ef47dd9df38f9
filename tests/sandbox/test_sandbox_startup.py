"""LocalSandbox.prepare, the pre-step warm-up of cgroup v1 moves, changes
nothing but timing; and a machine that lets no step enter a cgroup is found
out by the first step, which runs without one."""

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
    while _cgroups.warming.locked() and time.monotonic() < deadline:  # it ends by itself
        time.sleep(0.01)
    assert not _cgroups.warming.locked()


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
    while _cgroups.warming.locked() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert path == _own_cgroup("pids")
    assert str(threading.get_native_id()) in tasks.read_text().split()


def _fake_v1_root(tmp_path: Path) -> Path:
    """A cgroup v1 "pids" mount where directories can be made but no thread can
    enter one (an ordinary directory: its step cgroup has no ``tasks`` file)."""
    if _own_cgroup("pids") is None:
        pytest.skip("this process is in no cgroup v1 pids controller")
    base = tmp_path / "cgroups" / "pids"
    (base / _own_cgroup("pids").lstrip("/")).mkdir(parents=True, exist_ok=True)  # type: ignore[union-attr]
    (base / "cgroup.procs").write_text("")
    return tmp_path / "cgroups"


def test_a_cgroup_no_step_may_enter_is_found_by_the_first_step(tmp_path):
    """Nothing is moved up front; the first step that cannot enter its cgroup runs
    without one, its cgroup is removed, and the sandbox stops claiming limits."""
    from sauci.sandbox import local
    from sauci.testing.logs import capture_logs

    local._warn_cgroups_unavailable.cache_clear()
    root = _fake_v1_root(tmp_path)
    sandbox = LocalSandbox(cgroup_root=root, default_processes=None)
    assert frozenset({"limits.processes"}) == sandbox.capabilities
    workspace = tmp_path / "ws"
    workspace.mkdir()
    with capture_logs() as logs:
        first = run_echo(sandbox, workspace)
        second = run_echo(sandbox, workspace)
    assert [(0, b"fine\n")] * 2 == [first, second]
    assert (None, frozenset()) == (sandbox.layout, sandbox.capabilities)
    assert ["cgroups_unavailable"] == [e["event"] for e in logs if e["log_level"] == "warning"]
    base = root / "pids" / _own_cgroup("pids").lstrip("/")  # type: ignore[union-attr]
    assert [] == [p.name for p in base.iterdir() if p.name.startswith("sauci-")]


def test_required_cgroups_no_step_may_enter_are_an_error(tmp_path):
    from sauci.exceptions import SandboxError

    sandbox = LocalSandbox(
        use_cgroups=True, cgroup_root=_fake_v1_root(tmp_path), default_processes=None
    )
    workspace = tmp_path / "ws"
    workspace.mkdir()
    with pytest.raises(
        SandboxError, match="cgroups were required but a step cannot enter its cgroup"
    ):
        run_echo(sandbox, workspace)


def test_warm_up_moves_are_made_by_one_kept_thread(monkeypatch, tmp_path):
    """After the first, a warm-up starts no thread (a thread start waits for
    the new thread to run, on the passage from one build to the next)."""
    tasks = tmp_path / "tasks"  # a plain file: each "move" writes the mover's tid there
    tasks.write_text("")

    def settled() -> None:
        deadline = time.monotonic() + 10
        while _cgroups.warming.locked() and time.monotonic() < deadline:
            time.sleep(0.001)
        assert not _cgroups.warming.locked()

    _cgroups.warm_moves(tasks)
    settled()
    started: list[object] = []
    real = threading.Thread

    def counting(*args, **kwargs):
        started.append(kwargs.get("name"))
        return real(*args, **kwargs)

    monkeypatch.setattr(_cgroups.threading, "Thread", counting)
    for _ in range(3):
        _cgroups.warm_moves(tasks)
        settled()
    assert [] == started
    assert str(_cgroups._mover[0].native_id) in tasks.read_text()
