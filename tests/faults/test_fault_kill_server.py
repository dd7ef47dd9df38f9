"""``kill -9`` of ``sauci serve`` in the middle of a build, its store on Redis:
the restarted server ends the build (requeued once), ends its step's
processes, gives the store every log byte the killed server had on disk, and
the requeued build passes. One build more, not two."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from polling import wait_for

from sauci.core.models import Status
from sauci.storage import open_store

GIT = ["git", "-c", "user.name=Pusher", "-c", "user.email=p@example.com"]
SEQ = b"".join(b"%d\n" % i for i in range(1, 20001))


def _git(cwd: Path, *args: str) -> None:
    subprocess.run([*GIT, *args], cwd=cwd, check=True, capture_output=True)


def _serve(data: Path, repo: Path, store_url: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sauci",
            "serve",
            "--no-ui",
            "--repo",
            str(repo),
            "--data-dir",
            str(data),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "SAUCI_GRACE": "1s", "SAUCI_SANDBOX": "local", "SAUCI_STORE": store_url},
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(b"sauci serve: watching"):
            return proc
    raise AssertionError(f"sauci serve did not start (exit {proc.wait()})")


def test_kill_9_of_the_server_mid_build(persistent_redis, tmp_path, sound):
    marker, again = tmp_path / "step.pid", tmp_path / "second-try"
    pipeline = (
        "steps:\n  talk:\n    run: |\n      seq 1 20000\n"
        f"      if [ ! -e {again} ]; then touch {again}; echo $$ > {marker}; sleep 300; fi\n"
    )
    bare, work = tmp_path / "origin.git", tmp_path / "work"
    _git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    _git(tmp_path, "clone", "-q", str(bare), str(work))
    _git(work, "checkout", "-q", "-b", "main")
    (work / ".sauci.yml").write_text(pipeline)
    _git(work, "add", ".")
    _git(work, "commit", "-q", "-m", "first")
    data = tmp_path / "data"
    url = persistent_redis.url
    serve = _serve(data, bare, url)
    restarted = None
    try:
        _git(work, "push", "-q", "origin", "main")
        wait_for(lambda: marker.exists() and marker.read_text().strip(), "the step to start")
        step_pid = int(marker.read_text())
        logs = data / "logs"
        wait_for(
            lambda: any(p.stat().st_size >= len(SEQ) for p in logs.rglob("talk.log")),
            "the server to write the step's output",
        )
        serve.send_signal(signal.SIGKILL)
        serve.wait(10)
        restarted = _serve(data, bare, url)
        store = open_store(url)
        try:
            done = wait_for(
                lambda: (
                    [b for b in store.list_builds() if b.status.done] == store.list_builds()
                    and len(store.list_builds()) == 2
                    and store.list_builds()
                ),
                "the requeued build to end",
            )
            second, first = done  # newest first
            assert first.status is Status.ERRORED and "requeued as build" in first.reason
            assert second.status is Status.PASSED, second.reason
            for build in done:
                assert len(store.list_steps(build.id)) == 1
                assert store.read_log(build.id, "talk") == SEQ
            wait_for(lambda: not Path(f"/proc/{step_pid}").exists(), "the old step to end", 30)
            sound(store, pids=[step_pid])
        finally:
            store.close()
    finally:
        for proc in (serve, restarted):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
