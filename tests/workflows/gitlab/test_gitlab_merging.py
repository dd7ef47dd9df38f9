"""extends (multi-level, deep merge), default:, YAML anchors and merge keys,
!reference, and the problems each can have, located."""

from __future__ import annotations

from pathlib import Path

import pytest

from sauci.exceptions import PipelineError
from sauci.workflows.gitlab import GitLabContext, plan_gitlab


def _steps(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    (tmp_path / ".gitlab-ci.yml").write_text(text, encoding="utf-8")
    plan = plan_gitlab(tmp_path, context=GitLabContext())
    return {s.name: s for s in plan.pipeline.steps}


def _problems(tmp_path: Path, text: str) -> list[str]:
    (tmp_path / ".gitlab-ci.yml").write_text(text, encoding="utf-8")
    with pytest.raises(PipelineError) as info:
        plan_gitlab(tmp_path, context=GitLabContext())
    return [str(p) for p in info.value.problems]


def _commands(step) -> list[str]:  # type: ignore[no-untyped-def]
    return [line for line in step.run if not line.startswith(("printf ", "export "))]


EXTENDS = """
.a:
  image: python:3.10
  variables: {X: a, Y: a}
  script: [from-a]
  artifacts: {paths: [a/]}
.b:
  extends: .a
  variables: {Y: b, Z: b}
  script: [from-b]
.c:
  image: python:3.12
  retry: 1
job:
  extends: [.b, .c]
  variables: {Z: job}
"""


def test_extends_merges_mappings_deeply_and_replaces_everything_else(tmp_path: Path) -> None:
    job = _steps(tmp_path, EXTENDS)["job"]
    assert (job.env["X"], job.env["Y"], job.env["Z"]) == ("a", "b", "job")
    assert _commands(job) == ["from-b"]  # lists are replaced, not joined
    assert job.image == "python:3.12"  # the later parent wins
    assert job.retries == 1
    assert job.artifacts == ("a/**",)


def test_an_extends_cycle_and_an_unknown_parent_are_located(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        ".x:\n  extends: .y\n.y:\n  extends: .x\nj:\n  extends: [.x, .nope]\n  script: [a]\n",
    )
    assert any("extends itself" in p for p in problems)
    assert any(p.startswith(".gitlab-ci.yml:6:3:") and "'.nope'" in p for p in problems)


def test_default_and_inherit(tmp_path: Path) -> None:
    text = """
default:
  image: python:3.11
  before_script: [setup]
  retry: 2
variables: {G: global}
plain:
  script: [run]
narrow:
  inherit: {default: [image], variables: false}
  script: [run]
own:
  image: alpine
  before_script: []
  script: [run]
"""
    steps = _steps(tmp_path, text)
    assert steps["plain"].image == "python:3.11" and steps["plain"].retries == 2
    assert _commands(steps["plain"]) == ["setup", "run"]
    assert steps["plain"].env["G"] == "global"
    assert steps["narrow"].image == "python:3.11" and steps["narrow"].retries == 0
    assert _commands(steps["narrow"]) == ["run"] and "G" not in steps["narrow"].env
    assert steps["own"].image == "alpine" and _commands(steps["own"]) == ["run"]


def test_anchors_merge_keys_and_references(tmp_path: Path) -> None:
    text = """
.setup: &setup
  - pip install -e .
.vars: &vars
  A: "1"
  B: "2"
.tmpl:
  script: [pytest, coverage xml]
  rules:
    - if: $CI_COMMIT_BRANCH
job:
  variables:
    <<: *vars
    B: "3"
  before_script: *setup
  script:
    - !reference [.tmpl, script]
    - echo done
  rules:
    - !reference [.tmpl, rules]
"""
    job = _steps(tmp_path, text)["job"]
    assert (job.env["A"], job.env["B"]) == ("1", "3")
    assert _commands(job) == ["pip install -e .", "pytest", "coverage xml", "echo done"]


def test_a_reference_to_nothing_is_located(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "job:\n  script: !reference [.none, script]\n")
    assert problems == [".gitlab-ci.yml:2:23: !reference [.none] points at nothing"]


def test_variables_expand_as_gitlab_does(tmp_path: Path) -> None:
    text = """
variables:
  BASE: /opt
  TOOL: "${BASE}/tool"
  PRICE: "$$5"
  RAW: {value: "$BASE", expand: false}
  CACHE: "$CI_PROJECT_DIR/.cache"
job:
  variables: {NAME: "$CI_JOB_NAME-$UNKNOWN-x"}
  script: [run]
"""
    job = _steps(tmp_path, text)["job"]
    assert job.env["TOOL"] == "/opt/tool"
    assert job.env["PRICE"] == "$5"
    assert job.env["RAW"] == "$BASE"
    assert job.env["NAME"] == "job--x"
    assert "CACHE" not in job.env  # known only when the step runs: set by its script
    assert 'export CACHE="${CI_PROJECT_DIR}"/.cache' in job.run


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a:\n  script: [x]\n  trigger: other/project\n", "trigger (downstream pipelines)"),
        ("a:\n  script: [x]\n  environment: production\n", "environment (deployments"),
        ("pages:\n  script: [x]\n", "GitLab Pages"),
        ("a:\n  script: [x]\n  resource_group: prod\n", "resource_group"),
        ("a:\n  script: [x]\n  artifacts: {reports: {coverage_report: {}}}\n", "coverage_report"),
        ("a:\n  script: [x]\n  when: delayed\n", "when: delayed (delayed jobs)"),
        ("a:\n  script: [x]\n  scirpt: [y]\n", "unknown key 'scirpt'"),
        ("a:\n  stage: nowhere\n  script: [x]\n", "stage 'nowhere' is not in stages"),
        ("a:\n  script: [x]\n  cache: [{paths: [a]}, {paths: [b]}]\n", "one cache per job"),
        ("a:\n  script: [x]\n  needs: [{pipeline: other}]\n", "needs: pipeline"),
        ("a:\n  script: [x]\n  needs: [b]\n", "needs 'b', which is not a job"),
        ("a:\n  image: python\n", "a job needs a script"),
        ("a: [1]\n", "a job is a mapping"),
        ("a:\n  script: [x]\n  timeout: soon\n", "timeout: expected a duration"),
    ],
)
def test_what_is_not_supported_is_named_at_its_place(
    tmp_path: Path, text: str, expected: str
) -> None:
    problems = _problems(tmp_path, text)
    assert any(expected in p for p in problems), problems
    assert all(p.startswith(".gitlab-ci.yml:") and p.split(":")[1] != "0" for p in problems)


def test_a_job_left_out_by_its_rules_cannot_be_needed_unless_optional(tmp_path: Path) -> None:
    text = "a:\n  script: [x]\n  rules: [{if: $NOPE}]\nb:\n  script: [x]\n  needs: [a]\n"
    assert "mark it optional" in _problems(tmp_path, text)[0]
    optional = text.replace("needs: [a]", "needs: [{job: a, optional: true}]")
    assert _steps(tmp_path, optional)["b"].needs == ()


def test_timeouts_retries_and_durations(tmp_path: Path) -> None:
    text = "a:\n  script: [x]\n  timeout: 1h 30m\n  retry: {max: 2, exit_codes: [137, 1]}\n"
    step = _steps(tmp_path, text)["a"]
    assert step.timeout == 5400 and step.retries == 2 and step.retry_on == (137, 1)
    step = _steps(tmp_path, "a:\n  script: [x]\n  timeout: 3 hours and 10 minutes\n")["a"]
    assert step.timeout == 3 * 3600 + 600


def test_services_are_named_as_gitlab_names_them_and_get_the_job_variables(
    tmp_path: Path,
) -> None:
    text = """
variables: {POSTGRES_PASSWORD: secret, TAG: "16"}
job:
  services:
    - postgres:$TAG
    - name: registry.example.com:5000/team/redis:7
    - {name: mysql:8, alias: "db,mysql", variables: {MYSQL_ROOT_PASSWORD: root}}
  script: [x]
"""
    services = _steps(tmp_path, text)["job"].services
    assert [(s.name, s.image) for s in services] == [
        ("postgres", "postgres:16"),
        ("registry-example-com-5000-team-redis", "registry.example.com:5000/team/redis:7"),
        ("db", "mysql:8"),
    ]
    assert services[0].env["POSTGRES_PASSWORD"] == "secret"
    assert services[2].env["MYSQL_ROOT_PASSWORD"] == "root"


def test_repeated_keys_keep_the_last_and_unset_image_variables_are_named(tmp_path: Path) -> None:
    text = "a:\n  script: [one]\n  script: [two]\n"
    assert _commands(_steps(tmp_path, text)["a"]) == ["two"]  # as GitLab's YAML reader does
    problems = _problems(
        tmp_path, "a:\n  image: $CI_REGISTRY_IMAGE:$CI_COMMIT_SHA\n  script: [x]\n"
    )
    assert problems == [
        ".gitlab-ci.yml:2:3: image: '$CI_REGISTRY_IMAGE:$CI_COMMIT_SHA' is ':' here: "
        "it uses variables this build does not set"
    ]


def test_a_job_left_out_of_this_build_is_still_checked(tmp_path: Path) -> None:
    """GitLab checks the whole file whatever the branch: so does SauCI, except
    for values only a build that runs the job would fill in."""
    release = "release:\n  rules: [{if: $CI_COMMIT_TAG}]\n  script: [x]\n"
    problems = _problems(tmp_path, "a:\n  script: [x]\n" + release + "  timeout: never\n")
    assert problems == [
        ".gitlab-ci.yml:6:3: timeout: expected a duration like '1h 30m' or '90 minutes', "
        "got 'never'"
    ]
    image = "  image: $CI_REGISTRY_IMAGE:$CI_COMMIT_TAG\n"
    assert list(_steps(tmp_path, "a:\n  script: [x]\n" + release + image)) == ["a"]
