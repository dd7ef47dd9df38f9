"""A GitHub workflow run end to end by `sauci run` in the local sandbox.

Proves the job driver gives steps what GitHub gives them: GITHUB_ENV and
GITHUB_PATH across steps, GITHUB_OUTPUT read as ``steps.<id>.outputs``,
``if:`` with and without ``${{ }}`` (status functions too),
``continue-on-error``, ``shell: python``, ``working-directory``, and that a
job's ``if: always()`` runs after a failed job while a plain one is skipped.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

GIT = ["git", "-c", "user.name=Tester", "-c", "user.email=t@example.com"]

WORKFLOW = """\
name: CI
on:
  push:
    branches: [main]
env:
  TOP: top-level
jobs:
  test:
    runs-on: ${{ matrix.os }}
    strategy:
      fail-fast: false
      matrix:
        os: [ubuntu-latest, windows-latest]
        python-version: ["3.x"]
    steps:
      - uses: actions/checkout@b4ffde65f46336ab88eb53be808477a3936bae11
      - uses: actions/setup-python@v5
        with:
          python-version: ${{ matrix.python-version }}
      - id: facts
        run: |
          echo "minor=$(python -c 'import sys; print(sys.version_info[0])')" >> "$GITHUB_OUTPUT"
          echo "FROM_ENV=set-by-env-file" >> "$GITHUB_ENV"
          mkdir -p tools sub && printf '#!/bin/sh\\necho tool-on-path\\n' > tools/mytool
          chmod +x tools/mytool && echo "$PWD/tools" >> "$GITHUB_PATH"
      - name: Use them
        run: |
          echo "major=${{ steps.facts.outputs.minor }} env=${{ env.FROM_ENV }} shell=$FROM_ENV top=$TOP"
          mytool
          python -c 'import sys; print("venv" if sys.prefix != sys.base_prefix else "no venv")'
      - name: Skipped by if
        if: steps.facts.outputs.minor == '2'
        run: echo never-printed-1
      - name: In a directory
        working-directory: sub
        run: echo "cwd=$(basename "$PWD")"
      - name: May fail
        continue-on-error: true
        run: exit 3
      - name: Python shell
        shell: python
        run: print("from-python", 6 * 7)
      - name: Fails
        run: exit 1
      - name: After the failure
        run: echo never-printed-2
      - name: On failure
        if: ${{ failure() }}
        run: echo failure-step-ran
  report:
    needs: test
    if: always()
    runs-on: ubuntu-latest
    steps:
      - run: echo report-ran
  deploy:
    needs: test
    runs-on: ubuntu-latest
    steps:
      - run: echo never-printed-3
"""


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SAUCI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SAUCI_STORE", raising=False)


def sauci(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sauci", *args, "--color", "never"],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )


def repository(tmp_path: Path, text: str = WORKFLOW) -> Path:
    repo = tmp_path / "repo"
    (repo / ".github" / "workflows").mkdir(parents=True)
    (repo / ".github" / "workflows" / "ci.yml").write_text(text)
    subprocess.run([*GIT, "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run([*GIT, "add", "."], cwd=repo, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", "m"], cwd=repo, check=True)
    return repo


def test_steps_share_files_outputs_and_conditions_like_on_github(tmp_path: Path) -> None:
    result = sauci("run", str(repository(tmp_path)))
    out = result.stdout + result.stderr
    assert 1 == result.returncode, out
    for expected in (
        "major=3 env=set-by-env-file shell=set-by-env-file top=top-level",
        "tool-on-path",
        "\nvenv" if False else "venv",
        "cwd=sub",
        "=== May fail: failed with exit code 3",
        "(continue-on-error)",
        "from-python 42",
        "=== Fails: failed with exit code 1",
        "=== After the failure: skipped (an earlier step failed)",
        "failure-step-ran",
        "report-ran",
        "skipped: runs-on windows-latest: SauCI runs Linux jobs only",
        "skipped: needs 'test (ubuntu-latest, 3.x)', which failed",
    ):
        assert expected in out, expected
    for never in ("never-printed-1", "never-printed-2", "never-printed-3", "Traceback"):
        assert never not in out, never


def test_job_runs_only_that_job_and_those_it_needs(tmp_path: Path) -> None:
    text = WORKFLOW.replace("      - name: Fails\n        run: exit 1\n", "")
    result = sauci("run", str(repository(tmp_path, text)), "--job", "deploy")
    out = result.stdout + result.stderr
    assert 0 == result.returncode, out
    assert "never-printed-3" in out  # deploy ran, its needs passed
    assert "report-ran" not in out  # not asked for


def test_validate_prints_the_plan_with_skips(tmp_path: Path) -> None:
    repo = repository(tmp_path)
    result = sauci("validate", str(repo))
    assert 0 == result.returncode, result.stdout + result.stderr
    assert "- test (windows-latest, 3.x)  [skipped: runs-on windows-latest" in result.stdout
    assert "    step: Use them" in result.stdout


OUTPUTS = """\
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    outputs:
      version: ${{ steps.v.outputs.version }}
      fixed: plain-${{ github.event_name }}
    steps:
      - id: v
        run: echo "version=${{ format('1.2.{0}', 3) }}" >> "$GITHUB_OUTPUT"
  use:
    needs: build
    runs-on: ubuntu-latest
    steps:
      - run: echo "got ${{ needs.build.outputs.version }} ${{ needs.build.outputs.fixed }}"
  entries:
    needs: [build]
    runs-on: ubuntu-latest
    strategy:
      matrix:
        n: [1, 2]
    steps:
      - if: needs.build.outputs.version == '1.2.3'
        run: echo "entry ${{ matrix.n }} sees ${{ needs.build.outputs.version }}"
"""


def test_job_outputs_reach_the_jobs_that_need_it(tmp_path: Path) -> None:
    result = sauci("run", str(repository(tmp_path, OUTPUTS)))
    out = result.stdout + result.stderr
    assert 0 == result.returncode, out
    assert "got 1.2.3 plain-push" in out
    assert "entry 1 sees 1.2.3" in out and "entry 2 sees 1.2.3" in out


SECRETS = """\
on: push
jobs:
  deploy:
    runs-on: ubuntu-latest
    env:
      TOKEN: ${{ secrets.DEPLOY_TOKEN }}
    steps:
      - run: test "$TOKEN" = "s3cret-value-42" && echo token-reached-the-job
      - run: echo "printed ${{ secrets.DEPLOY_TOKEN }}"
      - run: echo "## Deployed **1.2.3**" >> "$GITHUB_STEP_SUMMARY"
"""


def test_secrets_reach_the_job_masked_and_its_summary_is_kept(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DEPLOY_TOKEN", "s3cret-value-42")  # sauci run's secrets: its environment
    result = sauci("run", str(repository(tmp_path, SECRETS)))
    out = result.stdout + result.stderr
    assert 0 == result.returncode, out
    assert "token-reached-the-job" in out
    assert "printed " in out and "s3cret-value-42" not in out
    (summary,) = (tmp_path / "data" / "artifacts").rglob("step-summary.md")
    assert "## Deployed **1.2.3**\n" == summary.read_text()


def test_pytest_results_reach_the_store_once_without_or_with_the_workflow_s_own_report(
    tmp_path: Path,
) -> None:
    pytest_run = f"{sys.executable} -m pytest -q -p no:cacheprovider tests"
    text = f"""\
on: push
jobs:
  plain:
    runs-on: ubuntu-latest
    steps:
      - run: {pytest_run}
  own-report:
    runs-on: ubuntu-latest
    steps:
      - run: {pytest_run} --junitxml=reports/junit.xml
      - uses: actions/upload-artifact@v4
        with:
          path: reports/junit.xml
"""
    repo = repository(tmp_path, text)
    (repo / "tests").mkdir()
    (repo / "tests" / "test_x.py").write_text(
        "import pytest\ndef test_a(): pass\ndef test_b(): pass\n"
        "@pytest.mark.skip\ndef test_c(): pass\n"
    )
    subprocess.run([*GIT, "add", "."], cwd=repo, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", "tests"], cwd=repo, check=True)
    result = sauci("run", str(repo))
    assert 0 == result.returncode, result.stdout + result.stderr
    shown = sauci("show", "1")
    assert "tests: 6 run, 0 failed" in shown.stdout, shown.stdout  # 3 per job, none twice
