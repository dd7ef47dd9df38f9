"""The ``kill_serve`` fault of benchmarks/chaos.py: ``sauci serve`` killed
with SIGKILL mid-step and started again on the same data dir and store.

The restarted server must end the killed build "errored" with its log
whole, requeue it once, end the step's process, and the requeued build
must pass: two builds for the push, no more, no fewer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from sauci.core.models import Status
from sauci.core.undelivered import pending_notes
from sauci.typing import Store

ROOT = Path(__file__).resolve().parents[1]
GIT = ["git", "-c", "user.name=c", "-c", "user.email=c@x"]
SEQ = b"".join(b"%d\n" % i for i in range(1, 3001))


def _git(cwd: Path, *args: str) -> None:
    subprocess.run([*GIT, *args], cwd=cwd, check=True, capture_output=True)


def _serve(data: Path, repo: Path, url: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAUCI_", "GIT_"))}
    env |= {"SAUCI_GRACE": "1s", "SAUCI_SANDBOX": "local", "SAUCI_STORE": url}
    env["PYTHONPATH"] = str(ROOT)
    cmd = [sys.executable, "-m", "sauci", "serve", "--no-ui", "--repo", str(repo)]
    proc = subprocess.Popen(
        [*cmd, "--data-dir", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(b"sauci serve: watching"):
            return proc
    raise RuntimeError(f"sauci serve did not start (exit {proc.wait()})")


def _wait(what: str, check, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.05)
    raise TimeoutError(what)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def kill_serve(
    work: Path, store: Store, url: str, i: int, *, reopen: Callable[[], Store] | None = None
) -> tuple[dict[str, int], float, str]:
    """One push, the server killed mid-step and restarted: (counts, seconds
    from the kill until both builds ended, a note or "").

    ``reopen``: the store is one process at a time (DuckDB), so it cannot be
    read while the server has it: the second build's end is its whole log on
    disk (and a second for its end to be written), the server is stopped
    (SIGTERM), and the store opened again with ``reopen`` to be checked."""
    base = work / f"serve-{i}"
    marker, again = base / "step.pid", base / "second-try"
    bare, clone, data = base / "origin.git", base / "work", base / "data"
    base.mkdir()
    _git(base, "init", "-q", "--bare", "-b", "main", str(bare))
    _git(base, "clone", "-q", str(bare), str(clone))
    _git(clone, "checkout", "-q", "-b", "main")
    (clone / ".sauci.yml").write_text(
        "steps:\n  talk:\n    run: |\n      seq 1 3000\n"
        f"      if [ ! -e {again} ]; then touch {again}; echo $$ > {marker}; sleep 300; fi\n"
    )
    _git(clone, "add", ".")
    _git(clone, "commit", "-q", "-m", "c")
    counts = {"lost": 0, "wrong": 0, "duplicates": 0, "leftovers": 0}
    serve = _serve(data, bare, url)
    restarted = None
    try:
        _git(clone, "push", "-q", "origin", "main")
        _wait("the step to start", lambda: marker.exists() and marker.read_text().strip())
        pid = int(marker.read_text())
        _wait(
            "the step's output on disk",
            lambda: any(p.stat().st_size >= len(SEQ) for p in (data / "logs").rglob("talk.log")),
        )
        serve.send_signal(signal.SIGKILL)
        serve.wait(10)
        killed = time.monotonic()
        restarted = _serve(data, bare, url)

        def ended():  # type: ignore[no-untyped-def]
            builds = store.list_builds(repo=str(bare), limit=100)
            return len(builds) >= 2 and all(b.status.done for b in builds) and builds

        def logs_whole() -> bool:
            logs = list((data / "logs").rglob("talk.log"))
            return len(logs) >= 2 and all(p.stat().st_size >= len(SEQ) for p in logs)

        try:
            if reopen is not None:
                _wait("the requeued build's log", logs_whole)
                recovered = time.monotonic() - killed
                time.sleep(1.0)
                restarted.send_signal(signal.SIGTERM)
                restarted.wait(30)
                store = reopen()
            builds = _wait("the requeued build to end", ended)
        except TimeoutError:
            if reopen is not None and restarted.poll() is None:
                restarted.send_signal(signal.SIGTERM)
                restarted.wait(30)
                store = reopen()
            builds = store.list_builds(repo=str(bare), limit=100)
            counts["lost" if len(builds) < 2 else "leftovers"] += 1
            return counts, time.monotonic() - killed, f"not ended: {len(builds)} builds"
        if reopen is None:
            recovered = time.monotonic() - killed
        if len(builds) > 2:
            counts["duplicates"] += 1
            return counts, recovered, f"{len(builds)} builds for 2"
        second, first = builds[0], builds[-1]
        wrong = first.status is not Status.ERRORED or second.status is not Status.PASSED
        for build in (first, second):
            steps = store.list_steps(build.id)
            wrong = wrong or [s.name for s in steps] != ["talk"]
            wrong = wrong or store.read_log(build.id, "talk") != SEQ
            if any(not s.status.done for s in steps):
                counts["leftovers"] += 1
        for _ in range(100):  # the sweep's SIGKILL takes a moment to land
            if not _alive(pid):
                break
            time.sleep(0.05)
        if _alive(pid) or pending_notes(data):
            counts["leftovers"] += 1
        counts["wrong"] += wrong
        note = f"{first.status.value}/{second.status.value}: {first.reason}" if wrong else ""
        return counts, recovered, note
    finally:
        for proc in (serve, restarted):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
