"""A repository with only a GitHub workflow (no .sauci.yml) under a server
with a broker: the dispatcher reads it with the same loader as the workers,
so the build is sent and runs, instead of ending "no pipeline file"."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from polling import wait_for

from sauci.app import git_sources
from sauci.core.config import Settings
from sauci.core.models import BuildRequest, Status
from sauci.core.scheduler import Scheduler
from sauci.distributed import CeleryRunner
from sauci.storage.memory import MemoryStore
from sauci.workflows import load_for_build

WORKFLOW = """\
on: push
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - run: echo "from the workflow on $RUNNER_OS"
"""


def make_workflow_repo(path: Path, workflow: str = WORKFLOW) -> str:
    (path / ".github" / "workflows").mkdir(parents=True)
    (path / ".github" / "workflows" / "ci.yml").write_text(workflow)
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t"}
    env |= {"GIT_COMMITTER_EMAIL": "t@x", "PATH": os.environ["PATH"]}
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    subprocess.run(["git", "-C", str(path), "add", "."], check=True)
    subprocess.run(["git", "-C", str(path), "commit", "-qm", "init"], check=True, env=env)
    return str(path)


class FakeBroker:
    def __init__(self) -> None:
        self.sent: list[tuple[int, str]] = []

    def check(self) -> None:
        pass

    def send(self, build_id: int, queue: str) -> None:
        self.sent.append((build_id, queue))

    def close(self) -> None:
        pass


def dispatcher(tmp_path: Path, **kwargs) -> tuple[MemoryStore, FakeBroker, CeleryRunner]:
    store, broker = MemoryStore(), FakeBroker()
    settings = Settings(data_dir=tmp_path / "data")
    runner = CeleryRunner(
        store=store,
        settings=settings,
        broker=broker,
        name="serve:test:1",
        sources=git_sources(settings),
        **kwargs,
    )
    return store, broker, runner


def queue(store, repo: str) -> int:
    request = BuildRequest(repo=repo, ref="refs/heads/main", event="manual")
    return Scheduler(store).enqueue(request).id


def test_a_workflow_only_repository_is_sent_to_a_worker(tmp_path):
    from sauci.core.models import Worker

    store, broker, runner = dispatcher(tmp_path, pipeline_loader=load_for_build)
    repo = make_workflow_repo(tmp_path / "r")
    now = time.time()
    store.save_worker(Worker(name="w1", slots=1, started_at=now, heartbeat_at=now))
    build_id = queue(store, repo)
    runner.tick()
    assert [build_id] == [b for b, _queue in broker.sent]
    assert Status.QUEUED == store.get_build(build_id).status


def test_a_jobs_own_runs_on_labels_send_the_build_to_a_worker_that_has_them(tmp_path):
    from sauci.core.models import Worker

    store, broker, runner = dispatcher(tmp_path, pipeline_loader=load_for_build)
    text = WORKFLOW.replace("runs-on: ubuntu-latest", "runs-on: [self-hosted, linux, GPU]")
    repo = make_workflow_repo(tmp_path / "r", text)
    now = time.time()
    store.save_worker(Worker(name="w1", slots=1, started_at=now, heartbeat_at=now))
    build_id = queue(store, repo)
    runner.tick()
    assert [] == broker.sent  # w1 has no 'gpu' label: the build waits, as for a runner
    assert ("gpu",) == store.get_build(build_id).runs_on
    labels = ("gpu", "linux")
    store.save_worker(Worker(name="w2", slots=1, started_at=now, heartbeat_at=now, labels=labels))
    runner.tick()
    assert [build_id] == [b for b, _queue in broker.sent]


def test_a_broken_workflow_ends_the_build_errored_with_its_location(tmp_path):
    store, broker, runner = dispatcher(tmp_path, pipeline_loader=load_for_build)
    repo = make_workflow_repo(tmp_path / "r", WORKFLOW.replace("runs-on", "runs-off"))
    build_id = queue(store, repo)
    runner.tick()
    build = store.get_build(build_id)
    assert [] == broker.sent
    assert Status.ERRORED == build.status
    assert ".github/workflows/ci.yml:" in build.reason and "runs-on" in build.reason


def test_without_a_loader_the_dispatcher_still_asks_for_the_native_file(tmp_path):
    store, _broker, runner = dispatcher(tmp_path)
    build_id = queue(store, make_workflow_repo(tmp_path / "r"))
    runner.tick()
    assert "no pipeline file" in store.get_build(build_id).reason


@pytest.mark.slow
def test_a_workflow_runs_green_on_a_real_worker(cluster, tmp_path):
    repo = make_workflow_repo(tmp_path / "repo")
    store = cluster.store()
    cluster.start_worker("w", None)
    cluster.wait_online(store, "w")
    cluster.start_server()
    build_id = queue(store, repo)

    def finished():
        build = store.get_build(build_id)
        return build if build.status.done else None

    build = wait_for(finished, "the workflow build to end")
    assert (Status.PASSED, "w", None) == (build.status, build.claimed_by, build.reason)
    steps = store.list_steps(build_id)
    assert steps and all(s.status == Status.PASSED for s in steps)
    logs = b"".join(store.read_log(build_id, s.name) for s in steps)
    assert b"from the workflow on Linux" in logs


CONCURRENT = """\
name: CI
on: push
concurrency:
  group: ${{ github.workflow }}-${{ github.ref }}
  cancel-in-progress: false
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - run: echo hi
"""


def test_a_build_waiting_for_its_concurrency_group_is_not_sent(tmp_path):
    from sauci.core.models import Worker
    from sauci.source.git import read_file
    from sauci.workflows import ConcurrencyGate

    store, broker, runner = dispatcher(tmp_path, pipeline_loader=load_for_build)
    runner.gate = ConcurrencyGate(store, read_file)
    repo = make_workflow_repo(tmp_path / "r", CONCURRENT)
    now = time.time()
    store.save_worker(Worker(name="w1", slots=4, started_at=now, heartbeat_at=now))
    first = queue(store, repo)
    runner.tick()
    assert store.claim_build("w1", build_id=first) is not None  # the worker took it
    second = queue(store, repo)
    runner.tick()
    assert [first] == [b for b, _queue in broker.sent]
    assert "waiting for build #1" in (store.get_build(second).reason or "")
    store.finish_build(first, "w1", status=Status.PASSED, reason=None, finished_at=now)
    runner.tick()
    assert [first, second] == [b for b, _queue in broker.sent]
