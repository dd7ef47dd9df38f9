"""A job's container: and services: read into the step's image and services,
and what SauCI cannot do named with its place in the file."""

from __future__ import annotations

import pytest

from sauci.exceptions import ConfigError
from sauci.workflows.github import Settings, plan_github

JOB = """\
on: push
jobs:
  test:
    runs-on: ubuntu-latest
{extra}
    steps:
      - run: echo hi
"""


def plan(extra: str):
    return plan_github(JOB.format(extra=extra), Settings(file="ci.yml"))


def test_container_and_services_become_the_steps_image_and_services() -> None:
    step = plan(
        """\
    container: python:3.12-slim
    services:
      postgres:
        image: postgres:16
        env: {POSTGRES_PASSWORD: pw}
        ports: ["5432:5432"]
        options: >-
          --health-cmd pg_isready --health-interval 10s --health-retries 5
      redis: redis:7"""
    ).pipeline.steps[0]
    assert step.image == "python:3.12-slim"
    assert step.shell[:2] == ("sh", "-c")  # the image's python3, checked first
    assert step.env["SAUCI_LIBRARY"] == "1"
    postgres, redis = step.services
    assert (postgres.name, postgres.image, dict(postgres.env)) == (
        "postgres",
        "postgres:16",
        {"POSTGRES_PASSWORD": "pw"},
    )
    assert (postgres.ready, postgres.ready_timeout) == ("pg_isready", 50.0)
    assert (redis.image, redis.ready) == ("redis:7", None)


def test_a_job_on_the_runner_with_services_runs_in_the_default_images_python() -> None:
    """Services run on Docker, so the job does too, in the sandbox's default
    image: its driver is that image's python3, checked first."""
    step = plan("    services:\n      redis:\n        image: redis:7").pipeline.steps[0]
    assert step.image is None and step.env["SAUCI_LIBRARY"] == "1"
    assert step.shell[:2] == ("sh", "-c") and "default image" in step.shell[2]
    plain = plan("").pipeline.steps[0]
    assert "SAUCI_LIBRARY" not in plain.env
    assert plain.shell[0] != "sh"  # the runner's own python


def test_services_the_sandbox_cannot_run_are_named_at_their_key() -> None:
    from sauci.app.sandboxes import sandbox_capabilities
    from sauci.exceptions import PipelineError

    text = JOB.format(extra="    services:\n      redis:\n        image: redis:7")
    text = text.replace("  test:", "  test:\n    strategy: {matrix: {n: [1, 2]}}")
    with pytest.raises(PipelineError) as caught:
        plan_github(text, Settings(file="ci.yml", capabilities=sandbox_capabilities("local")))
    assert [str(p) for p in caught.value.problems] == [  # once for the job, not per entry
        "ci.yml:7:7: sandbox 'local' cannot run services (job 'test'): use --sandbox docker"
    ]
    assert plan_github(text, Settings(capabilities=sandbox_capabilities("docker"))).pipeline


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("    container:\n      image: x\n      options: --privileged", "option --privileged"),
        ("    container:\n      image: x\n      volumes: [/:/host]", "container: volumes is not"),
        (
            "    services:\n      db:\n        image: x\n        options: --network host",
            "--network",
        ),
        (
            "    services:\n      db:\n        image: x\n        credentials: {username: u}",
            "credentials",
        ),
        ("    services:\n      db:\n        image: x\n        ports: ['8080:80']", "port 8080:80"),
        ("    services:\n      Bad_Name:\n        image: x", "services.Bad_Name"),
        ("    services:\n      db:\n        image: ${{ secrets.IMAGE }}", "known before the job"),
        ("    container: {env: {A: 1}}", "container: an image name"),
    ],
)
def test_what_sauci_cannot_do_is_an_error_naming_it(extra: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"ci\.yml:\d+:\d+: .*") as caught:
        plan(extra)
    assert message in str(caught.value)


@pytest.mark.parametrize("retries", ["²", "9" * 5000, "-1"])
def test_a_health_retries_count_that_is_no_count_is_a_problem_at_its_place(retries) -> None:
    """A pushed workflow's `--health-retries ²`: str.isdigit() holds, int() refuses,
    and the ValueError escaped the workflow reader instead of a located problem."""
    with pytest.raises(ConfigError, match=r"ci\.yml:\d+:\d+: services\.db: .*--health-retries"):
        plan(
            f"""\
    services:
      db:
        image: postgres:16
        options: --health-cmd pg_isready --health-retries {retries}"""
        )


def test_local_actions_that_use_each_other_many_times_are_bounded(tmp_path, monkeypatch) -> None:
    """A 1 KB action.yml using `./a` 30 times, five deep, was 24 million reads
    and parses of pushed files for one workflow: the reader never ended (the
    server's build, and its concurrency gate, with it). Now: at most MAX_USES
    uses in the job entry, and the file read once."""
    import sauci.workflows.github._composite as composite

    (tmp_path / "a").mkdir()
    steps = "    - uses: ./a\n" * 30
    (tmp_path / "a" / "action.yml").write_text(f"runs:\n  using: composite\n  steps:\n{steps}")
    reads, uses = [], []
    real_read, real_once = composite._action_file, composite._read_once
    monkeypatch.setattr(composite, "_action_file", lambda *a: reads.append(a) or real_read(*a))
    monkeypatch.setattr(composite, "_read_once", lambda *a: uses.append(a) or real_once(*a))
    workflow = "on: push\njobs:\n  t:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: ./a\n"
    with pytest.raises(ConfigError):  # nested too deep, too many uses
        plan_github(workflow, Settings(file="ci.yml", workspace=tmp_path))
    assert (len(uses), len(reads)) == (composite.MAX_USES, 1)
