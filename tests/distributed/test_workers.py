"""Real workers on two "hosts" (network namespaces), a real broker (Redis) and
store (PostgreSQL), and the server in this process: builds are shared out,
survive a killed worker, follow labels, can be cancelled from the server's
side, and a worker's SIGTERM lets its build finish.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
from polling import wait_for

from sauci.core.models import BuildRequest, Status
from sauci.core.scheduler import Scheduler

pytestmark = pytest.mark.slow


def make_repo(path: Path, pipeline: str) -> str:
    path.mkdir()
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@x",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@x",
        "PATH": os.environ["PATH"],
    }
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    (path / ".sauci.yml").write_text(pipeline)
    subprocess.run(["git", "-C", str(path), "add", "."], check=True)
    subprocess.run(["git", "-C", str(path), "commit", "-qm", "init"], check=True, env=env)
    return str(path)


def queue(store, repo: str, **params: str) -> int:
    request = BuildRequest(repo=repo, ref="refs/heads/main", event="manual", params=params)
    return Scheduler(store).enqueue(request).id


def finished(store, build_id: int):
    build = store.get_build(build_id)
    return build if build.status.done else None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purpose (its parent has not reaped it yet).
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def read_pids(path: Path) -> list[int]:
    try:
        return [int(x) for x in path.read_text().split()]
    except (OSError, ValueError):
        return []


LINES = 300


def test_twenty_builds_are_shared_between_two_hosts_and_recorded_once(cluster, tmp_path):
    repo = make_repo(
        tmp_path / "repo",
        "steps:\n  count:\n    run: |\n"
        f'      for i in $(seq 1 {LINES}); do echo "build $SAUCI_BUILD_ID line $i"; done\n'
        "      sleep 0.3\n",
    )
    store = cluster.store()
    cluster.start_worker("alpha", 0, slots=2)
    cluster.start_worker("beta", 1, slots=2)
    cluster.wait_online(store, "alpha", "beta")
    cluster.start_server()
    ids = [queue(store, repo, n=str(i)) for i in range(20)]
    builds = [wait_for(lambda i=i: finished(store, i), f"build {i} to end") for i in ids]

    assert [Status.PASSED] * 20 == [b.status for b in builds]
    assert {"alpha", "beta"} == {b.claimed_by for b in builds}
    assert 20 == len(store.list_builds(limit=100))  # nothing was queued twice
    for build in builds:
        (step,) = store.list_steps(build.id)
        expected = "".join(f"build {build.id} line {i}\n" for i in range(1, LINES + 1))
        assert expected == store.read_log(build.id, "count").decode()
        assert Status.PASSED == step.status
    # Workers read the repository through mirrors of their own: not even a
    # worktree entry was written into it.
    assert not (Path(repo) / ".git" / "worktrees").exists()
    for name in ("alpha", "beta"):
        assert any((cluster.tmp / f"worker-{name}" / "mirrors").glob("*.git"))


def second_try_repo(tmp_path):
    """A repository whose step hangs on its first try (its shell and a
    background `sleep` write their pids to the returned file) and passes on
    the second."""
    marker = tmp_path / "first-try"
    pids = tmp_path / "pids"
    repo = make_repo(
        tmp_path / "repo",
        "steps:\n  slow:\n    run: |\n"
        f"      if [ -e {marker} ]; then echo second try; exit 0; fi\n"
        f"      touch {marker}; sleep 300 & echo $$ $! > {pids}; wait\n",
    )
    return repo, pids


def test_a_killed_worker_s_build_is_handed_to_the_other_and_its_steps_are_ended(cluster, tmp_path):
    repo, pids = second_try_repo(tmp_path)
    store = cluster.store()
    doomed = cluster.start_worker("doomed", 0, slots=1)
    cluster.wait_online(store, "doomed")
    cluster.start_server(attempts=2)
    first = queue(store, repo)
    wait_for(lambda: len(read_pids(pids)) == 2, "the step to start on the first worker")
    assert "doomed" == store.get_build(first).claimed_by
    step_pids = read_pids(pids)
    cluster.start_worker("spare", 1, slots=1)
    doomed.kill()  # kill -9: no goodbye, no result

    lost = wait_for(lambda: finished(store, first), "the lost build to be ended")
    assert Status.ERRORED == lost.status
    assert lost.reason.startswith("worker lost: doomed stopped heartbeating")
    second = int(lost.reason.rsplit("requeued as build ", 1)[1])
    retried = wait_for(lambda: finished(store, second), "the requeued build to end")
    assert (Status.PASSED, "spare", 2) == (retried.status, retried.claimed_by, retried.attempt)
    assert b"second try\n" == store.read_log(second, "slow")
    assert [] == store.list_builds(status=Status.RUNNING)

    # The killed worker's step processes outlived it; its next life ends them.
    assert any(alive(pid) for pid in step_pids)
    cluster.start_worker("doomed", 0, slots=1)
    wait_for(lambda: not any(alive(pid) for pid in step_pids), "the leftover steps to end")
    assert Status.ERRORED == store.get_build(first).status  # the verdict stands


def test_a_build_waits_for_a_worker_with_its_labels(cluster, tmp_path):
    repo = make_repo(tmp_path / "repo", "runs_on: [gpu]\nsteps:\n  a:\n    run: echo on gpu\n")
    store = cluster.store()
    cluster.start_worker("plain", 0, labels="linux")
    cluster.wait_online(store, "plain")
    cluster.start_server()
    build_id = queue(store, repo)

    def waiting():
        build = store.get_build(build_id)
        return build.reason == "waiting for a worker with labels: gpu" and build

    build = wait_for(waiting, "the build to say what it waits for")
    assert (Status.QUEUED, ("gpu",)) == (build.status, build.runs_on)
    cluster.start_worker("gpu-box", 1, labels="gpu,linux")
    done = wait_for(lambda: finished(store, build_id), "the gpu build to end")
    assert (Status.PASSED, "gpu-box", None) == (done.status, done.claimed_by, done.reason)


def test_cancel_from_the_server_side_ends_the_step_tree_on_the_worker(cluster, tmp_path):
    pids = tmp_path / "pids"
    repo = make_repo(
        tmp_path / "repo",
        f"steps:\n  tree:\n    run: sleep 300 & sleep 301 & echo $$ $! > {pids}; wait\n",
    )
    store = cluster.store()
    cluster.start_worker("remote", 1)
    cluster.wait_online(store, "remote")
    cluster.start_server()
    build_id = queue(store, repo)
    wait_for(lambda: len(read_pids(pids)) == 2, "the step's processes to start")
    step_pids = read_pids(pids)
    Scheduler(store).cancel(build_id, actor="ann")  # what `sauci cancel` and the UI do

    build = wait_for(lambda: finished(store, build_id), "the cancelled build to end")
    assert (Status.CANCELLED, "cancelled by ann") == (build.status, build.reason)
    wait_for(lambda: not any(alive(pid) for pid in step_pids), "the step's processes to end")


def one_running_build(cluster, tmp_path, worker_name, seconds):
    """A worker with one slot running a build whose step sleeps ``seconds``
    and then prints "finished": (store, worker, repo, build id)."""
    started = tmp_path / "started"
    repo = make_repo(
        tmp_path / "repo",
        f"steps:\n  a:\n    run: touch {started}; sleep {seconds}; echo finished\n",
    )
    store = cluster.store()
    worker = cluster.start_worker(worker_name, 0, slots=1)
    cluster.wait_online(store, worker_name)
    cluster.start_server()
    build_id = queue(store, repo, n="1")
    wait_for(started.exists, "the step to start")
    return store, worker, repo, build_id


def test_sigterm_lets_the_running_build_finish_and_takes_no_new_one(cluster, tmp_path):
    store, worker, repo, first = one_running_build(cluster, tmp_path, "leaving", 2)
    worker.terminate()
    wait_for(lambda: [w.state for w in store.list_workers()] == ["stopping"], "the worker to stop")
    second = queue(store, repo, n="2")

    assert 0 == worker.wait(), worker.output()
    build = store.get_build(first)
    assert (Status.PASSED, "leaving") == (build.status, build.claimed_by), worker.output()
    assert b"finished\n" == store.read_log(first, "a")
    assert Status.QUEUED == store.get_build(second).status  # left for another worker
    assert [] == store.list_workers()  # a clean exit takes its record out


def test_a_worker_serves_its_metrics(cluster, tmp_path):
    import socket
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = cluster.store()
    cluster.start_worker("metered", None, extra=["--metrics-port", str(port)])
    cluster.wait_online(store, "metered")

    def scrape():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                text = r.read().decode()
        except OSError:
            return None
        return 'sauci_worker_heartbeats_total{worker="metered"}' in text and text

    wait_for(scrape, "the worker's heartbeats in its /metrics")
    # The probes compose and Kubernetes use, on the same port.
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
        assert 200 == r.status
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10) as r:
        body = json.loads(r.read())
    assert {"ready": True, "checks": {"store": "ok", "broker": "ok", "heartbeat": "ok"}} == body


def test_sigquit_ends_the_steps_and_hands_the_build_on(cluster, tmp_path):
    repo, pids = second_try_repo(tmp_path)
    store = cluster.store()
    cold = cluster.start_worker("cold", 0, slots=1)
    cluster.wait_online(store, "cold")
    cluster.start_server(attempts=2)
    first = queue(store, repo)
    wait_for(lambda: len(read_pids(pids)) == 2, "the step to start")
    step_pids = read_pids(pids)
    cold.proc.send_signal(signal.SIGQUIT)  # cold shutdown: stop now, do not wait for the build

    cold.wait()
    assert "Traceback" not in cold.output(), cold.output()
    assert not any(alive(pid) for pid in step_pids)  # ended here, not at the next start
    assert ["offline"] == [w.state for w in store.list_workers()]
    cluster.start_worker("spare", 1, slots=1)
    lost = wait_for(lambda: finished(store, first), "the build to be handed on")
    assert lost.reason.startswith("worker lost: cold stopped heartbeating"), lost.reason
    second = int(lost.reason.rsplit("requeued as build ", 1)[1])
    retried = wait_for(lambda: finished(store, second), "the requeued build to end")
    assert (Status.PASSED, "spare") == (retried.status, retried.claimed_by)


def test_ctrl_c_once_is_a_warm_shutdown_that_exits_0(cluster, tmp_path):
    store, worker, _repo, build_id = one_running_build(cluster, tmp_path, "tty", 1)
    worker.proc.send_signal(signal.SIGINT)

    assert 0 == worker.wait(), worker.output()
    assert Status.PASSED == store.get_build(build_id).status
    assert [] == store.list_workers()
