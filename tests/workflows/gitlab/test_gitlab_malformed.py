"""No .gitlab-ci.yml makes the front end fail with anything but located
problems: malformed values of every key, and random documents built from
GitLab's keys (hypothesis)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sauci.exceptions import PipelineError
from sauci.workflows.gitlab import GitLabContext, plan_gitlab

MALFORMED = [
    "stages: 5\na: {script: [x]}",
    "a: {script: [x], only: {refs: 5}}",
    "a: {script: [x], only: {variables: 5}}",
    "a: {script: [x], parallel: {matrix: [{A: {x: 1}}]}}",
    "a: {script: [x], parallel: {matrix: [{A: []}]}}",
    "a: {script: [x], inherit: 5}",
    "a: {script: [x], inherit: {default: 5}}",
    "a: {script: [x], needs: [a]}",
    "a: {script: [x], cache: {key: {files: 5}, paths: [a]}}",
    "a: {script: [x], services: [{name: x, variables: [1]}]}",
    "a: {script: [x], rules: [{when: 5}]}",
    "workflow: {rules: [{if: '$A ==' }]}\na: {script: [x]}",
    "include: [{local: 5}]\na: {script: [x]}",
    "a: {script: !reference [[x]]}",
]


@pytest.mark.parametrize("text", MALFORMED)
def test_malformed_values_are_located_problems(tmp_path: Path, text: str) -> None:
    (tmp_path / ".gitlab-ci.yml").write_text(text, encoding="utf-8")
    with pytest.raises(PipelineError) as info:
        plan_gitlab(tmp_path, context=GitLabContext())
    for problem in info.value.problems:
        assert "internal error" not in problem.message
        assert problem.line >= 1 and problem.column >= 1


KEYS = [
    "script", "before_script", "after_script", "stage", "needs", "rules", "only", "except",
    "when", "allow_failure", "parallel", "image", "services", "cache", "artifacts", "variables",
    "extends", "timeout", "retry", "inherit", "if", "changes", "exists", "matrix", "key",
    "paths", "reports", "junit", "exit_codes", "max", "job", "optional", "local", "name",
]  # fmt: skip
SCALARS = st.one_of(
    st.sampled_from(["x", "$A", "a b", "1h", "/re/", "on_failure", "manual", ".t", "test", ""]),
    st.integers(-3, 300),
    st.booleans(),
    st.none(),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)
    ),
    max_leaves=12,
)
DOCUMENTS = st.dictionaries(
    st.sampled_from(["a", "b", ".t", "default", "variables", "stages", "workflow", "include"]),
    VALUES,
    max_size=4,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(document=DOCUMENTS)
def test_random_documents_plan_or_give_located_problems(tmp_path: Path, document: dict) -> None:
    (tmp_path / ".gitlab-ci.yml").write_text(yaml.safe_dump(document), encoding="utf-8")
    try:
        plan_gitlab(tmp_path, context=GitLabContext())
    except PipelineError as exc:
        assert not [p for p in exc.problems if "internal error" in p.message], exc.problems
