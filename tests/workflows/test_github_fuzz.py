"""No workflow file makes the GitHub front end fail other than with located problems.

A pushed file is untrusted: whatever its shape, planning it gives a plan or
a PipelineError, never another exception (a traceback in the server's log
and an errored build with no reason a user can act on).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sauci.exceptions import PipelineError
from sauci.workflows.github import Settings, plan_github

KEYS = [
    "on",
    "jobs",
    "env",
    "name",
    "defaults",
    "permissions",
    "concurrency",
    "runs-on",
    "steps",
    "strategy",
    "matrix",
    "include",
    "exclude",
    "fail-fast",
    "needs",
    "if",
    "run",
    "uses",
    "with",
    "shell",
    "working-directory",
    "timeout-minutes",
    "continue-on-error",
    "outputs",
    "id",
    "push",
    "branches",
    "schedule",
    "cron",
    "python-version",
    "path",
    "key",
    "test",
    "build",
    "run",
    "services",
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=False, allow_infinity=False, width=16),
    st.sampled_from(
        [
            "ubuntu-latest",
            "windows-latest",
            "echo hi",
            "actions/checkout@v4",
            "actions/setup-python@v5",
            "actions/cache@v4",
            "actions/upload-artifact@v4",
            "./local",
            "${{ matrix.x }}",
            "${{ fromJSON('[1,2]') }}",
            "${{ always() }}",
            "failure()",
            "${{",
            "}}",
            "bash",
            "pwsh",
            "python {0}",
            "3.x",
            "x",
            "",
            "${{ steps.a.outputs.b }}",
            "${{ needs.test.result }}",
            "${{ secrets.T }}",
        ]
    ),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(KEYS), inner, max_size=4),
    ),
    max_leaves=25,
)
DOCS = st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=5)
ON = st.one_of(
    st.just("push"),
    VALUES,
    st.dictionaries(
        st.sampled_from(["push", "schedule", "workflow_dispatch", "pull_request"]),
        st.one_of(
            VALUES,
            st.dictionaries(
                st.sampled_from(["branches", "branches-ignore", "paths", "cron", "inputs"]), VALUES
            ),
        ),
    ),
)
STEP = st.dictionaries(
    st.sampled_from(
        [
            "run",
            "uses",
            "with",
            "if",
            "env",
            "shell",
            "id",
            "name",
            "working-directory",
            "continue-on-error",
            "timeout-minutes",
        ]
    ),
    VALUES,
    max_size=4,
)
JOB = st.one_of(
    st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=6),
    st.fixed_dictionaries(
        {"runs-on": VALUES, "steps": st.lists(STEP, max_size=3)},
        optional={
            "strategy": VALUES,
            "needs": VALUES,
            "if": VALUES,
            "env": VALUES,
            "defaults": VALUES,
            "outputs": VALUES,
        },
    ),
)
JOBS = st.fixed_dictionaries(
    {
        "on": ON,
        "jobs": st.dictionaries(
            st.sampled_from(["test", "build", "lint"]),
            JOB,
            min_size=1,
            max_size=3,
        ),
    }
)


def plan(text: str, workspace: Path) -> None:
    with contextlib.suppress(PipelineError):
        plan_github(text, Settings(workspace=workspace, file="fuzz.yml", path=""))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(doc=st.one_of(DOCS, JOBS))
def test_any_document_is_planned_or_refused_with_problems(doc, tmp_path: Path) -> None:
    plan(yaml.safe_dump(doc, sort_keys=False), tmp_path)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(alphabet=st.sampled_from(list("on:jobs- \n{}[]'\"$#&*!|>")), max_size=80))
def test_any_text_is_planned_or_refused_with_problems(text: str, tmp_path: Path) -> None:
    plan(text, tmp_path)
