"""A matrix built with ``fromJSON`` from another job's outputs, run for real.

The whole matrix, one axis and ``include`` come from a setup job's outputs;
under ``sauci run`` and ``sauci serve`` each entry becomes its own step
(record, log, workspace, JUnit results), ``fail-fast`` and ``max-parallel``
hold, and a job that needs the dynamic job waits for every entry. Hostile
outputs (10,000 entries, bad JSON, not an object, nesting, nothing set)
end the job failed with a reason naming the job and the output.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from polling import wait_for
from test_github_run import repository, sauci
from test_github_serve import finished, git, start_server

from sauci.core.config import Settings
from sauci.core.models import Status
from sauci.exceptions import PipelineError
from sauci.workflows.github import Settings as PlanSettings
from sauci.workflows.github import plan_github


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SAUCI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SAUCI_STORE", raising=False)


JUNIT = (
    '<testsuite name="s" tests="1"><testcase classname="t" name="test_${{ matrix.python }}"/>'
    "</testsuite>"
)
WORKFLOW = f"""\
name: CI
on:
  push:
    branches: [main]
jobs:
  setup:
    runs-on: ubuntu-latest
    outputs:
      matrix: ${{{{ steps.set.outputs.matrix }}}}
      versions: ${{{{ steps.set.outputs.versions }}}}
      extra: ${{{{ steps.set.outputs.extra }}}}
    steps:
      - id: set
        run: |
          echo 'matrix={{"python":["3.10","3.11"],"include":[{{"python":"3.11","extra":"x"}}]}}' >> "$GITHUB_OUTPUT"
          echo 'versions=["a","b"]' >> "$GITHUB_OUTPUT"
          echo 'extra=[{{"tox":"lint"}},{{"tox":"docs"}}]' >> "$GITHUB_OUTPUT"
  tests:
    needs: setup
    runs-on: ubuntu-latest
    outputs:
      seen: ${{{{ steps.o.outputs.seen }}}}
    strategy:
      matrix: ${{{{ fromJSON(needs.setup.outputs.matrix) }}}}
    steps:
      - id: o
        run: echo "seen=by-${{{{ matrix.python }}}}" >> "$GITHUB_OUTPUT"
      - run: |
          ls entry-*.txt 2>/dev/null && exit 9
          touch "entry-${{{{ matrix.python }}}}.txt"
          echo "python ${{{{ matrix.python }}}} extra=${{{{ matrix.extra }}}} of ${{{{ strategy.job-total }}}}"
          mkdir -p .sauci-gha/tests/junit
          echo '{JUNIT}' > .sauci-gha/tests/junit/r.xml
  axis:
    needs: [setup]
    runs-on: ubuntu-latest
    strategy:
      matrix:
        letter: ${{{{ fromJSON(needs.setup.outputs.versions) }}}}
        n: [1]
    steps:
      - run: echo "axis ${{{{ matrix.letter }}}}-${{{{ matrix.n }}}}"
  extras:
    needs: setup
    runs-on: ubuntu-latest
    strategy:
      matrix:
        include: ${{{{ fromJSON(needs.setup.outputs.extra) }}}}
    steps:
      - run: echo "tox ${{{{ matrix.tox }}}}"
  after:
    needs: [tests, axis, extras]
    runs-on: ubuntu-latest
    steps:
      - run: echo "after-ran ${{{{ needs.tests.outputs.seen }}}}"
"""


def test_sauci_run_expands_each_form_into_steps_of_their_own(tmp_path: Path) -> None:
    repo = repository(tmp_path, WORKFLOW)
    result = sauci("run", str(repo))
    out = result.stdout + result.stderr
    assert 0 == result.returncode, out
    for expected in (
        "python 3.10 extra= of 2",
        "python 3.11 extra=x of 2",
        "axis a-1",
        "axis b-1",
        "tox lint",
        "tox docs",
        "after-ran by-3.",  # the outputs of the entry that ended last
        "added 2 steps: 'tests (3.10)', 'tests (3.11, x)'",
        "added 2 steps: 'axis (a, 1)', 'axis (b, 1)'",
        "added 2 steps: 'extras (lint)', 'extras (docs)'",
    ):
        assert expected in out, expected
    assert "Traceback" not in out
    shown = sauci("show", "1")
    assert 0 == shown.returncode, shown.stderr
    for name in ("tests (3.10)", "tests (3.11, x)", "axis (b, 1)", "extras (docs)"):
        assert name in shown.stdout, name


def test_validate_shows_the_dynamic_jobs(tmp_path: Path) -> None:
    result = sauci("validate", str(repository(tmp_path, WORKFLOW)))
    assert 0 == result.returncode, result.stdout + result.stderr
    assert "- tests  [entries from needs.setup.outputs.matrix at run time]" in result.stdout
    assert "- axis  [entries from needs.setup.outputs.versions at run time]" in result.stdout


FAIL_FAST = """\
on: push
jobs:
  setup:
    runs-on: ubuntu-latest
    outputs:
      matrix: ${{ steps.set.outputs.matrix }}
    steps:
      - id: set
        run: echo 'matrix={"n":[1,2,3]}' >> "$GITHUB_OUTPUT"
  tests:
    needs: setup
    runs-on: ubuntu-latest
    strategy:
      max-parallel: 1
      matrix: ${{ fromJSON(needs.setup.outputs.matrix) }}
    steps:
      - run: test "${{ matrix.n }}" != 1
  after:
    needs: tests
    runs-on: ubuntu-latest
    steps:
      - run: echo never-printed
"""


def test_fail_fast_and_max_parallel_hold_for_the_entries(tmp_path: Path) -> None:
    result = sauci("run", str(repository(tmp_path, FAIL_FAST)))
    out = result.stdout + result.stderr
    assert 1 == result.returncode, out
    assert "never-printed" not in out
    # One entry at a time: the later ones had not started when the first
    # failed, so they are skipped (not cancelled while running).
    # (each printed twice: as it ends and in the summary table)
    assert 4 == out.count("skipped: fail-fast after 'tests (1)' failed"), out
    assert "skipped: needs 'tests (1)', which failed" in out


def _expanded(tmp_path: Path, value: str, matrix: str = "${{ fromJSON(needs.setup.outputs.m) }}"):
    """The placeholder step of ``tests`` expanded with the setup job's output ``m`` = value."""
    text = FAIL_FAST.replace("${{ fromJSON(needs.setup.outputs.matrix) }}", matrix)
    plan = plan_github(text, PlanSettings(file="ci.yml"))
    step = plan.pipeline.step("tests")
    assert step.expansion is not None
    outputs = tmp_path / ".sauci-gha" / "outputs"
    outputs.mkdir(parents=True, exist_ok=True)
    (outputs / "setup.json").write_text(json.dumps({"m": value}))
    return step.expansion.describe, lambda: step.expansion.expand(tmp_path)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (json.dumps({"n": list(range(10_000))}), "10000 combinations, more than 4096"),
        (
            json.dumps({"include": [{"n": i} for i in range(300)]}),
            "300 combinations, more than 256",
        ),
        (json.dumps({"include": [{}] * 5000}), "5000 entries, more than 512"),
        ("{", "ci.yml:15:15: "),
        ("[1, 2]", "not an object"),
        ("[" * 5000 + "]" * 5000, "ci.yml:15:15: "),
        ("", "needs.setup.outputs.m is empty: the job 'setup' did not set it"),
        ("x" * (2 << 20), "the outputs of the job 'setup' are 2097161 bytes, more than 1048576"),
        ('{"n": "not a list"}', "the matrix axis 'n' must be a list of values"),
        ('{"n": [1], "include": [1]}', "each entry of the matrix's 'include' must be a mapping"),
    ],
)
def test_hostile_outputs_are_a_message_naming_the_job_and_output(
    tmp_path: Path, value: str, message: str
) -> None:
    describe, expand = _expanded(tmp_path, value)
    assert "job 'tests': matrix from needs.setup.outputs.m" == describe
    with pytest.raises(ValueError) as caught:
        expand()
    assert message in str(caught.value)


def test_an_axis_and_include_from_outputs_expand_by_the_written_rules(tmp_path: Path) -> None:
    matrix = '{n: "${{ fromJSON(needs.setup.outputs.m) }}", os: [linux], include: [{n: 2, x: y}]}'
    _describe, expand = _expanded(tmp_path, "[1, 2]", matrix)
    steps = expand()
    assert [{"n": "1", "os": "linux"}, {"n": "2", "os": "linux", "x": "y"}] == [
        dict(s.matrix) for s in steps
    ]
    assert all(s.max_parallel == ("tests", 1) and s.fail_fast_group == "tests" for s in steps)
    assert all(s.needs == ("setup",) for s in steps)


def test_a_hostile_matrix_fails_the_build_under_sauci_run_with_the_reason(tmp_path: Path) -> None:
    text = FAIL_FAST.replace(
        """run: echo 'matrix={"n":[1,2,3]}'""",
        'run: |\n          python3 -c \'import json; print("matrix=" + json.dumps({"n": list(range(10000))}))\'',
    )
    result = sauci("run", str(repository(tmp_path, text)))
    out = result.stdout + result.stderr
    assert 1 == result.returncode, out
    assert "job 'tests': matrix from needs.setup.outputs.matrix: " in out
    assert "10000 combinations" in out
    assert "Traceback" not in out and "never-printed" not in out


def test_sauci_serve_builds_the_entries_with_their_test_results(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", grace=1.0, sandbox="local")
    bare = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(bare), str(work))
    git(work, "checkout", "-q", "-b", "main")
    (work / ".github" / "workflows").mkdir(parents=True)
    (work / ".github" / "workflows" / "ci.yml").write_text(WORKFLOW)
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "first")
    server = start_server(settings, bare)
    try:
        git(work, "push", "-q", "origin", "main")
        builds = wait_for(lambda: finished(server.store, 1), timeout=120)
        steps = server.store.list_steps(builds[0].id)
        results = server.store.list_test_results(builds[0].id)
    finally:
        server.stop()
    assert Status.PASSED == builds[0].status, builds[0].reason
    by_name = {s.name: s for s in steps}
    entries = ["tests (3.10)", "tests (3.11, x)", "axis (a, 1)", "axis (b, 1)"]
    assert all(Status.PASSED == by_name[n].status for n in entries)
    assert "added 2 steps" in (by_name["tests"].reason or "")
    assert set(entries[:2]) <= set(by_name["after"].needs)
    assert "python 3.11 extra=x of 2" in Path(by_name["tests (3.11, x)"].log_path).read_text()
    tests = sorted((step, case.name) for step, case in results)
    assert [("tests (3.10)", "test_3.10"), ("tests (3.11, x)", "test_3.11")] == tests


@pytest.mark.parametrize("value", ["0", "-3", "true", "2.5", "lots"])
def test_max_parallel_that_is_not_a_whole_number_above_0_is_named(value: str) -> None:
    text = FAIL_FAST.replace("max-parallel: 1", f"max-parallel: {value}")
    with pytest.raises(PipelineError, match=r"ci\.yml:14:21: max-parallel must be a whole number"):
        plan_github(text, PlanSettings(file="ci.yml"))
