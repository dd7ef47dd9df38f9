"""``kill -9`` of ``sauci run`` in the middle of a step, on the embedded store
and on Redis: the next ``sauci run`` on the same data dir ends the build
(runner lost), ends the step's processes, and the store gets every log byte
the killed run had written to disk."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sauci.core.models import Status
from sauci.sandbox._cglayout import detect_cgroups
from sauci.storage import open_store

GIT = ["git", "-c", "user.name=Tester", "-c", "user.email=t@example.com"]


def _repo(path: Path, pipeline: str) -> Path:
    path.mkdir()
    (path / ".sauci.yml").write_text(pipeline)
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "c"]):
        subprocess.run([*GIT, *args], cwd=path, check=True, capture_output=True)
    return path


def _wait(predicate, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'sauci.db'}"
    return request.getfixturevalue("persistent_redis").url


def test_kill_9_of_sauci_run_mid_step(store_url, tmp_path, sound):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAUCI_", "GIT_"))}
    env |= {"SAUCI_DATA_DIR": str(tmp_path / "data"), "SAUCI_STORE": store_url}
    marker = tmp_path / "step.pid"
    # Lines as fast as they come, then silence: the last ones were written to
    # disk but (most likely) not sent to the store when the kill comes.
    repo = _repo(
        tmp_path / "repo",
        "steps:\n  talk:\n    run: |\n      seq 1 20000\n"
        f"      echo $$ > {marker}\n      sleep 300\n",
    )
    run = subprocess.Popen(
        [sys.executable, "-m", "sauci", "run", str(repo)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait(lambda: marker.exists() and marker.read_text().strip(), "the step to start")
        step_pid = int(marker.read_text())
        seq = b"".join(b"%d\n" % i for i in range(1, 20001))
        # Bytes still in the step's pipe die with the run that reads it; wait
        # until the run has them on disk, then kill it.
        logs = tmp_path / "data" / "logs"
        _wait(
            lambda: any(p.stat().st_size >= len(seq) for p in logs.rglob("talk.log")),
            "the run to write the step's output",
        )
        run.kill()
        run.wait(10)
        quick = _repo(tmp_path / "quick", "steps:\n  s:\n    run: echo fine\n")
        second = subprocess.run(
            [sys.executable, "-m", "sauci", "run", str(quick), "--color", "never"],
            env=env,
            capture_output=True,
            timeout=120,
        )
        assert second.returncode == 0, second.stderr.decode()
        store = open_store(store_url)
        try:
            killed = store.list_builds(repo=str(repo))
            assert [b.status for b in killed] == [Status.ERRORED]
            assert "runner lost" in killed[0].reason
            (step,) = store.list_steps(killed[0].id)
            assert Path(step.log_path).read_bytes() == seq
            if detect_cgroups()[0] is not None:  # the step ran in a cgroup of its own
                _wait(lambda: not Path(f"/proc/{step_pid}").exists(), "the step to end", 10)
                sound(store, pids=[step_pid])
            else:
                sound(store)
            assert len(store.list_builds()) == 2
        finally:
            store.close()
    finally:
        if run.poll() is None:
            run.kill()
        with contextlib.suppress(ProcessLookupError, ValueError, OSError):
            os.kill(int(marker.read_text()), signal.SIGKILL)
