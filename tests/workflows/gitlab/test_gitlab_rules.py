"""rules:if expressions, rules, only/except and workflow rules, decided as
GitLab documents them."""

from __future__ import annotations

from pathlib import Path

import pytest

from sauci.exceptions import PipelineError
from sauci.workflows.gitlab import GitLabContext, plan_gitlab
from sauci.workflows.gitlab._condition import ConditionError, evaluate, parse

VARS = {"CI_COMMIT_BRANCH": "main", "EMPTY": "", "TAG": "v1.2.3", "RE": "/^v1/", "A": "x", "B": "x"}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("$CI_COMMIT_BRANCH", True),
        ("$EMPTY", False),  # set but empty is not "present"
        ("$UNSET", False),
        ('$CI_COMMIT_BRANCH == "main"', True),
        ("$CI_COMMIT_BRANCH == 'main'", True),
        ('$CI_COMMIT_BRANCH != "main"', False),
        ("$UNSET == null", True),
        ("$EMPTY == null", False),
        ('$EMPTY == ""', True),
        ("$UNSET != null", False),
        ("$TAG =~ /^v\\d+\\.\\d+/", True),
        ("$TAG =~ /^V1/i", True),
        ("$TAG =~ /^V1/", False),
        ("$TAG !~ /^v/", False),
        ("$UNSET =~ /.*/", False),
        ("$TAG =~ $RE", True),  # a regex held in a variable
        ("$A == $B", True),
        ("${CI_COMMIT_BRANCH} == 'main'", True),
        ('$CI_COMMIT_BRANCH == "x" || $TAG', True),
        ('$CI_COMMIT_BRANCH == "x" || $TAG && $UNSET', False),  # && binds tighter
        ('($CI_COMMIT_BRANCH == "x" || $TAG) && $UNSET', False),
        ('$CI_COMMIT_BRANCH == "main" && ($UNSET || $A == "x")', True),
        ("$TAG =~ /a\\/b/ || $A", True),
    ],
)
def test_an_expression_evaluates_as_gitlab_documents(expression: str, expected: bool) -> None:
    assert evaluate(parse(expression), VARS) is expected


@pytest.mark.parametrize(
    "expression",
    ['$A == "x', "$A ==", "($A", "$A && ", '"text"', "$A =~ 'x'", "$A =~ /x/q", "$(id)", "`id`"],
)
def test_a_broken_expression_is_an_error_not_a_guess(expression: str) -> None:
    with pytest.raises(ConditionError):
        parse(expression)


def _plan(tmp_path: Path, text: str, **context: object):  # type: ignore[no-untyped-def]
    (tmp_path / ".gitlab-ci.yml").write_text(text, encoding="utf-8")
    return plan_gitlab(tmp_path, context=GitLabContext(**context))  # type: ignore[arg-type]


def _names(plan) -> list[str]:  # type: ignore[no-untyped-def]
    return [s.name for s in plan.pipeline.steps]


RULES = """
a:
  script: [x]
  rules:
    - if: $CI_COMMIT_TAG
      when: never
    - if: $CI_COMMIT_BRANCH == "main"
    - changes: [src/**/*.py]
b:
  script: [x]
  rules:
    - exists: [setup.cfg]
c:
  script: [x]
  variables: {DEPLOY: "yes"}
  rules:
    - if: $DEPLOY == "yes" && $CI_COMMIT_REF_NAME =~ /^release-/
      variables: {LEVEL: release}
"""


def test_the_first_matching_rule_decides(tmp_path: Path) -> None:
    plan = _plan(tmp_path, RULES, branch="main")
    assert _names(plan) == ["a"]
    assert dict(plan.left_out) == {"b": "no rule matches", "c": "no rule matches"}
    tag = _plan(tmp_path, RULES, branch=None, tag="v1")
    assert dict(tag.left_out)["a"] == "rule 1 says when: never"


def test_changes_hold_when_nothing_is_known_and_compare_when_it_is(tmp_path: Path) -> None:
    assert "a" in _names(_plan(tmp_path, RULES, branch="topic"))  # changed unknown
    assert "a" in _names(_plan(tmp_path, RULES, branch="topic", changed=["src/pkg/m.py"]))
    assert "a" not in _names(_plan(tmp_path, RULES, branch="topic", changed=["README.md"]))


def test_exists_looks_in_the_repository(tmp_path: Path) -> None:
    assert "b" not in _names(_plan(tmp_path, RULES))
    (tmp_path / "setup.cfg").write_text("", encoding="utf-8")
    assert "b" in _names(_plan(tmp_path, RULES))


def test_rules_use_job_variables_and_set_their_own(tmp_path: Path) -> None:
    plan = _plan(tmp_path, RULES, branch="release-2")
    step = plan.pipeline.step("c")
    assert step.env["LEVEL"] == "release"
    assert step.env["DEPLOY"] == "yes"


ONLY = """
default-refs:
  script: [x]
tags-only:
  script: [x]
  only: [tags]
regex:
  script: [x]
  only: [/^release\\/.*$/]
except-wip:
  script: [x]
  except: [/^wip-/, schedules]
refs-and-variables:
  script: [x]
  only:
    refs: [main]
    variables: [$GO == "1"]
except-any-key:
  script: [x]
  except:
    refs: [main]
    variables: [$GO == "1"]
variables: {GO: "0"}
"""


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ({"branch": "main"}, ["default-refs", "except-wip"]),
        ({"branch": "release/1.0"}, ["default-refs", "regex", "except-wip", "except-any-key"]),
        ({"branch": "wip-x"}, ["default-refs", "except-any-key"]),
        (
            {"branch": None, "tag": "v1"},
            ["default-refs", "tags-only", "except-wip", "except-any-key"],
        ),
        ({"branch": "main", "source": "schedule"}, ["default-refs"]),
    ],
)
def test_only_and_except_choose_jobs(tmp_path: Path, context: dict, expected: list[str]) -> None:
    assert _names(_plan(tmp_path, ONLY, **context)) == expected


def test_only_joins_its_keys_with_and(tmp_path: Path) -> None:
    text = ONLY.replace('GO: "0"', 'GO: "1"')
    names = _names(_plan(tmp_path, text, branch="main"))
    assert "refs-and-variables" in names
    assert "except-any-key" not in names  # except: any key that matches leaves it out
    assert "refs-and-variables" not in _names(_plan(tmp_path, text, branch="other"))


def test_workflow_rules_leave_out_the_whole_pipeline(tmp_path: Path) -> None:
    text = "workflow:\n  rules:\n    - if: $CI_COMMIT_TAG\na:\n  script: [x]\n"
    plan = _plan(tmp_path, text, branch="main")
    assert _names(plan) == []
    assert plan.left_out[0][0] == "a"
    assert "workflow" in plan.left_out[0][1]
    assert _names(_plan(tmp_path, text, branch=None, tag="v1")) == ["a"]


def test_a_bad_condition_is_located(tmp_path: Path) -> None:
    text = "a:\n  script: [x]\n  rules:\n    - if: $A == 'x\n"
    with pytest.raises(PipelineError) as info:
        _plan(tmp_path, text)
    problem = info.value.problems[0]
    assert (problem.line, problem.column) == (4, 7)  # the if: key
    assert "if:" in problem.message


def test_rules_and_only_together_are_an_error(tmp_path: Path) -> None:
    text = "a:\n  script: [x]\n  rules: [{when: always}]\n  only: [main]\n"
    with pytest.raises(PipelineError, match="rules and only cannot be used together"):
        _plan(tmp_path, text)


def test_rules_see_variables_expanded(tmp_path: Path) -> None:
    text = 'variables: {BASE: prod, TARGET: "$BASE-eu"}\na:\n  script: [x]\n  rules:\n'
    text += '    - if: $TARGET == "prod-eu"\n'
    assert _names(_plan(tmp_path, text)) == ["a"]
