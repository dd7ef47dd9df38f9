"""``kill -9`` of a ``sauci worker`` mid-step, with a real broker (Redis) and
store (PostgreSQL) and the server in this process (tests/distributed's
cluster helpers, workers on this machine): the lost build ends "errored"
and is requeued once, the new build passes on another worker, no step is
left running, no duplicate build, the killed step's process ends, and every
log byte on the killed worker's disk is in the store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "distributed"))

from cluster import Cluster, start_postgres, start_redis
from polling import wait_for

from sauci.core.models import BuildRequest, Status
from sauci.core.scheduler import Scheduler

SEQ = b"".join(b"%d\n" % i for i in range(1, 2001))


@pytest.fixture(scope="module")
def services():
    pytest.importorskip("celery")
    redis = start_redis(["127.0.0.1"])
    pg = None
    try:
        pg = start_postgres(["127.0.0.1"])
        yield redis, pg
    finally:
        if pg is not None:
            pg.stop()
        redis.stop()


@pytest.fixture
def local_cluster(services, tmp_path):
    redis, pg = services
    cluster = Cluster(None, redis, pg, tmp_path)  # type: ignore[arg-type]
    try:
        yield cluster
    finally:
        cluster.close()


def _repo(path: Path, pipeline: str) -> str:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@x", "-C", str(path)]
    path.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    (path / ".sauci.yml").write_text(pipeline)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    return str(path)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_kill_9_of_a_worker_mid_step(local_cluster, tmp_path, sound):
    marker, again = tmp_path / "step.pid", tmp_path / "second-try"
    repo = _repo(
        tmp_path / "repo",
        "steps:\n  talk:\n    run: |\n      seq 1 2000\n"
        f"      if [ ! -e {again} ]; then touch {again}; echo $$ > {marker}; sleep 300; fi\n",
    )
    store = local_cluster.store()
    doomed = local_cluster.start_worker("doomed", None, slots=1)
    local_cluster.wait_online(store, "doomed")
    local_cluster.start_server(attempts=2)
    request = BuildRequest(repo=repo, ref="refs/heads/main", event="manual")
    first = Scheduler(store).enqueue(request).id
    wait_for(lambda: marker.exists() and marker.read_text().strip(), "the step to start")
    step_pid = int(marker.read_text())
    logs = tmp_path / "worker-doomed" / "logs"
    wait_for(
        lambda: any(p.stat().st_size >= len(SEQ) for p in logs.rglob("talk.log")),
        "the worker to write the step's output",
    )
    local_cluster.start_worker("spare", None, slots=1)
    doomed.kill()  # kill -9: no goodbye, no result

    lost = wait_for(
        lambda: store.get_build(first).status.done and store.get_build(first),
        "the lost build to be ended",
    )
    assert lost.status is Status.ERRORED
    assert lost.reason.startswith("worker lost: doomed"), lost.reason
    second = int(lost.reason.rsplit("requeued as build ", 1)[1])
    retried = wait_for(
        lambda: store.get_build(second).status.done and store.get_build(second),
        "the requeued build to end",
    )
    assert (Status.PASSED, "spare") == (retried.status, retried.claimed_by), retried.reason
    assert SEQ == store.read_log(second, "talk")
    assert [first, second] == sorted(b.id for b in store.list_builds(repo=repo))

    # The killed worker's next life ends its leftover step and hands the
    # store what its data dir still owes.
    local_cluster.start_worker("doomed", None, slots=1)
    wait_for(lambda: not _alive(step_pid), "the leftover step to end")
    wait_for(lambda: store.read_log(first, "talk") == SEQ, "the killed step's log in the store")
    sound(store, pids=[step_pid])
