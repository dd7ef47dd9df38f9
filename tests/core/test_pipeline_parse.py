"""The .sauci.yml parser: every key, every kind of problem, matrix expansion, dump."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest
import yaml
from yaml.nodes import SequenceNode

import sauci.core.pipeline as pipeline_module
import sauci.core.pipeline._yaml as yaml_module
from sauci.core.models import DEFAULT_SHELL, DEFAULT_TIMEOUT, Limits, Pipeline, Step, When
from sauci.core.pipeline import dump_pipeline, load_pipeline, parse_pipeline, validate_pipeline
from sauci.core.pipeline._schema import _STEP_HANDLERS, STEP_KEYS
from sauci.core.pipeline._yaml import compose as compose_yaml
from sauci.exceptions import ConfigError, PipelineError, Problem


def parse(text: str, **kw: object) -> Pipeline:
    return parse_pipeline(textwrap.dedent(text), **kw)  # type: ignore[arg-type]


def problems(text: str | bytes, **kw: object) -> list[tuple[int, int, str]]:
    if isinstance(text, str):
        text = textwrap.dedent(text)
    return [(p.line, p.column, p.message) for p in validate_pipeline(text, **kw)]  # type: ignore[arg-type]


def only_problem(text: str | bytes, **kw: object) -> tuple[int, int, str]:
    found = problems(text, **kw)
    assert len(found) == 1, found
    return found[0]


def step(text: str, **kw: object) -> Step:
    """The single step of a pipeline whose only step is written in ``text``."""
    steps = parse(text, **kw).steps
    assert len(steps) == 1
    return steps[0]


# -- public API -------------------------------------------------------------


def test_all_is_exactly_the_public_api() -> None:
    assert pipeline_module.__all__ == sorted(pipeline_module.__all__)
    assert set(pipeline_module.__all__) == {
        "dump_pipeline",
        "load_pipeline",
        "parse_duration",
        "parse_pipeline",
        "parse_size",
        "validate_pipeline",
    }


def test_every_step_key_has_a_handler() -> None:
    assert tuple(sorted(_STEP_HANDLERS)) == STEP_KEYS


def test_sauci_package_re_exports_the_parser() -> None:
    import sauci

    assert sauci.parse_pipeline is parse_pipeline
    assert sauci.load_pipeline is load_pipeline
    assert sauci.dump_pipeline is dump_pipeline


def test_importing_the_parser_does_not_import_difflib_or_shlex() -> None:
    import subprocess
    import sys

    code = (
        "import sys, sauci.core.pipeline as p; p.parse_pipeline('steps: {a: {run: x}}');"
        "print(sorted(m for m in ('difflib', 'shlex') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- the two forms of steps ---------------------------------------------------


def test_list_form_keeps_file_order_and_names() -> None:
    p = parse(
        """
        steps:
          - name: lint
            run: ruff check .
          - name: test
            run: pytest
        """
    )
    assert [s.name for s in p.steps] == ["lint", "test"]
    assert p.steps[0] == Step(name="lint", run=("ruff check .",))
    assert p.source == ".sauci.yml"


def test_mapping_form_names_steps_by_key() -> None:
    p = parse(
        """
        steps:
          lint: {run: ruff check .}
          test: {run: pytest}
        """
    )
    assert [s.name for s in p.steps] == ["lint", "test"]
    assert p.dependencies() == {"lint": (), "test": ("lint",)}


def test_defaults_are_the_model_defaults() -> None:
    s = step("steps: {a: {run: x}}")
    assert s == Step(name="a", run="x")
    assert s.shell == DEFAULT_SHELL
    assert s.timeout == DEFAULT_TIMEOUT
    assert s.needs is None


def test_a_key_with_no_value_means_its_default() -> None:
    s = step(
        """
        steps:
          a:
            run: x
            timeout:
            env:
            needs:
            limits:
        """
    )
    assert s == Step(name="a", run="x")


def test_filename_goes_into_source_and_problems() -> None:
    assert parse_pipeline("steps: {a: {run: x}}", "ci/pipe.yml").source == "ci/pipe.yml"
    (problem,) = validate_pipeline("steps: 1", "ci/pipe.yml")
    assert problem.file == "ci/pipe.yml"


# -- top-level keys -----------------------------------------------------------


def test_top_level_env_converts_numbers_and_booleans_to_the_text_written() -> None:
    p = parse(
        """
        env:
          PY: 3.10
          MODE: 010
          CI: true
          NAME: sauci
        steps: {a: {run: x}}
        """
    )
    assert p.env == {"PY": "3.10", "MODE": "010", "CI": "true", "NAME": "sauci"}


def test_version_1_is_accepted_and_others_are_not() -> None:
    assert parse("version: 1\nsteps: {a: {run: x}}\n").steps
    assert only_problem("version: 2\nsteps: {a: {run: x}}\n") == (
        1,
        10,
        "'version': this SauCI reads version 1, got '2'",
    )


def test_unknown_top_level_key_suggests_the_close_one() -> None:
    assert problems("stpes: {a: {run: x}}\n") == [
        (1, 1, "unknown key 'stpes' at the top level; did you mean 'steps'?"),
        (1, 1, "missing key 'steps': a pipeline needs at least one step"),
    ]


def test_empty_steps_is_a_problem() -> None:
    assert only_problem("steps: []\n") == (
        1,
        8,
        "'steps' is empty: a pipeline needs at least one step",
    )


def test_steps_of_the_wrong_type() -> None:
    assert only_problem("steps: lint\n") == (
        1,
        8,
        "'steps': expected a list of steps or a mapping of step names to steps, got 'lint'",
    )


# -- step keys ----------------------------------------------------------------


def test_run_accepts_a_string_or_a_list() -> None:
    assert step("steps: {a: {run: make}}").run == ("make",)
    assert step("steps: {a: {run: [make, make test]}}").run == ("make", "make test")


def test_run_block_scalar_keeps_its_lines() -> None:
    s = step(
        """
        steps:
          a:
            run: |
              pip install .
              pytest
        """
    )
    assert s.run == ("pip install .\npytest\n",)


def test_run_is_required() -> None:
    assert only_problem("steps: {a: {env: {X: 1}}}") == (
        1,
        12,
        "step 'a' has no 'run': every step needs the command(s) to run",
    )


def test_run_must_hold_a_command() -> None:
    assert only_problem("steps: {a: {run: []}}") == (
        1,
        18,
        "'run' in step 'a': expected at least one command, got a list",
    )
    assert only_problem("steps: {a: {run: {x: 1}}}")[2] == (
        "'run' in step 'a': expected a command or a list of them, got a mapping"
    )


def test_name_is_required_in_the_list_form() -> None:
    assert only_problem("steps:\n  - run: x\n") == (
        2,
        5,
        "step #1 has no 'name': in the list form every step needs one",
    )


def test_name_in_the_mapping_form_is_only_for_matrix_patterns() -> None:
    assert only_problem("steps:\n  a: {run: x, name: b}\n") == (
        2,
        15,
        "step 'a': the mapping key already names the step; 'name' is only allowed here "
        "with 'matrix', as the pattern for the names of its expansions",
    )


@pytest.mark.parametrize(
    ("name", "why"),
    [("' a'", "has spaces at the start or end"), ('"a\\tb"', "holds a control character")],
)
def test_bad_step_names(name: str, why: str) -> None:
    line, column, message = only_problem(f"steps:\n  - name: {name}\n    run: x\n")
    assert (line, column) == (2, 11)
    assert why in message


def test_shell_is_split_like_a_command_line_or_taken_as_a_list() -> None:
    assert step("steps: {a: {run: x, shell: 'sh -c'}}").shell == ("sh", "-c")
    assert step("steps: {a: {run: x, shell: [python3, -c]}}").shell == ("python3", "-c")
    assert step("steps: {a: {run: x, shell: \"bash -c 'a b'\"}}").shell == ("bash", "-c", "a b")


def test_shell_problems() -> None:
    assert only_problem('steps: {a: {run: x, shell: "sh -c \'x"}}') == (
        1,
        28,
        "'shell' in step 'a': cannot split \"sh -c 'x\" into words: No closing quotation",
    )
    assert "expected a command line" in only_problem("steps: {a: {run: x, shell: ''}}")[2]


def test_needs_string_list_empty_and_default() -> None:
    p = parse(
        """
        steps:
          a: {run: x}
          b: {run: x, needs: a}
          c: {run: x, needs: [a, b]}
          d: {run: x, needs: []}
          e: {run: x}
        """
    )
    assert [s.needs for s in p.steps] == [None, ("a",), ("a", "b"), (), None]
    assert p.dependencies()["e"] == ("d",)


def test_step_env() -> None:
    assert step("steps: {a: {run: x, env: {N: 1, B: false, S: s}}}").env == {
        "N": "1",
        "B": "false",
        "S": "s",
    }


def test_env_problems() -> None:
    assert problems("steps: {a: {run: x, env: {1X: a, Y: , Z: [1]}}}") == [
        (
            1,
            27,
            "'env' in step 'a': '1X' is not a valid variable name; use letters, digits and _, "
            "not starting with a digit",
        ),
        (1, 34, "'env' in step 'a': Y has no value; write Y: '' for an empty one"),
        (1, 42, "'env' in step 'a': expected a value for Z such as 1 or 'text', got a list"),
    ]


@pytest.mark.parametrize(
    ("written", "seconds"),
    [
        ("90s", 90),
        ("10m", 600),
        ("1h", 3600),
        ("1h30m", 5400),
        ("500ms", 0.5),
        ("90", 90),
        ("2.5", 2.5),
        ("'45'", 45),
    ],
)
def test_timeout_units(written: str, seconds: float) -> None:
    assert step(f"steps: {{a: {{run: x, timeout: {written}}}}}").timeout == seconds


def test_timeout_problems() -> None:
    assert only_problem("steps:\n  a:\n    run: x\n    timeout: soon\n") == (
        4,
        14,
        "'timeout' in step 'a': expected a duration such as 90s, 10m or 1h, got 'soon'",
    )
    assert only_problem("steps: {a: {run: x, timeout: 0}}")[2] == (
        "'timeout' in step 'a': a timeout must be more than 0 seconds, got '0'"
    )
    assert only_problem("steps: {a: {run: x, timeout: true}}")[2] == (
        "'timeout' in step 'a': expected a duration such as 90s, 10m or 1h, got 'true'"
    )
    assert "ceiling of 30 days" in only_problem("steps: {a: {run: x, timeout: 31d}}")[2]
    assert "expected a duration" in only_problem("steps: {a: {run: x, timeout: .inf}}")[2]


def test_max_timeout_caps_written_timeouts_and_lowers_the_default() -> None:
    text = "steps: {a: {run: x, timeout: 2h}}"
    assert only_problem(text, max_timeout=3600) == (
        1,
        30,
        "'timeout' in step 'a': 2h is more than the maximum timeout of 1h",
    )
    p = parse("steps: {a: {run: x}, b: {run: x, timeout: 5m}}", max_timeout=600)
    assert [s.timeout for s in p.steps] == [600.0, 300.0]
    assert parse("steps: {a: {run: x}}", max_timeout=7200).steps[0].timeout == DEFAULT_TIMEOUT


def test_max_timeout_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="max_timeout"):
        parse_pipeline("steps: {a: {run: x}}", max_timeout=0)


def test_retries_and_retry_on() -> None:
    s = step("steps: {a: {run: x, retries: 2, retry_on: [1, 137]}}")
    assert (s.retries, s.retry_on) == (2, (1, 137))
    assert step("steps: {a: {run: x, retry_on: 3}}").retry_on == (3,)


def test_retries_problems() -> None:
    assert only_problem("steps: {a: {run: x, retries: -1}}") == (
        1,
        30,
        "'retries' in step 'a': expected a whole number of at least 0, got '-1'",
    )
    assert only_problem("steps: {a: {run: x, retries: 1.5}}")[2].endswith("got '1.5'")
    assert only_problem("steps: {a: {run: x, retries: '2'}}")[2].endswith("got '2'")
    assert only_problem("steps: {a: {run: x, retry_on: [0]}}")[2] == (
        "'retry_on' in step 'a': expected a whole number from 1 to 255, got '0'"
    )


def test_huge_integers_are_problems_not_crashes() -> None:
    line, column, message = only_problem("steps: {a: {run: x, retries: " + "9" * 5000 + "}}")
    assert (line, column) == (1, 30)
    assert message.endswith("is too large; the limit is 2147483647")


def test_allow_failure_and_network() -> None:
    s = step("steps: {a: {run: x, allow_failure: yes, network: false}}")
    assert (s.allow_failure, s.network) == (True, False)
    assert only_problem("steps: {a: {run: x, allow_failure: maybe}}")[2] == (
        "'allow_failure' in step 'a': expected true or false, got 'maybe'"
    )


def test_when_branches_and_events() -> None:
    s = step("steps: {a: {run: x, when: {branches: [main, 'release/*'], events: push}}}")
    assert s.when == When(branches=("main", "release/*"), events=("push",))


def test_when_problems() -> None:
    assert problems("steps: {a: {run: x, when: {events: [psuh], brnches: main}}}") == [
        (
            1,
            37,
            "'events' of 'when' in step 'a': unknown event 'psuh'; did you mean 'push'? "
            "(events are cli, cron, manual, pull_request, push, rerun, tag, webhook)",
        ),
        (1, 44, "unknown key 'brnches' in 'when' in step 'a'; did you mean 'branches'?"),
    ]


def test_artifacts_and_junit_globs() -> None:
    s = step("steps: {a: {run: x, artifacts: 'dist/*.whl', junit: [reports/*.xml, x.xml]}}")
    assert s.artifacts == ("dist/*.whl",)
    assert s.junit == ("reports/*.xml", "x.xml")


def test_globs_must_stay_in_the_workspace() -> None:
    assert only_problem("steps: {a: {run: x, artifacts: [ok, /etc/passwd]}}") == (
        1,
        37,
        "'artifacts' in step 'a': the pattern '/etc/passwd' must be relative to the "
        "workspace, not absolute",
    )


@pytest.mark.parametrize("workdir", ["src", "src/pkg", "a/../b", "."])
def test_workdir_relative(workdir: str) -> None:
    assert step(f"steps: {{a: {{run: x, workdir: '{workdir}'}}}}").workdir == workdir


@pytest.mark.parametrize(
    ("workdir", "why"),
    [
        ("/srv", "must be relative to the workspace, not absolute"),
        ("..", "leaves the workspace through '..'"),
        ("a/../../b", "leaves the workspace through '..'"),
        ("''", "is empty"),
    ],
)
def test_workdir_problems(workdir: str, why: str) -> None:
    line, column, message = only_problem(f"steps:\n  a:\n    run: x\n    workdir: {workdir}\n")
    assert (line, column) == (4, 14)
    assert message.startswith("'workdir' in step 'a': ")
    assert message.endswith(why)


def test_secrets_are_variable_names() -> None:
    assert step("steps: {a: {run: x, secrets: [PYPI_TOKEN, GH]}}").secrets == ("PYPI_TOKEN", "GH")
    assert only_problem("steps: {a: {run: x, secrets: [GOOD, 1BAD]}}") == (
        1,
        37,
        "'secrets' in step 'a': '1BAD' is not a valid variable name; use letters, digits "
        "and _, not starting with a digit",
    )


def test_limits() -> None:
    s = step("steps: {a: {run: x, limits: {memory: 512MiB, processes: 64, cpu: 1.5}}}")
    assert s.limits == Limits(memory=512 * 1024**2, processes=64, cpu=1.5)
    assert step("steps: {a: {run: x, limits: {memory: 1000}}}").limits.memory == 1000
    assert step("steps: {a: {run: x, limits: {cpu: 2}}}").limits.cpu == 2.0


def test_limits_problems() -> None:
    assert problems(
        "steps: {a: {run: x, limits: {memory: lots, processes: 0, cpu: -1, mem: 1}}}"
    ) == [
        (
            1,
            38,
            "'memory' of 'limits' in step 'a': expected a size such as 512MiB, 1G or 1.5GiB, "
            "got 'lots'",
        ),
        (
            1,
            55,
            "'processes' of 'limits' in step 'a': expected a whole number of at least 1, got '0'",
        ),
        (1, 63, "'cpu' of 'limits' in step 'a': expected more than 0 cores, got '-1'"),
        (1, 67, "unknown key 'mem' in 'limits' in step 'a'; did you mean 'memory'?"),
    ]


def test_sandbox_image_weight() -> None:
    s = step("steps: {a: {run: x, sandbox: docker, image: 'python:3.12', weight: 2}}")
    assert (s.sandbox, s.image, s.weight) == ("docker", "python:3.12", 2)
    assert only_problem("steps: {a: {run: x, weight: 0}}")[2] == (
        "'weight' in step 'a': expected a whole number of at least 1, got '0'"
    )


def test_unknown_step_key_suggests_the_close_one() -> None:
    assert only_problem("steps:\n  test:\n    run: x\n    tiemout: 10m\n") == (
        4,
        5,
        "unknown key 'tiemout' in step 'test'; did you mean 'timeout'?",
    )


def test_unknown_key_far_from_any_gets_no_suggestion() -> None:
    assert only_problem("steps: {a: {run: x, zzz: 1}}")[2] == "unknown key 'zzz' in step 'a'"


# -- graph problems -------------------------------------------------------------


def test_needs_unknown_step_is_located_at_the_entry() -> None:
    assert only_problem("steps:\n  a: {run: x}\n  b: {run: x, needs: [a, c]}\n") == (
        3,
        26,
        "step 'b' needs unknown step 'c'",
    )


def test_needs_unknown_step_suggests_a_close_name() -> None:
    assert only_problem("steps:\n  build: {run: x}\n  b: {run: x, needs: biuld}\n")[2] == (
        "step 'b' needs unknown step 'biuld'; did you mean 'build'?"
    )


def test_needs_cycle_is_located_at_the_needs_entry() -> None:
    text = """\
        steps:
          a: {run: x, needs: b}
          b: {run: x, needs: a}
        """
    assert only_problem(text) == (2, 22, "needs form a cycle: a -> b -> a")


def test_longer_cycle_through_default_needs() -> None:
    text = """\
        steps:
          a: {run: x, needs: c}
          b: {run: x}
          c: {run: x}
        """
    assert only_problem(text) == (2, 22, "needs form a cycle: a -> c -> b -> a")


def test_needs_itself_and_twice() -> None:
    assert problems("steps:\n  a: {run: x}\n  b: {run: x, needs: [b, a, a]}\n") == [
        (3, 23, "step 'b' needs itself"),
        (3, 29, "step 'b' lists 'a' twice in 'needs'"),
    ]


def test_duplicate_step_names_in_the_list_form() -> None:
    text = "steps:\n  - {name: a, run: x}\n  - {name: a, run: y}\n"
    assert only_problem(text) == (3, 12, "step name 'a' is used twice; the first is on line 2")


def test_duplicate_step_names_in_the_mapping_form_are_duplicate_keys() -> None:
    assert only_problem("steps:\n  a: {run: x}\n  a: {run: y}\n") == (
        3,
        3,
        "duplicate key 'a' in 'steps'; the first is on line 2",
    )


def test_duplicate_keys_anywhere_are_reported() -> None:
    assert only_problem("steps:\n  a:\n    run: x\n    env: {A: 1, A: 2}\n") == (
        4,
        17,
        "duplicate key 'A' in 'env' in step 'a'; the first is on line 4",
    )


def test_all_problems_come_in_one_error_in_file_order() -> None:
    text = "steps:\n  a: {run: x, retries: -1}\n  b: {run: x, needs: z}\n  c: {runn: x}\n"
    with pytest.raises(PipelineError) as info:
        parse_pipeline(text)
    assert [(p.line, p.column) for p in info.value.problems] == [(2, 24), (3, 22), (4, 6), (4, 7)]
    assert str(info.value).splitlines()[0] == (
        ".sauci.yml:2:24: 'retries' in step 'a': expected a whole number of at least 0, got '-1'"
    )


# -- YAML-level problems --------------------------------------------------------


@pytest.mark.parametrize("text", ["", "\n\n", "# just a comment\n", b""])
def test_empty_file(text: str | bytes) -> None:
    assert only_problem(text) == (1, 1, "the file is empty; expected a mapping with a 'steps' key")


@pytest.mark.parametrize(
    ("text", "got"), [("- a\n- b\n", "a list"), ("hello\n", "'hello'"), ("42", "'42'")]
)
def test_document_that_is_not_a_mapping(text: str, got: str) -> None:
    assert only_problem(text) == (1, 1, f"expected a mapping with a 'steps' key, got {got}")


def test_broken_yaml_reports_the_problem_mark() -> None:
    assert only_problem("steps:\n  a: [x\n") == (
        3,
        1,
        "invalid YAML: did not find expected ',' or ']' (while parsing a flow sequence)",
    )
    assert only_problem("steps:\n  a:\n    run: x\n   b: 2\n") == (
        4,
        4,
        "invalid YAML: did not find expected key (while parsing a block mapping)",
    )


def test_multiple_documents() -> None:
    assert only_problem("steps: {a: {run: x}}\n---\nsteps: {b: {run: y}}\n") == (
        2,
        1,
        "expected one YAML document, found a second one; remove the '---' line or keep one "
        "pipeline per file",
    )


def test_python_tags_are_never_constructed() -> None:
    text = "steps:\n  a:\n    run: !!python/object/apply:os.system [echo pwned]\n"
    assert only_problem(text) == (
        3,
        10,
        "unsupported YAML tag !!python/object/apply:os.system; use plain values, lists and "
        "mappings",
    )


def test_invalid_utf8_names_the_position() -> None:
    assert only_problem(b"steps:\n  a: {run: \xff}\n") == (
        2,
        12,
        "the file is not valid UTF-8 (byte 0xff at offset 18); save it as UTF-8",
    )


def test_bom_and_utf16_are_read() -> None:
    assert parse_pipeline(b"\xef\xbb\xbfsteps: {a: {run: x}}").steps[0].name == "a"
    assert parse_pipeline("steps: {a: {run: x}}".encode("utf-16")).steps[0].name == "a"


def test_control_characters_and_lone_surrogates() -> None:
    assert only_problem("steps: {a: {run: x\x01}}") == (
        1,
        19,
        "invalid YAML: character U+0001: control characters are not allowed",
    )
    assert only_problem("steps: {a: {run: \ud800}}") == (
        1,
        18,
        "the text holds U+D800, a lone surrogate that is not Unicode",
    )
    assert "NUL character" in only_problem('steps: {a: {run: "x\\0"}}')[2]


def test_aliases_and_merge_keys_are_allowed() -> None:
    p = parse(
        """
        steps:
          a: &base
            run: pytest
            env: {X: "1"}
            timeout: 10m
          b:
            <<: *base
            run: ruff
        """
    )
    a, b = p.steps
    assert (b.run, b.env, b.timeout) == (("ruff",), {"X": "1"}, 600.0)
    assert a.env == b.env


def test_alias_expansion_is_capped() -> None:
    lines = ["steps:", "  a:", "    run: x", "    env:"]
    anchors = ["x0: &m0 {A: '1', B: '2'}"]
    for i in range(1, 8):
        anchors.append(f"x{i}: &m{i} {{<<: [{', '.join([f'*m{i - 1}'] * 10)}]}}")
    text = "anchors:\n" + "".join(f"  {a}\n" for a in anchors) + "\n".join(lines)
    text += "\n      <<: [" + ", ".join(["*m7"] * 10) + "]\n"
    found = problems(text)
    assert any("expands to more than 100000 values" in message for _, _, message in found)


def test_recursive_merge_is_stopped() -> None:
    assert any("nest more than 10 deep" in m for _, _, m in problems("steps: &x\n  <<: *x\n"))


def test_deep_nesting_is_a_problem_not_a_crash() -> None:
    """Past MAX_DEPTH the file is refused at the first level too many, with
    every PyYAML (libyaml 0.2.6 in 6.0.4's wheels stops at 1,000 levels of its
    own, before its events reach that level)."""
    assert only_problem("steps: " + "[" * 50_000 + "]" * 50_000) == (
        1,
        507,  # the top-level mapping is the first level
        "the YAML is nested more than 500 levels deep",
    )
    assert only_problem("steps:\n  " + "- " * 3000 + "x\n") == (
        2,
        1001,
        "the YAML is nested more than 500 levels deep",
    )


def test_nesting_up_to_the_limit_composes() -> None:
    """MAX_DEPTH levels, in flow and in block style, are below libyaml's own
    limit, so every PyYAML accepts what the depth check lets through."""
    flow = compose_yaml("[" * yaml_module.MAX_DEPTH + "]" * yaml_module.MAX_DEPTH)
    block = compose_yaml("- " * yaml_module.MAX_DEPTH + "x\n")
    assert (SequenceNode, SequenceNode) == (type(flow), type(block))


def test_depth_is_measured_without_libyaml_when_libyaml_stops_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When the libyaml walk ends on an error (as 0.2.6 does on deep input),
    the pure-Python parser finds the same level too many."""

    class StopsAtOnce(yaml.SafeLoader):
        def check_event(self, *choices: object) -> bool:
            raise yaml.YAMLError("stopped")

    monkeypatch.setattr(yaml_module, "_WALKERS", (StopsAtOnce, yaml.SafeLoader))
    assert yaml_module.Located(1, 507, "the YAML is nested more than 500 levels deep") == (
        compose_yaml("steps: " + "[" * 600 + "]" * 600)
    )


def test_oversized_file_is_refused() -> None:
    assert only_problem("#" * (1024 * 1024 + 1)) == (1, 1, "the file is larger than 1024 KiB")


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x00\x01\x02",
        b"\x89PNG\r\n\x1a\n\x00\x00",
        b"{{{{",
        b"steps: *nope",
        b"? [a]\n: b",
        b"steps: !!binary aGVsbG8=",
        b"steps: {a: !!set {x}}",
        b"%YAML 9.9\n---\nsteps: {}",
        b"steps:\n  - !!python/name:os.system\n",
        b"\xfe\xff\x00",
    ],
)
def test_garbage_raises_only_pipeline_error(garbage: bytes) -> None:
    with pytest.raises(PipelineError) as info:
        parse_pipeline(garbage)
    assert info.value.problems
    assert all(isinstance(p, Problem) and p.line >= 1 for p in info.value.problems)


# -- matrix ---------------------------------------------------------------------


MATRIX = """\
    steps:
      - name: lint
        run: ruff check .
      - name: test
        run: tox -e py${{ matrix.python }}
        image: python:${{ matrix.python }}
        matrix:
          python: [3.11, 3.12]
          os: [linux, mac]
          exclude:
            - {python: 3.11, os: mac}
      - name: wheel
        run: python -m build
      - name: publish
        run: twine upload dist/*
        needs: [test, wheel]
    """


def test_matrix_expands_in_key_order_with_default_names() -> None:
    p = parse(MATRIX)
    assert [s.name for s in p.steps] == [
        "lint",
        "test (3.11, linux)",
        "test (3.12, linux)",
        "test (3.12, mac)",
        "wheel",
        "publish",
    ]
    t = p.step("test (3.12, mac)")
    assert t.run == ("tox -e py3.12",)
    assert t.image == "python:3.12"
    assert t.env == {"python": "3.12", "os": "mac"}
    assert t.matrix == {"python": "3.12", "os": "mac"}


def test_matrix_needs_around_expansions() -> None:
    deps = parse(MATRIX).dependencies()
    tests = ("test (3.11, linux)", "test (3.12, linux)", "test (3.12, mac)")
    assert deps["test (3.11, linux)"] == ("lint",)
    assert deps["test (3.12, mac)"] == ("lint",)  # not the expansion before it
    assert deps["wheel"] == tests  # the step before is all of the matrix
    assert deps["publish"] == (*tests, "wheel")  # the base name is every expansion


def test_matrix_name_pattern_is_filled_in() -> None:
    p = parse(
        """
        steps:
          - name: py${{ matrix.v }}
            run: x
            matrix: {v: ['3.11', '3.12']}
          - name: after
            run: x
            needs: py${{ matrix.v }}
        """
    )
    assert [s.name for s in p.steps] == ["py3.11", "py3.12", "after"]
    assert p.step("after").needs == ("py3.11", "py3.12")


def test_matrix_in_the_mapping_form_may_set_a_name_pattern() -> None:
    p = parse(
        """
        steps:
          test:
            name: test on ${{ matrix.os }}
            run: x
            workdir: ${{ matrix.os }}
            matrix: {os: [linux, windows]}
          report: {run: x, needs: test}
        """
    )
    assert [s.name for s in p.steps] == ["test on linux", "test on windows", "report"]
    assert p.step("test on windows").workdir == "windows"
    assert p.step("report").needs == ("test on linux", "test on windows")


def test_matrix_env_uses_the_variable_name_as_written_and_overrides_step_env() -> None:
    s = parse("steps: {a: {run: x, env: {py: old, K: v}, matrix: {py: [new]}}}").steps[0]
    assert s.env == {"py": "new", "K": "v"}


def test_matrix_needs_may_name_one_expansion() -> None:
    p = parse("steps:\n  t: {run: x, matrix: {v: [a, b]}}\n  u: {run: x, needs: 't (b)'}\n")
    assert p.step("u").needs == ("t (b)",)


def test_matrix_problems() -> None:
    text = """\
        steps:
          a:
            run: echo ${{ matrix.pyton }}
            matrix:
              python: ['1', '2']
        """
    assert only_problem(text) == (  # at the expression itself, not the start of 'run'
        3,
        15,
        "'run' in step 'a' uses ${{ matrix.pyton }}, but the matrix has no variable 'pyton'; "
        "did you mean 'python'?",
    )
    assert only_problem("steps: {a: {run: 'echo ${{ matrix.x }}'}}") == (
        1,
        24,
        "'run' in step 'a' uses ${{ matrix.x }}, but the step has no 'matrix'",
    )


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        ("{}", "the matrix of step 'a' has no variables"),
        ("{v: []}", "matrix variable 'v' of step 'a': the list of values is empty"),
        ("{v: x}", "matrix variable 'v' of step 'a': expected a list of values, got 'x'"),
        ("{v: [1, 1]}", "matrix variable 'v' of step 'a': the value '1' is listed twice"),
        (
            "{v: [[1]]}",
            "matrix variable 'v' of step 'a': expected a value such as 3.12 or ubuntu, got a list",
        ),
        (
            "{2v: [1]}",
            "matrix variable '2v' of step 'a' is not a valid name: use letters, "
            "digits and _, not starting with a digit",
        ),
        (
            "{v: [1], include: []}",
            "'include' in the matrix of step 'a' is not supported; add the values to the lists",
        ),
        (
            "{v: [1], exclude: [{w: 1}]}",
            "'exclude' in the matrix of step 'a' names 'w', which is not a matrix variable",
        ),
        (
            "{v: [1], exclude: [{v: 2}]}",
            "'exclude' in the matrix of step 'a': '2' is not one of the values of 'v' (1)",
        ),
        ("{v: [1], exclude: [{v: 1}]}", "'exclude' removes every combination of step 'a'"),
        (
            "{v: [1,2,3,4,5,6,7], w: [1,2,3,4,5,6,7], x: [1,2,3,4,5,6]}",
            "the matrix of step 'a' makes 294 combinations; the limit is 256",
        ),
    ],
)
def test_matrix_value_problems(matrix: str, message: str) -> None:
    assert only_problem(f"steps: {{a: {{run: x, matrix: {matrix}}}}}")[2] == message


def test_an_already_expanded_step_keeps_placeholder_text_as_written() -> None:
    """``matrix_values`` (written by dump_pipeline) expands nothing again: a
    ``${{ matrix.x }}`` in its text stays literal, even with no values at all
    (Hypothesis found that this crashed the reader with a KeyError)."""
    for values in ("{}", "{x: '1'}"):
        got = step(
            f"""
            steps:
              a:
                matrix_values: {values}
                run: echo ${{{{ matrix.x }}}}
            """
        )
        assert ("echo ${{ matrix.x }}",) == got.run


def test_matrix_name_pattern_must_make_distinct_names() -> None:
    text = "steps:\n  - {name: 't${{ matrix.a }}', run: x, matrix: {a: [1], b: [1, 2]}}\n"
    assert only_problem(text) == (
        2,
        12,
        "the names of the expansions of step 't${{ matrix.a }}' repeat 't1'; use every matrix "
        "variable in 'name'",
    )


def test_matrix_base_name_cannot_shadow_another_step() -> None:
    text = "steps:\n  - {name: t, run: x}\n  - {name: t, run: x, matrix: {v: [1]}}\n"
    assert only_problem(text) == (3, 12, "step name 't' is used twice; the first is on line 2")


def test_matrix_workdir_is_checked_after_substitution() -> None:
    text = "steps: {a: {run: x, workdir: '${{ matrix.d }}', matrix: {d: [ok, ..]}}}"
    assert only_problem(text) == (
        1,
        30,
        "'workdir' in step 'a': '..' leaves the workspace through '..'",
    )


def test_matrix_needs_its_own_base_is_a_cycle_on_itself() -> None:
    assert only_problem("steps: {a: {run: x, needs: a, matrix: {v: [1, 2]}}}") == (
        1,
        28,
        "step 'a' needs itself",
    )


# -- loading files ------------------------------------------------------------


def test_load_pipeline_from_a_file_or_a_directory(tmp_path: Path) -> None:
    (tmp_path / ".sauci.yml").write_text("steps: {a: {run: x}}\n")
    by_dir = load_pipeline(tmp_path)
    by_file = load_pipeline(tmp_path / ".sauci.yml")
    assert by_dir == by_file
    assert by_dir.source == str(tmp_path / ".sauci.yml")


def test_load_pipeline_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no pipeline file at .*nothing-here"):
        load_pipeline(tmp_path / "nothing-here")
    with pytest.raises(ConfigError, match=r"\.sauci\.yml"):
        load_pipeline(tmp_path)


def test_load_pipeline_problems_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "ci.yml"
    path.write_bytes(b"steps: {a: {run: x, retries: many}}\n")
    with pytest.raises(PipelineError) as info:
        load_pipeline(path)
    assert info.value.problems[0].file == str(path)


def test_load_pipeline_max_timeout(tmp_path: Path) -> None:
    (tmp_path / ".sauci.yml").write_text("steps: {a: {run: x}}\n")
    assert load_pipeline(tmp_path, max_timeout=60).steps[0].timeout == 60.0


# -- dump -------------------------------------------------------------------------


def test_dump_round_trips_a_realistic_pipeline() -> None:
    p = parse(MATRIX)
    assert parse_pipeline(dump_pipeline(p)) == p


def test_dump_writes_only_what_differs_from_the_defaults() -> None:
    p = Pipeline(steps=[Step(name="a", run="x")], source=".sauci.yml")
    assert dump_pipeline(p) == "version: 1\nsteps:\n  a:\n    run: x\n"


def test_dump_round_trips_every_field() -> None:
    s = Step(
        name="all of it",
        run=("echo 'a: b'", "multi\nline\n", "  indented"),
        shell=("sh", "-c"),
        needs=(),
        env={"A": "yes", "B": "010", "C": ""},
        timeout=5400.0,
        retries=2,
        retry_on=(1, 137),
        allow_failure=True,
        when=When(branches=("main", "!wip/*"), events=("push", "tag")),
        artifacts=("dist/*",),
        junit=("r.xml",),
        workdir="src",
        secrets=("TOKEN",),
        limits=Limits(memory=3 * 1024**3 + 1, processes=10, cpu=0.5),
        sandbox="docker",
        image="python:3.12",
        network=False,
        weight=3,
        matrix={"python": "3.12"},
    )
    p = Pipeline(
        steps=[s, Step(name="b", run="true", timeout=0.001)], env={"CI": "1"}, source=".sauci.yml"
    )
    assert parse_pipeline(dump_pipeline(p)) == p


def test_dump_keeps_default_needs_as_default() -> None:
    p = parse("steps: {a: {run: x}, b: {run: y}, c: {run: z, needs: a}}")
    again = parse_pipeline(dump_pipeline(p))
    assert [s.needs for s in again.steps] == [None, None, ("a",)]


# -- speed ------------------------------------------------------------------------


def test_a_200_step_file_parses_quickly() -> None:
    lines = ["steps:"]
    for i in range(200):
        lines += [
            f"  step{i}:",
            f"    run: [pip install ., pytest tests/part{i}]",
            "    timeout: 10m",
            f"    env: {{PART: '{i}'}}",
        ]
        if i:
            lines.append(f"    needs: [step{i - 1}]")
    text = "\n".join(lines) + "\n"
    parse_pipeline(text)
    start = time.perf_counter()
    p = parse_pipeline(text)
    elapsed = time.perf_counter() - start
    assert len(p.steps) == 200
    assert elapsed < 0.5  # a few ms on a quiet machine; generous for loaded CI workers


# -- the reference documentation ----------------------------------------------------


def test_every_pipeline_example_in_the_docs_is_valid() -> None:
    import re

    doc = (Path(__file__).parents[2] / "docs" / "pipeline.md").read_text()
    examples = [b for b in re.findall(r"```yaml\n(.*?)```", doc, re.S) if "steps:" in b]
    assert len(examples) >= 4
    for example in examples:
        assert validate_pipeline(example) == [], example


# -- odd but legal, and odd and wrong ---------------------------------------------


def test_keys_that_yaml_reads_as_numbers_name_steps_as_written() -> None:
    assert [s.name for s in parse("steps: {1: {run: x}, 2.10: {run: y}}").steps] == ["1", "2.10"]


def test_null_and_complex_keys_are_problems() -> None:
    assert only_problem("steps: {~: {run: x}}")[2] == (
        "expected a name as the key in 'steps', got nothing (null)"
    )
    assert only_problem("steps:\n  ? [a]\n  : {run: x}\n")[2] == (
        "expected a name as the key in 'steps', got a list"
    )


def test_a_step_that_is_not_a_mapping() -> None:
    assert problems("steps:\n  - {name: a, run: x}\n  - 5\n") == [
        (3, 5, "step #2: expected a mapping with 'name' and 'run', got '5'")
    ]
    assert problems("steps: {a: make}") == [
        (1, 12, "step 'a': expected a mapping with 'run', got 'make'")
    ]


def test_self_referencing_aliases_terminate() -> None:
    assert problems("steps: &s [*s]")[0][2] == (
        "step #1: expected a mapping with 'name' and 'run', got a list"
    )
    assert validate_pipeline("steps: &s {a: *s}")


def test_problems_of_a_broken_step_do_not_cascade_into_unknown_needs() -> None:
    text = "steps:\n  a: {run: x, retries: many}\n  b: {run: x, needs: a}\n"
    assert [m for _, _, m in problems(text)] == [
        "'retries' in step 'a': expected a whole number of at least 0, got 'many'"
    ]


def test_step_names_that_are_one_on_disk_are_a_problem():
    """A step's log file and artifact folder are named by its letters, digits
    and . _ -: steps "a b" and "a_b" wrote one log file, so the page of one
    showed what the other printed (a pushed step could dress another's log)."""
    with pytest.raises(PipelineError) as info:
        parse_pipeline('steps:\n  "a b":\n    run: x\n  a_b:\n    run: y\n')
    [problem] = info.value.problems
    assert (4, 3) == (problem.line, problem.column)
    assert "'a_b' and 'a b' (line 2) would share a log file" in problem.message
