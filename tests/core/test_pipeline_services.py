"""The ``services:`` key: reading, problems, and the dump round trip."""

from __future__ import annotations

import textwrap

import pytest

from sauci.core.models import Pipeline, Step
from sauci.core.pipeline import dump_pipeline, parse_pipeline, validate_pipeline
from sauci.core.step_parts import Service


def parse(text: str) -> Pipeline:
    return parse_pipeline(textwrap.dedent(text))


def problems(text: str) -> list[tuple[int, int, str]]:
    return [(p.line, p.column, p.message) for p in validate_pipeline(textwrap.dedent(text))]


def test_full_mapping_form() -> None:
    pipeline = parse(
        """\
        steps:
          test:
            run: make test
            services:
              - name: cache
                image: busybox
                command: [sh, -c, "exec httpd -f"]
                env: {A: 1, B: x}
                ready: wget -q -O- http://127.0.0.1:8080/
                ready_timeout: 10s
        """
    )
    assert pipeline.steps[0].services == (
        Service(
            name="cache",
            image="busybox",
            command=("sh", "-c", "exec httpd -f"),
            env={"A": "1", "B": "x"},
            ready="wget -q -O- http://127.0.0.1:8080/",
            ready_timeout=10.0,
        ),
    )


@pytest.mark.parametrize(
    ("image", "name"),
    [
        ("redis", "redis"),
        ("postgres:16", "postgres"),
        ("docker.io/library/redis:7", "redis"),
        ("registry:5000/team/db@sha256:abcd", "db"),
    ],
)
def test_bare_string_is_an_image_named_by_its_last_component(image: str, name: str) -> None:
    pipeline = parse(f"steps:\n  t:\n    run: x\n    services: ['{image}']\n")
    assert pipeline.steps[0].services == (Service(name=name, image=image),)


def test_defaults() -> None:
    service = parse("steps:\n  t:\n    run: x\n    services: [{name: db, image: pg}]\n")
    s = service.steps[0].services[0]
    assert (s.command, dict(s.env), s.ready, s.ready_timeout) == ((), {}, None, 30.0)
    assert parse("steps:\n  t:\n    run: x\n").steps[0].services == ()


def test_command_as_one_string_is_one_word() -> None:
    pipeline = parse(
        "steps:\n  t:\n    run: x\n    services: [{name: a, image: b, command: run}]\n"
    )
    assert pipeline.steps[0].services[0].command == ("run",)


@pytest.mark.parametrize(
    ("services", "where", "message"),
    [
        ("7", (4, 15), "'services' in step 't': expected a list of services"),
        ("{name: a}", (4, 15), "'services' in step 't': expected a list of services"),
        ("[{name: a, image: b, port: 1}]", (4, 36), "unknown key 'port' in service #1"),
        ("[{name: a, image: b, imgae: 1}]", (4, 36), "did you mean 'image'"),
        ("[{image: b}]", (4, 16), "service #1 of 'services' in step 't' has no 'name'"),
        ("[{name: a}]", (4, 16), "has no 'image'"),
        ("[{name: Cache, image: b}]", (4, 23), "'Cache' is not a DNS label"),
        ("[{name: a_b, image: b}]", (4, 23), "is not a DNS label"),
        ("[{name: a, image: b}, {name: a, image: c}]", (4, 37), "duplicate service name 'a'"),
        ("[redis, 'other/redis:7']", (4, 23), "duplicate service name 'redis'"),
        ("[{name: a, image: [b]}]", (4, 33), "'image' of service #1"),
        ("[{name: a, image: ''}]", (4, 33), "the image name is empty"),
        ("[{name: a, image: b, command: {x: 1}}]", (4, 45), "'command' of service #1"),
        ("[{name: a, image: b, env: [x]}]", (4, 41), "expected a mapping of variable names"),
        ("[{name: a, image: b, env: {1x: y}}]", (4, 42), "'1x' is not a valid variable name"),
        ("[{name: a, image: b, ready: [x]}]", (4, 43), "'ready' of service #1"),
        ("[{name: a, image: b, ready_timeout: soon}]", (4, 51), "expected a duration"),
        ("[{name: a, image: b, ready_timeout: 0}]", (4, 51), "more than 0 seconds"),
        ("[my_image]", (4, 16), "the name 'my_image' taken from the image is not a DNS label"),
        ("[[x]]", (4, 16), "service #1 of 'services' in step 't': expected an image name"),
    ],
)
def test_problems_are_located(services: str, where: tuple[int, int], message: str) -> None:
    found = problems(f"steps:\n  t:\n    run: x\n    services: {services}\n")
    assert len(found) == 1, found
    assert found[0][:2] == where, found
    assert message in found[0][2], found


def test_null_services_is_the_default() -> None:
    assert parse("steps:\n  t:\n    run: x\n    services:\n").steps[0].services == ()


def test_dump_round_trip() -> None:
    pipeline = Pipeline(
        steps=[
            Step(
                name="t",
                run="x",
                services=[
                    Service(
                        name="cache",
                        image="busybox",
                        command=("sh", "-c", "a b"),
                        env={"A": "1"},
                        ready="true",
                        ready_timeout=10.0,
                    ),
                    Service(name="db", image="postgres:16"),
                    Service(name="odd", image="x", ready_timeout=1.25),
                ],
            ),
            Step(name="u", run="y"),
        ]
    )
    text = dump_pipeline(pipeline)
    assert parse_pipeline(text) == pipeline
    assert "ready_timeout: 10s" in text


def test_model_rejects_bad_names_and_duplicates() -> None:
    with pytest.raises(ValueError, match="DNS label"):
        Service(name="-x", image="b")
    with pytest.raises(ValueError, match="more than 0"):
        Service(name="x", image="b", ready_timeout=0)
    with pytest.raises(ValueError, match="duplicate"):
        Step(name="t", run="x", services=[Service(name="a", image="b")] * 2)
    assert Service(name="my-db", image="b").env_name == "MY_DB"
