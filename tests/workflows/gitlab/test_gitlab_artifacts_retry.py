"""GitLab's artifacts passing (parallel instances, needs, dependencies),
after_script after a timeout, and retry: when, run end to end: through
SauCI's runner and through `sauci run` on a repository."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sauci import Status, run_pipeline
from sauci.core.config import Settings
from sauci.core.models import EndedBy
from sauci.exceptions import PipelineError
from sauci.storage.memory import MemoryStore
from sauci.workflows.gitlab import GitLabContext, load_gitlab

ARTIFACTS = """
stages: [build, test]
build:
  stage: build
  parallel: 2
  script:
    - mkdir -p out && echo "part $CI_NODE_INDEX" > "out/part-$CI_NODE_INDEX.txt"
    - echo scratch > scratch.txt
  artifacts: {paths: [out/]}
pack:
  stage: build
  parallel:
    matrix:
      - OS: [linux, bsd]
  script: [mkdir -p dist, 'echo "$OS" > "dist/$OS.txt"']
  artifacts: {paths: [dist/]}
by-stage:
  stage: test
  script: [cat out/part-1.txt out/part-2.txt dist/linux.txt dist/bsd.txt, test ! -e scratch.txt]
by-needs:
  stage: test
  needs: [{job: build, artifacts: true}]
  script: [test -f out/part-1.txt, test -f out/part-2.txt, test ! -e dist]
needs-no-artifacts:
  stage: test
  needs: [{job: build, artifacts: false}]
  script: [test ! -e out]
only-pack:
  stage: test
  dependencies: [pack]
  script: [test ! -e out, test -f dist/bsd.txt]
none:
  stage: test
  dependencies: []
  script: [test ! -e out, test ! -e dist]
instances:
  stage: test
  parallel: 2
  needs: [build]
  script: [test -f out/part-2.txt]
"""


def _run(workspace: Path, text: str):  # type: ignore[no-untyped-def]
    (workspace / ".gitlab-ci.yml").write_text(text, encoding="utf-8")
    pipeline = load_gitlab(workspace, context=GitLabContext(branch="main"))
    settings = Settings(data_dir=workspace.parent / "data", grace=1.0)
    return run_pipeline(
        pipeline,
        workspace,
        settings=settings,
        store=MemoryStore(),
        secrets={},
        ref="refs/heads/main",
    )


def _log(run) -> str:  # type: ignore[no-untyped-def]
    return Path(run.log_path).read_text(encoding="utf-8")


def test_every_instances_artifacts_reach_the_jobs_after_it(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    outcome = _run(ws, ARTIFACTS)
    failed = {s.name: _log(s) for s in outcome.steps if s.status is not Status.PASSED}
    assert failed == {}
    assert _log(outcome.step("by-stage")).count("part ") == 2
    assert not (ws / "out").exists()  # every job in its own copy: the checkout stays as it was


def test_dependencies_are_checked() -> None:
    text = (
        "stages: [a, b]\nx:\n  stage: b\n  script: [x]\n"
        "y:\n  stage: b\n  dependencies: [x, nope]\n  script: [y]\n"
        "z:\n  stage: b\n  needs: []\n  dependencies: [x]\n  script: [z]\n"
    )
    with pytest.raises(PipelineError) as caught:
        load_gitlab(".gitlab-ci.yml", text, context=GitLabContext(branch="main"))
    assert [str(p) for p in caught.value.problems] == [
        ".gitlab-ci.yml:7:18: y: dependencies: 'x' is not in an earlier stage",
        ".gitlab-ci.yml:7:21: y: dependencies: 'nope' is not a job",
        ".gitlab-ci.yml:12:18: z: dependencies: 'x' must also be in needs",
    ]


RETRY = """
flaky:
  retry: {max: 2, when: script_failure}
  script: ['n=$(cat n 2>/dev/null || echo 0); echo $((n+1)) > n; test "$n" -ge 1']
infra-only:
  retry: {max: 2, when: [runner_system_failure, api_failure]}
  script: [exit 1]
code:
  retry: {max: 1, exit_codes: [75]}
  script: ['if [ -e tried ]; then exit 0; fi; touch tried; exit 75']
slow:
  timeout: 1 second
  retry: {max: 1, when: stuck_or_timeout_failure}
  variables: {RUNNER_AFTER_SCRIPT_TIMEOUT: 2s}
  script: ['if [ -e tried ]; then exit 4; fi; touch tried; sleep 30']
  after_script: ['echo "cleanup after $CI_JOB_STATUS"']
hang:
  variables: {RUNNER_AFTER_SCRIPT_TIMEOUT: 1s}
  script: [exit 1]
  after_script: [echo begun, sleep 30, echo never]
"""


def test_retry_when_and_after_script_after_a_timeout(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / ".gitlab-ci.yml").write_text(RETRY, encoding="utf-8")
    outcome = _run(ws, RETRY)
    flaky, infra, code = (outcome.step(n) for n in ("flaky", "infra-only", "code"))
    assert (flaky.status, flaky.attempt) == (Status.PASSED, 2)
    assert "retrying (attempt 2 of 3)" in _log(flaky)
    assert (infra.status, infra.attempt) == (Status.FAILED, 1)  # no runner failure here
    assert (code.status, code.attempt) == (Status.PASSED, 2)
    slow = outcome.step("slow")
    assert (slow.status, slow.attempt, slow.exit_code) == (Status.FAILED, 2, 4)
    log = _log(slow)
    assert "retrying (attempt 2 of 2)" in log  # the timeout was retried
    assert log.count("cleanup after failed") == 2  # after each attempt, the timed-out one too
    hang = outcome.step("hang")
    assert (hang.status, hang.ended_by) == (Status.FAILED, None)
    assert "begun" in _log(hang) and "never" not in _log(hang)
    assert "after_run was ended after its 1 s limit" in _log(hang)


def test_a_timed_out_job_stays_failed_whatever_after_script_does(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    text = "slow:\n  timeout: 1s\n  script: [sleep 30]\n  after_script: ['echo \"was $CI_JOB_STATUS\"', 'exit 0']\n"
    slow = _run(ws, text).step("slow")
    assert (slow.status, slow.ended_by) == (Status.FAILED, EndedBy.TIMEOUT)
    assert "was failed" in _log(slow)


def test_retry_when_names_an_unknown_failure_type() -> None:
    text = "a:\n  script: [x]\n  retry:\n    max: 1\n    when: [script_failure, flaky]\n"
    with pytest.raises(PipelineError) as caught:
        load_gitlab(".gitlab-ci.yml", text, context=GitLabContext(branch="main"))
    [problem] = caught.value.problems
    assert str(problem).startswith(
        ".gitlab-ci.yml:5:28: retry: when: 'flaky' is not one of always,"
    )


def test_sauci_run_passes_parallel_artifacts_on(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / ".gitlab-ci.yml").write_text(ARTIFACTS, encoding="utf-8")
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "ci"], check=True)
    env = {**os.environ, "SAUCI_DATA_DIR": str(tmp_path / "data"), "NO_COLOR": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "sauci", "run", str(root)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "part 2" in done.stdout and "bsd" in done.stdout


def test_after_script_runs_after_a_cancel_with_canceled_status(tmp_path: Path) -> None:
    import threading

    from sauci.app import LocalRunner
    from sauci.core.models import BuildRequest

    ws = tmp_path / "ws"
    ws.mkdir()
    text = (
        "long:\n  script: [sleep 60]\n  after_script: ['echo \"cleanup after $CI_JOB_STATUS\"']\n"
    )
    (ws / ".gitlab-ci.yml").write_text(text, encoding="utf-8")
    pipeline = load_gitlab(ws, context=GitLabContext(branch="main"))
    settings = Settings(data_dir=tmp_path / "data", grace=1.0)
    runner = LocalRunner(store=MemoryStore(), settings=settings, secrets={})
    timer = threading.Timer(0.5, runner.cancel_all)
    timer.start()
    outcome = runner.run_pipeline(pipeline, ws, BuildRequest(repo="r"))
    timer.join()
    long = outcome.step("long")
    assert long.status is Status.CANCELLED
    assert "cleanup after canceled" in _log(long)  # GitLab 17.0 on: after_script after a cancel


def test_after_scripts_limit_is_bounded_by_gitlabs_default_and_the_servers_cap() -> None:
    text = (
        "a:\n  script: [x]\n  after_script: [y]\n"
        "b:\n  script: [x]\n  after_script: [y]\n  variables: {RUNNER_AFTER_SCRIPT_TIMEOUT: 2h}\n"
        "c:\n  script: [x]\n  after_script: [y]\n  variables: {RUNNER_AFTER_SCRIPT_TIMEOUT: 1m 30s}\n"
    )
    context = GitLabContext(branch="main")
    steps = load_gitlab(".gitlab-ci.yml", text, context=context).steps
    assert [s.after_timeout for s in steps] == [300.0, 300.0, 90.0]
    capped = load_gitlab(".gitlab-ci.yml", text, context=context, max_timeout=60).steps
    assert [s.after_timeout for s in capped] == [60.0, 60.0, 60.0]

    bad = (
        "a:\n  script: [x]\n  after_script: [y]\n  variables: {RUNNER_AFTER_SCRIPT_TIMEOUT: soon}\n"
    )
    with pytest.raises(PipelineError) as caught:
        load_gitlab(".gitlab-ci.yml", bad, context=context)
    assert [str(p) for p in caught.value.problems] == [
        ".gitlab-ci.yml:4:15: a: RUNNER_AFTER_SCRIPT_TIMEOUT: expected a duration like "
        "'1h 30m' or '90 minutes', got 'soon'"
    ]
