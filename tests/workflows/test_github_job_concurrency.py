"""``jobs.<id>.concurrency`` under a real server: a job whose group another
build's running job holds waits (its step says for which), and with
``cancel-in-progress`` the running one is cancelled; the plan names the group."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from polling import wait_for

from sauci.core.models import BuildRequest, Status
from sauci.core.scheduler import Scheduler

GIT = ["git", "-c", "user.name=Pusher", "-c", "user.email=p@example.com"]

WORKFLOW = """\
name: CI
on: push
jobs:
  deploy:
    runs-on: ubuntu-latest
    concurrency:
      group: Deploy-${{{{ github.workflow }}}}
      cancel-in-progress: {cancel}
    steps:
      - run: for i in $(seq 600); do [ -f "{go}" ] && exit 0; sleep 0.1; done; exit 1
"""


def make_repo(path: Path, go: Path, cancel: str) -> Path:
    (path / ".github" / "workflows").mkdir(parents=True)
    (path / ".github" / "workflows" / "ci.yml").write_text(WORKFLOW.format(cancel=cancel, go=go))
    subprocess.run([*GIT, "init", "-q", "-b", "main", str(path)], check=True)
    subprocess.run([*GIT, "add", "."], cwd=path, check=True)
    subprocess.run([*GIT, "commit", "-qm", "ci"], cwd=path, check=True)
    subprocess.run([*GIT, "branch", "other"], cwd=path, check=True)
    return path


def test_the_plan_names_the_jobs_group_with_its_expressions_filled():
    from sauci.workflows.github import Settings, plan_github

    plan = plan_github(WORKFLOW.format(cancel="true", go="x"), Settings(file="ci.yml"))
    assert plan.pipeline.steps[0].concurrency == ("Deploy-CI", True)
    assert "note: concurrency: group 'Deploy-CI': cancels a running job" in plan.text()


@pytest.fixture
def server(tmp_path):
    from sauci.app.server import build_server
    from sauci.core.config import Settings
    from sauci.core.server import ServerOptions
    from sauci.storage import open_store

    settings = Settings(data_dir=tmp_path / "data", grace=1.0, sandbox="local")
    settings.data_dir.mkdir(parents=True)
    store = open_store(settings.store_url)
    server = build_server(store=store, settings=settings, repos=[], options=ServerOptions())
    server.start()
    try:
        yield store
    finally:
        server.stop(timeout=10)


def queue(store, repo: Path, ref: str) -> int:
    request = BuildRequest(repo=str(repo), ref=ref, event="push")
    return Scheduler(store).enqueue(request).id


class _NoStep:
    status = reason = None


def step_of(store, build: int):
    steps = store.list_steps(build)
    return steps[0] if steps else _NoStep()


@pytest.mark.slow
def test_a_job_waits_for_another_builds_job_of_its_group(server, tmp_path):
    store, go = server, tmp_path / "go"
    repo = make_repo(tmp_path / "repo", go, cancel="false")
    first = queue(store, repo, "refs/heads/main")
    wait_for(lambda: step_of(store, first).status is Status.RUNNING, "the first job to run")
    second = queue(store, repo, "refs/heads/other")
    waiting = wait_for(
        lambda: (
            (step_of(store, second).reason or "").startswith("waiting") and step_of(store, second)
        ),
        "the second job to wait",
    )
    assert waiting.status is Status.QUEUED
    assert f"waiting for build #{first}'s job 'deploy' (concurrency group 'Deploy-CI')" == (
        waiting.reason
    )
    assert store.get_build(second).status is Status.RUNNING  # the build runs; its job waits
    go.write_text("")
    for build in (first, second):
        ended = wait_for(
            lambda b=build: store.get_build(b).status.done and store.get_build(b), "end"
        )
        assert Status.PASSED == ended.status
    assert step_of(store, first).finished_at <= step_of(store, second).started_at


@pytest.mark.slow
def test_cancel_in_progress_cancels_the_other_builds_running_job(server, tmp_path):
    store, go = server, tmp_path / "go"
    repo = make_repo(tmp_path / "repo", go, cancel="true")
    first = queue(store, repo, "refs/heads/main")
    wait_for(lambda: step_of(store, first).status is Status.RUNNING, "the first job to run")
    second = queue(store, repo, "refs/heads/other")
    ended = wait_for(lambda: store.get_build(first).status.done and store.get_build(first), "end")
    assert Status.CANCELLED == ended.status
    assert step_of(store, first).reason == (
        f"cancelled: build #{second}'s job 'deploy' in concurrency group 'Deploy-CI' cancels it"
    )
    go.write_text("")
    done = wait_for(lambda: store.get_build(second).status.done and store.get_build(second), "end")
    assert Status.PASSED == done.status


def _store_of(data: Path):
    from sauci.core.config import Settings
    from sauci.storage import open_store

    return open_store(Settings(data_dir=data).store_url)


@pytest.mark.slow
def test_two_builds_under_a_real_sauci_serve_process(tmp_path):
    """`sauci serve` as users start it; two `sauci trigger`s of one repository: the
    second build's job waits for the first's, then both pass."""
    import os
    import signal
    import sys

    go, data = tmp_path / "go", tmp_path / "data"
    repo = make_repo(tmp_path / "repo", go, cancel="false")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAUCI_")}
    env |= {"SAUCI_DATA_DIR": str(data), "SAUCI_GRACE": "1s"}
    serve = [sys.executable, "-m", "sauci", "serve", "--no-ui", "--sandbox", "local"]
    proc = subprocess.Popen(
        [*serve, "--repo", str(repo)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(b"sauci serve: watching"):
                break
        store = _store_of(data)
        trigger = [sys.executable, "-m", "sauci", "trigger", str(repo)]
        subprocess.run([*trigger, "--ref", "main"], env=env, check=True, capture_output=True)
        first = wait_for(lambda: store.list_builds(limit=5) and store.list_builds()[-1].id, "1")
        wait_for(lambda: step_of(store, first).status is Status.RUNNING, "the first job to run")
        subprocess.run([*trigger, "--ref", "other"], env=env, check=True, capture_output=True)
        second = wait_for(lambda: len(store.list_builds()) == 2 and store.list_builds()[0].id, "2")
        waiting = wait_for(
            lambda: (
                (step_of(store, second).reason or "").startswith("waiting")
                and step_of(store, second)
            ),
            "the second build's job to wait",
        )
        assert f"waiting for build #{first}'s job 'deploy'" in waiting.reason
        go.write_text("")
        for build in (first, second):
            ended = wait_for(
                lambda b=build: store.get_build(b).status.done and store.get_build(b), "end"
            )
            assert Status.PASSED == ended.status, ended.reason
        store.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
