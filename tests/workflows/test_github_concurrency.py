"""A workflow's ``concurrency`` under a server: GitHub's one running and one
waiting build per group, a newer one replacing the waiting one, and with
``cancel-in-progress`` cancelling the running one; on a MemoryStore with real
git repositories, then end to end through ``sauci serve``'s server."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from polling import wait_for

from sauci.core.claim_gate import GatedStore
from sauci.core.models import BuildRequest, Status
from sauci.core.scheduler import Scheduler
from sauci.source.git import read_file
from sauci.storage.memory import MemoryStore
from sauci.workflows import ConcurrencyGate

GIT = ["git", "-c", "user.name=Pusher", "-c", "user.email=p@example.com"]

WORKFLOW = """\
name: CI
on: push
concurrency:
  group: ${{{{ github.workflow }}}}-${{{{ github.ref }}}}
  cancel-in-progress: {cancel}
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - run: {run}
"""


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run([*GIT, *args], cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def make_repo(path: Path, *, cancel: str = "true", run: str = "echo hi") -> Path:
    (path / ".github" / "workflows").mkdir(parents=True)
    (path / ".github" / "workflows" / "ci.yml").write_text(WORKFLOW.format(cancel=cancel, run=run))
    git(path.parent, "init", "-q", "-b", "main", str(path))
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "ci")
    git(path, "branch", "other")
    return path


def world(tmp_path: Path, **kwargs):
    store = MemoryStore()
    repo = make_repo(tmp_path / "repo", **kwargs)
    return store, str(repo), ConcurrencyGate(store, read_file)


def queue(store, repo: str, ref: str = "refs/heads/main") -> int:
    return Scheduler(store).enqueue(BuildRequest(repo=repo, ref=ref, event="push")).id


def test_a_newer_build_cancels_the_running_one_and_waits_for_it_to_end(tmp_path):
    store, repo, gate = world(tmp_path)
    first = queue(store, repo)
    assert store.claim_build("w", build_id=first) is not None
    second = queue(store, repo)
    gate.refresh()
    assert "build #2 in concurrency group 'CI-refs/heads/main' cancels it" in (
        store.get_build(first).cancel_requested or ""
    )
    assert not gate.may_claim(second)
    assert "waiting for build #1" in store.get_build(second).reason
    store.finish_build(first, "w", status=Status.CANCELLED, reason="cancelled", finished_at=1.0)
    gate.refresh()
    assert gate.may_claim(second)
    assert store.get_build(second).reason is None


def test_without_cancel_in_progress_the_newest_waits_and_replaces_the_waiting_one(tmp_path):
    store, repo, gate = world(tmp_path, cancel="false")
    first = queue(store, repo)
    assert store.claim_build("w", build_id=first) is not None
    git(Path(repo), "commit", "-q", "--allow-empty", "-m", "2")
    second = (
        Scheduler(store)
        .enqueue(
            BuildRequest(repo=repo, ref="refs/heads/main", sha=git(Path(repo), "rev-parse", "HEAD"))
        )
        .id
    )
    third = queue(store, repo)
    gate.refresh()
    assert store.get_build(first).cancel_requested is None
    assert Status.CANCELLED == store.get_build(second).status
    assert "replaced by build #3" in store.get_build(second).reason
    assert not gate.may_claim(third)
    gated = GatedStore(store, gate)
    assert gated.claim_build("w") is None  # the only queued build is held


def test_groups_are_per_ref_and_a_native_pipeline_is_never_held(tmp_path):
    store, repo, gate = world(tmp_path)
    first = queue(store, repo)
    assert store.claim_build("w", build_id=first) is not None
    other = queue(store, repo, "refs/heads/other")
    gate.refresh()
    assert gate.may_claim(other) and store.get_build(first).cancel_requested is None
    native = tmp_path / "native"
    native.mkdir()
    (native / ".sauci.yml").write_text("steps:\n  a: {run: 'true'}\n")
    git(tmp_path, "init", "-q", "-b", "main", str(native))
    git(native, "add", ".")
    git(native, "commit", "-q", "-m", "n")
    assert gate.group_of(store.get_build(queue(store, str(native)))) is None


def test_a_group_written_as_an_expression_that_fails_is_located(tmp_path):
    from sauci.exceptions import PipelineError
    from sauci.workflows.github import Settings, plan_github

    text = WORKFLOW.format(cancel="true", run="echo").replace("github.ref }}", "github.ref ==}}")
    with pytest.raises(PipelineError) as caught:
        plan_github(text, Settings(file="ci.yml"))
    assert "ci.yml:4:" in str(caught.value)


@pytest.mark.slow
def test_the_server_cancels_the_running_build_for_a_newer_push(tmp_path):
    from sauci.app.server import build_server
    from sauci.core.config import Settings
    from sauci.core.server import ServerOptions
    from sauci.storage import open_store

    repo = make_repo(tmp_path / "repo", run="sleep 60")
    settings = Settings(data_dir=tmp_path / "data", grace=1.0, sandbox="local")
    settings.data_dir.mkdir(parents=True)
    store = open_store(settings.store_url)
    server = build_server(store=store, settings=settings, repos=[], options=ServerOptions())
    server.start()
    try:
        first = queue(store, str(repo))
        # Its step started: it runs the first commit (the sha is read when it starts).
        wait_for(
            lambda: any(s.status is Status.RUNNING for s in store.list_steps(first)),
            "the first build's step to run",
        )
        (repo / ".github" / "workflows" / "ci.yml").write_text(
            WORKFLOW.format(cancel="true", run="echo second")
        )
        git(repo, "commit", "-qam", "second")
        second = queue(store, str(repo))
        done = wait_for(
            lambda: store.get_build(second).status.done and store.get_build(second),
            "the second build to end",
        )
        ended = store.get_build(first)
        assert (Status.CANCELLED, Status.PASSED) == (ended.status, done.status)
        assert "concurrency group 'CI-refs/heads/main'" in (ended.cancel_requested or "")
    finally:
        server.stop(timeout=10)


def test_job_level_concurrency_is_planned_beside_the_workflows():
    from sauci.workflows.github import Settings, plan_github

    text = WORKFLOW.format(cancel="false", run="echo").replace(
        "    runs-on: ubuntu-latest\n", "    runs-on: ubuntu-latest\n    concurrency: deploy\n"
    )
    plan = plan_github(text, Settings(file="ci.yml")).text()
    assert "note: concurrency: group 'deploy': waits for a running one" in plan
    assert "note: concurrency: group 'CI-refs/heads/main': a newer build waits" in plan
