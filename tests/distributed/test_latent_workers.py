"""Workers on demand, down to zero: a server with a broker and no worker starts a
``sauci worker`` process when a build waits, the worker runs it and stops after
its idle time; a launch that fails is retried, counted and shown, and the build
still runs. Real Redis, PostgreSQL and worker processes (tests/distributed/cluster.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cluster import ended, start_server
from polling import wait_for

from sauci.core.events import subscribe
from sauci.core.models import BuildRequest, Status
from sauci.core.scheduler import Scheduler

pytestmark = pytest.mark.slow


def make_repo(path: Path) -> str:
    path.mkdir()
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t"}
    env.update(GIT_COMMITTER_EMAIL="t@x", PATH=os.environ["PATH"])
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    (path / ".sauci.yml").write_text("steps:\n  hello:\n    run: echo built by $SAUCI_BUILD_ID\n")
    subprocess.run(["git", "-C", str(path), "add", "."], check=True)
    subprocess.run(["git", "-C", str(path), "commit", "-qm", "init"], check=True, env=env)
    return str(path)


def queue(store, repo: str) -> int:
    request = BuildRequest(repo=repo, ref="refs/heads/main", event="manual")
    return Scheduler(store).enqueue(request).id


def test_a_build_with_no_worker_is_run_by_a_launched_worker_that_then_exits(cluster, tmp_path):
    repo = make_repo(tmp_path / "repo")
    store = cluster.store()
    server = start_server(cluster, launch_workers=1, launch_idle=1.0)
    scaler = server.runner.autoscaler
    handles = []
    start = scaler.launcher.start
    scaler.launcher.start = lambda name: handles.append(start(name)) or handles[-1]
    assert [] == store.list_workers()
    assert [] == scaler.launched  # no work: nothing runs but the server

    build_id = queue(store, repo)
    build = wait_for(lambda: ended(store, build_id), "the build to finish")
    assert Status.PASSED == build.status, build.reason
    assert build.claimed_by.startswith("launched-")
    log = store.read_log(build_id, "hello").decode()
    assert f"built by {build_id}" in log

    # Idle for launch_idle: the worker stops cleanly, and forgets its record.
    wait_for(lambda: not scaler.launched, "the launched worker to exit when idle")
    assert [0] == [h.wait(30) for h in handles]  # a clean exit
    wait_for(lambda: store.list_workers() == [], "the worker's record to go")
    assert (1, 0) == (scaler.started, scaler.failures)

    def shown():  # server.json is rewritten about once a second
        status = json.loads((tmp_path / "server" / "server.json").read_text())
        return status["launcher"]["running"] == 0 and status["launcher"]

    expected = {"max": 1, "running": 0, "started": 1, "failures": 0, "last_failure": None}
    assert expected == wait_for(shown, "server.json to show the worker gone")


def test_a_failed_launch_is_retried_counted_and_the_build_still_runs(cluster, tmp_path):
    from sauci.monitoring.metrics import Metrics

    metrics = Metrics()
    unsubscribe = subscribe(metrics.on_event)
    repo = make_repo(tmp_path / "repo")
    store = cluster.store()
    mark = tmp_path / "failed-once"
    # The first launch exits 3 before its worker comes online; the next one works.
    command = (
        f"sh -c 'test -e {mark} || {{ touch {mark}; exit 3; }}; "
        f"exec {sys.executable} -m sauci worker --idle-exit 1'"
    )
    try:
        server = start_server(cluster, launch_workers=1, launch_command=command)
        scaler = server.runner.autoscaler
        build_id = queue(store, repo)
        build = wait_for(lambda: ended(store, build_id), "the build to finish")
        assert Status.PASSED == build.status, build.reason
        assert 1 == scaler.failures
        assert 2 == scaler.started
        assert "exit status 3" in (scaler.last_failure or "")
        assert 1.0 == metrics.worker_launch_failures._value.get()
        assert 2.0 == metrics.workers_launched._value.get()
        wait_for(lambda: not scaler.launched, "the launched worker to exit when idle")
    finally:
        unsubscribe()


def test_a_command_that_cannot_start_is_counted_and_the_build_waits(cluster, tmp_path):
    repo = make_repo(tmp_path / "repo")
    store = cluster.store()
    server = start_server(
        cluster, launch_workers=2, launch_command=str(tmp_path / "no-such-worker")
    )
    scaler = server.runner.autoscaler
    build_id = queue(store, repo)
    wait_for(lambda: scaler.failures >= 2, "two launches to fail")
    assert 0 == scaler.started
    assert "cannot start" in (scaler.last_failure or "")
    assert Status.QUEUED == store.get_build(build_id).status  # not lost: it waits
    assert scaler.failing >= 2  # failures in a row: the back-off doubles with them

    def status_line():  # what `sauci status` says, once server.json shows the failures
        out = subprocess.run(
            [sys.executable, "-m", "sauci", "status", "--data-dir", str(tmp_path / "server")],
            capture_output=True,
            text=True,
            env={**os.environ, "SAUCI_STORE": cluster.pg.url()},
            timeout=60,
        ).stdout
        return next((line for line in out.splitlines() if "launched workers" in line), None)

    line = wait_for(status_line, "sauci status to show the launcher")
    assert line.startswith("launched workers: 0/2 running, 0 started, "), line
    assert "failed to start, last failure: launched-" in line
    assert "cannot start" in line


class FakeLauncher:
    def start(self, name):
        raise OSError("no such command")


def test_launch_failures_back_off_doubling_up_to_the_cap(tmp_path):
    from sauci.core.config import Settings
    from sauci.distributed import Autoscaler
    from sauci.storage.memory import MemoryStore

    store = MemoryStore()
    store.create_build(BuildRequest(repo="r", ref="refs/heads/main", event="manual"))
    now = [0.0]
    scaler = Autoscaler(
        store=store,
        settings=Settings(data_dir=tmp_path),
        launcher=FakeLauncher(),
        max_workers=1,
        live_workers=list,
        backoff=(1.0, 4.0),
        monotonic=lambda: now[0],
    )
    tries = []
    for tick in range(200):  # 20 s in steps of 0.1 s
        now[0] = tick / 10
        before = scaler.failures
        scaler.tick()
        if scaler.failures > before:
            tries.append(now[0])
    assert [0.0, 1.0, 3.0, 7.0, 11.0, 15.0, 19.0] == tries


class CountingLauncher:
    def __init__(self):
        self.names = []

    def start(self, name):
        self.names.append(name)
        return name

    def alive(self, handle):
        return True

    def failed(self, handle):
        return None

    def stop(self, handle):
        pass


def test_one_worker_is_launched_per_slots_the_live_and_starting_workers_lack(tmp_path):
    from sauci.core.config import Settings
    from sauci.core.models import Worker
    from sauci.distributed import Autoscaler
    from sauci.storage.memory import MemoryStore

    store = MemoryStore()
    launcher = CountingLauncher()
    live = [Worker(name="busy", slots=2, running=(90, 91), heartbeat_at=1.0)]
    scaler = Autoscaler(
        store=store,
        settings=Settings(data_dir=tmp_path, slots=2),
        launcher=launcher,
        max_workers=3,
        live_workers=lambda: live,
    )
    scaler.tick()
    assert [] == launcher.names  # no work: nothing is started
    for _ in range(3):
        store.create_build(BuildRequest(repo="r", ref="refs/heads/main", event="manual"))
    for _ in range(5):
        scaler.tick()
    # 3 builds, the live worker all busy: two launched workers of 2 slots each.
    assert 2 == len(launcher.names)
    assert launcher.names[0].startswith("launched-") and launcher.names[0].endswith("-1")
    assert launcher.names[1].endswith("-2")


def test_a_build_waiting_for_room_launches_a_worker_though_slots_are_free(tmp_path):
    from sauci.core.config import Settings
    from sauci.core.models import Worker
    from sauci.distributed import Autoscaler
    from sauci.storage.memory import MemoryStore

    store = MemoryStore()
    launcher = CountingLauncher()
    live = [Worker(name="small", slots=4, running=(90,), heartbeat_at=1.0, cpus=1, memory=2**30)]
    scaler = Autoscaler(
        store=store,
        settings=Settings(data_dir=tmp_path, slots=4),
        launcher=launcher,
        max_workers=3,
        live_workers=lambda: live,
    )
    build = store.create_build(BuildRequest(repo="r", ref="refs/heads/main", event="manual"))
    scaler.tick()
    assert [] == launcher.names  # three slots free, and no reason to think it cannot run
    store.update_build(build.id, reason="waiting for a worker: no worker with 2 CPUs free")
    for _ in range(3):
        scaler.tick()
    assert 1 == len(launcher.names)  # one, while it starts


LOGGED = """
from pathlib import Path
from sauci._logging import configure
configure(level="info", fmt="json")
from sauci.core.config import Settings
from sauci.core.models import BuildRequest
from sauci.distributed import Autoscaler
from sauci.storage.memory import MemoryStore

class Refused:
    def start(self, name):
        raise OSError("no such command")

store = MemoryStore()
store.create_build(BuildRequest(repo="r", ref="refs/heads/main", event="manual"))
Autoscaler(
    store=store, settings=Settings(data_dir=Path({tmp!r})), launcher=Refused(),
    max_workers=1, live_workers=list,
).tick()
"""


def test_a_failed_launch_is_one_warning_in_the_state_change_log(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", LOGGED.format(tmp=str(tmp_path))],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    lines = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    failed = [e for e in lines if e["event"] == "worker_launch_failed"]
    assert 1 == len(failed), proc.stderr
    assert "warning" == failed[0]["level"]
    assert failed[0]["worker"].startswith("launched-")
    assert "cannot start: no such command" == failed[0]["why"]
    assert 1.0 == failed[0]["retry_in"]
    assert [] == [e for e in lines if e["event"] == "state_change_log_failed"]


def test_launch_workers_without_a_broker_is_refused(tmp_path):
    from sauci.app.server import build_server
    from sauci.core.config import Settings
    from sauci.exceptions import ConfigError
    from sauci.storage.memory import MemoryStore

    with pytest.raises(ConfigError, match="needs --broker"):
        build_server(
            store=MemoryStore(),
            settings=Settings(data_dir=tmp_path, launch_workers=1, sandbox="local"),
        )
