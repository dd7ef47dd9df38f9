"""LocalSandbox start-up helpers: cgroup detection started ahead of time
(prefetch_cgroups) and the pre-step warm-up (prepare) change nothing but timing.

(They belong with tests/sandbox/test_local.py; kept here while that file has
another owner.)"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sauci.core.models import Step
from sauci.sandbox import _cgprobe, _warm, local
from sauci.sandbox.local import LocalSandbox, prefetch_cgroups


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


def test_a_prefetched_detection_is_taken_once(tmp_path, monkeypatch):
    calls: list[str] = []
    real = _cgprobe.probe

    def counting(root):
        calls.append(str(root))
        return real(root)

    monkeypatch.setattr(_cgprobe, "probe", counting)
    prefetch_cgroups()
    prefetch_cgroups()  # a second call while one is pending starts nothing
    first = LocalSandbox()
    second = LocalSandbox()  # the prefetched answer was used up: probes itself
    assert 2 == len(calls)
    assert first.layout == second.layout
    assert first.capabilities == second.capabilities
    assert (0, b"fine\n") == run_echo(first, tmp_path)


def test_a_prefetch_for_another_root_is_not_taken(tmp_path, monkeypatch):
    monkeypatch.setattr(local, "_warned", True)  # this test is not about the warning
    prefetch_cgroups(tmp_path)  # no cgroup file system there
    sandbox = LocalSandbox(cgroup_root=tmp_path)
    assert sandbox.layout is None
    assert frozenset() == sandbox.capabilities
    assert "not mounted" in sandbox.cgroups_reason
    assert str(tmp_path) not in _cgprobe._prefetched


def test_prepare_then_run(tmp_path):
    sandbox = LocalSandbox()
    sandbox.prepare()
    sandbox.prepare()  # at most one warm-up at a time; never an error
    assert (0, b"fine\n") == run_echo(sandbox, tmp_path)
    deadline = time.monotonic() + 10
    while _warm._moving and time.monotonic() < deadline:  # the warm-up ends by itself
        time.sleep(0.01)
    assert not _warm._moving


def test_prepare_without_cgroups_does_nothing(tmp_path):
    sandbox = LocalSandbox(use_cgroups=False)
    before = threading.active_count()
    sandbox.prepare()
    assert before == threading.active_count()
    assert (0, b"fine\n") == run_echo(sandbox, tmp_path)


def test_exiting_during_a_prefetch_leaves_no_probe_cgroup():
    """The probe makes and removes a cgroup; an exit meanwhile must not cut it short."""
    import subprocess
    import sys

    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from sauci.sandbox.local import prefetch_cgroups; prefetch_cgroups()",
        ]
    )
    assert 0 == proc.wait(timeout=60)
    left = [p for p in Path("/sys/fs/cgroup").glob(f"*/sauciprobe-{proc.pid}-*")]
    assert [] == left


def _own_cgroup(controller: str) -> str | None:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, names, path = line.split(":", 2)
        if controller in names.split(","):
            return path
    return None


def test_the_early_warm_up_finds_this_process_v1_cgroup_and_changes_nothing():
    from sauci.sandbox._warm import own_tasks_file, warm_moves

    tasks = own_tasks_file()
    path = _own_cgroup("pids")
    if path is None or not Path("/sys/fs/cgroup/pids/tasks").exists():
        assert tasks is None  # cgroup v2 or no pids controller: nothing to warm
        return
    assert Path("/sys/fs/cgroup/pids", path.lstrip("/"), "tasks") == tasks
    warm_moves(tasks)
    warm_moves(Path("/nonexistent/tasks"))  # only a missed speed-up
    warm_moves(None)
    time.sleep(0.1)
    assert path == _own_cgroup("pids")
    assert str(threading.get_native_id()) in tasks.read_text().split()
