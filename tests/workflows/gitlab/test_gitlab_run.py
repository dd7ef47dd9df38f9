"""A small .gitlab-ci.yml run end to end by SauCI's runner in the local
sandbox: statuses, logs (before/after_script, echoed commands) and JUnit
counts are GitLab's."""

from __future__ import annotations

from pathlib import Path

import pytest

from sauci import Status, run_pipeline
from sauci.core.config import Settings
from sauci.storage.memory import MemoryStore
from sauci.workflows.gitlab import GitLabContext, load_gitlab

PIPELINE = """
stages: [build, test, report, publish]

variables:
  GREETING: hello
  OUT_DIR: "$CI_PROJECT_DIR/out"

default:
  before_script:
    - echo "before $GREETING from $CI_JOB_NAME"

build:
  stage: build
  script:
    - mkdir -p "$OUT_DIR" && echo built > "$OUT_DIR/thing.txt"
  after_script:
    - echo "after build, status $CI_JOB_STATUS"
  artifacts:
    paths: [out/]

test:
  stage: test
  parallel:
    matrix:
      - SUITE: [a, b]
  script:
    - mkdir -p reports
    - >-
      printf '<testsuite name="%s"><testcase classname="t" name="one"/>
      <testcase classname="t" name="two"><failure message="no">x</failure></testcase>
      </testsuite>' "$SUITE" > "reports/junit-$SUITE.xml"
    - test "$SUITE" = a
  after_script:
    - echo "cleanup $SUITE after $CI_JOB_STATUS ($CI_NODE_INDEX/$CI_NODE_TOTAL)"
    - exit 3
  artifacts:
    reports:
      junit: reports/junit-*.xml
  allow_failure: true

tolerated:
  stage: test
  script: [exit 5]
  allow_failure:
    exit_codes: [5]

strict:
  stage: test
  script: [exit 6]
  allow_failure:
    exit_codes: [5]
  rules:
    - if: $CI_COMMIT_BRANCH == "strict"

report:
  stage: report
  script:
    - test -f out/thing.txt
    - echo "report on $CI_COMMIT_REF_NAME"

publish:
  stage: report
  script: [echo publishing]
  when: manual

on-failure:
  stage: report
  script: [echo "something failed"]
  when: on_failure

always:
  stage: report
  script: [echo "always here"]
  when: always

after-all:
  stage: publish
  script: [echo "after a skipped on_failure job"]
"""


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / ".gitlab-ci.yml").write_text(PIPELINE, encoding="utf-8")
    return ws


def _run(workspace: Path, branch: str, store: MemoryStore):  # type: ignore[no-untyped-def]
    pipeline = load_gitlab(workspace, context=GitLabContext(branch=branch))
    settings = Settings(data_dir=workspace.parent / "data", grace=1.0)
    return run_pipeline(
        pipeline, workspace, settings=settings, store=store, secrets={}, ref=f"refs/heads/{branch}"
    )


def _log(run) -> str:  # type: ignore[no-untyped-def]
    return Path(run.log_path).read_text(encoding="utf-8")


def test_a_gitlab_pipeline_runs_with_gitlab_semantics(workspace: Path) -> None:
    store = MemoryStore()
    outcome = _run(workspace, "main", store)
    statuses = {s.name: s.status for s in outcome.steps}
    assert statuses == {
        "build": Status.PASSED,
        "test: [a]": Status.PASSED,  # after_script's exit 3 does not fail the job
        "test: [b]": Status.FAILED,  # allowed to fail: report still runs
        "tolerated": Status.PASSED,  # exit code 5 is allowed by allow_failure: exit_codes
        "report": Status.PASSED,
        "publish": Status.SKIPPED,
        "on-failure": Status.SKIPPED,  # allowed failures are not failures
        "always": Status.PASSED,
        "after-all": Status.PASSED,  # a skipped on_failure job does not hold it back
    }
    assert outcome.step("publish").reason == "manual"
    assert outcome.status is Status.PASSED

    build = _log(outcome.step("build"))
    assert '$ echo "before $GREETING from $CI_JOB_NAME"' in build  # commands echoed
    assert "before hello from build" in build
    assert "after build, status success" in build
    b = _log(outcome.step("test: [b]"))
    assert "cleanup b after failed (2/2)" in b  # after_script ran after the failure
    assert "after_run ended with exit code 3" in b
    assert "exit code 5 is allowed" in _log(outcome.step("tolerated"))
    assert "report on main" in _log(outcome.step("report"))

    cases = store.list_test_results(outcome.build.id)
    counted = sorted((step, case.status) for step, case in cases)
    assert counted == [
        ("test: [a]", "failed"), ("test: [a]", "passed"),
        ("test: [b]", "failed"), ("test: [b]", "passed"),
    ]  # fmt: skip
    assert [(s, a.path) for s, a in store.list_artifacts(outcome.build.id)] == [
        ("build", "out/thing.txt")
    ]


def test_an_exit_code_not_allowed_fails_the_build(workspace: Path) -> None:
    outcome = _run(workspace, "strict", MemoryStore())
    assert outcome.step("strict").status is Status.FAILED
    assert outcome.step("report").status is Status.SKIPPED
    assert outcome.step("on-failure").status is Status.PASSED
    assert "something failed" in _log(outcome.step("on-failure"))
    assert outcome.step("always").status is Status.PASSED
    assert outcome.step("after-all").status is Status.SKIPPED
    assert outcome.status is Status.FAILED


def test_the_job_script_runs_in_sh_where_there_is_no_bash(tmp_path: Path) -> None:
    """Images like python:3.12-alpine have no bash: GitLab's runner falls back
    to sh, and so does the job's script (POSIX: no bash-only syntax)."""
    import shutil
    import subprocess

    dash = shutil.which("dash") or shutil.which("busybox")
    if dash is None:
        pytest.skip("no POSIX-only shell on this machine")
    argv = [dash] if dash.endswith("dash") else [dash, "sh"]
    (tmp_path / ".gitlab-ci.yml").write_text(
        "variables: {WHERE: $CI_PROJECT_DIR/x}\n"
        "job:\n  script: ['echo \"at $WHERE $CI_COMMIT_SHORT_SHA\"', 'false', 'echo not here']\n"
        "  after_script: ['echo \"after $CI_JOB_STATUS\"']\n",
        encoding="utf-8",
    )
    step = load_gitlab(tmp_path, context=GitLabContext(sha="0123456789abcdef")).steps[0]
    done = subprocess.run(
        [*argv, "-c", step.script()],
        cwd=tmp_path,
        env={**step.env, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert f"at {tmp_path}/x 01234567" in done.stdout
    assert "not here" not in done.stdout
    after = subprocess.run(
        [*argv, "-c", "\n".join(step.after_run)],
        cwd=tmp_path,
        env={**step.env, "PATH": "/usr/bin:/bin", "SAUCI_STEP_STATUS": "timeout"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert after.returncode == 0
    assert "after failed" in after.stdout  # GitLab: a timed-out job's CI_JOB_STATUS is failed
