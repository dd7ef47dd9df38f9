"""``resources:`` in .sauci.yml: read, made the steps' limits, capped by the server."""

from __future__ import annotations

import pytest

from sauci.core.models import Limits
from sauci.core.pipeline import parse_pipeline
from sauci.core.resources import Resources
from sauci.exceptions import PipelineError

GIB = 2**30


def test_pipeline_resources_are_the_build_cost_and_each_steps_limits() -> None:
    text = (
        "resources: {cpus: 2, memory: 2GiB}\n"
        "steps:\n"
        "  - {name: a, run: 'true'}\n"
        "  - {name: b, run: 'true', resources: {cpus: 0.5}, limits: {memory: 1GiB}}\n"
    )
    pipeline = parse_pipeline(text)
    assert Resources(cpus=2, memory=2 * GIB) == pipeline.resources
    a, b = pipeline.steps
    assert Limits(cpu=2.0, memory=2 * GIB) == a.limits
    assert Limits(cpu=0.5, memory=GIB) == b.limits  # an explicit limit is kept


def test_a_pushed_pipeline_cannot_declare_more_than_the_server_maximum() -> None:
    text = "steps:\n  - name: a\n    run: 'true'\n    resources: {cpus: 64, memory: 1TiB}\n"
    with pytest.raises(PipelineError) as caught:
        parse_pipeline(text, max_resources=Resources(cpus=4, memory=8 * GIB))
    messages = [str(p) for p in caught.value.problems]
    assert [
        ".sauci.yml:4:16: 'resources' in step 'a': 64 CPUs is more than this server's "
        "per-build maximum of 4",
        ".sauci.yml:4:16: 'resources' in step 'a': memory 1024 GiB is more than this "
        "server's per-build maximum of 8 GiB",
    ] == messages


@pytest.mark.parametrize(
    ("value", "fault"),
    [
        ("{cpus: 0}", "expected more than 0 cores"),
        ("{cpus: -1}", "expected more than 0 cores"),
        ("{gpus: 1}", "gpus"),
        ("[1, 2]", "expected a mapping with 'cpus'"),
        ("{memory: lots}", "expected a size"),
    ],
)
def test_hostile_resources_are_located_problems(value: str, fault: str) -> None:
    with pytest.raises(PipelineError) as caught:
        parse_pipeline(f"resources: {value}\nsteps:\n  - {{name: a, run: 'true'}}\n")
    problem = caught.value.problems[0]
    assert (1, fault in problem.message) == (problem.line, True), problem.message


def test_resources_survive_a_dump_and_a_parse() -> None:
    from sauci.core.pipeline import dump_pipeline

    text = "resources: {cpus: 1.5, memory: 3GiB}\nsteps:\n  - {name: a, run: 'true'}\n"
    pipeline = parse_pipeline(text)
    assert pipeline == parse_pipeline(dump_pipeline(pipeline))


def test_the_per_build_maximum_comes_from_settings_else_the_machine(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from sauci.core.config import load_settings
    from sauci.core.resources import build_maximum, machine_capacity

    settings = load_settings(
        cwd=tmp_path, environ={"SAUCI_MAX_BUILD_CPUS": "1.5", "SAUCI_MAX_BUILD_MEMORY": "2GiB"}
    )
    assert Resources(cpus=1.5, memory=2 * GIB) == build_maximum(
        settings.max_build_cpus, settings.max_build_memory
    )
    assert machine_capacity() == build_maximum(None, None)
    assert build_maximum(None, None, machine=False) is None


def test_a_pushed_pipeline_cannot_take_more_than_the_server_maximum_through_limits() -> None:
    """Hostile: ``resources:`` above the maximum is refused, but ``limits:``
    is what the sandbox enforces: a cheap declared cost (or none: 1 CPU)
    with ``limits: {cpu: 64, memory: 1TiB}`` reserved one core and took 64."""
    text = (
        "steps:\n  - name: a\n    run: 'true'\n    resources: {cpus: 1}\n"
        "    limits: {cpu: 64, memory: 1TiB, processes: 100}\n"
    )
    with pytest.raises(PipelineError) as caught:
        parse_pipeline(text, max_resources=Resources(cpus=4, memory=8 * GIB))
    messages = [str(p) for p in caught.value.problems]
    assert [
        ".sauci.yml:5:13: 'limits' in step 'a': cpu 64 is more than this server's "
        "per-build maximum of 4 CPUs (max_build_cpus)",
        ".sauci.yml:5:13: 'limits' in step 'a': memory 1024 GiB is more than this "
        "server's per-build maximum of 8 GiB (max_build_memory)",
    ] == messages
    within = text.replace("cpu: 64, memory: 1TiB", "cpu: 4, memory: 8GiB")
    step = parse_pipeline(within, max_resources=Resources(cpus=4, memory=8 * GIB)).steps[0]
    assert Limits(cpu=4.0, memory=8 * GIB, processes=100) == step.limits
    assert (
        Limits(cpu=64.0, memory=1024 * GIB, processes=100) == parse_pipeline(text).steps[0].limits
    )
