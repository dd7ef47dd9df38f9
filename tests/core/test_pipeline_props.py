"""Properties of the .sauci.yml parser: it only ever raises PipelineError, and dump round-trips."""

from __future__ import annotations

import string
from typing import Any

import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sauci.core.models import DEFAULT_SHELL, DEFAULT_TIMEOUT, Limits, Pipeline, Step, When
from sauci.core.paths import safe_name
from sauci.core.pipeline import dump_pipeline, parse_pipeline, validate_pipeline
from sauci.core.pipeline._schema import EVENTS, STEP_KEYS, TOP_KEYS, path_problem
from sauci.exceptions import PipelineError


def assert_only_pipeline_error(text: str | bytes) -> None:
    """parse raises nothing but PipelineError, and validate agrees with it."""
    problems = validate_pipeline(text)
    try:
        parse_pipeline(text)
    except PipelineError as exc:
        assert list(exc.problems) == problems
        assert problems
        for problem in problems:
            assert not problem.message.startswith("internal error"), problem
            assert problem.line >= 0 and problem.column >= 0
    else:
        assert problems == []


# -- anything in, PipelineError out -----------------------------------------------


@given(st.binary(max_size=300))
@settings(max_examples=300, deadline=None)
def test_random_bytes_raise_only_pipeline_error(data: bytes) -> None:
    assert_only_pipeline_error(data)


@given(st.text(max_size=300))
@settings(max_examples=300, deadline=None)
def test_random_text_raises_only_pipeline_error(text: str) -> None:
    assert_only_pipeline_error(text)


YAMLISH = st.text(alphabet="{}[]:,-?&*!|>'\"#%@` \n\tab01.~<=", max_size=120)


@given(YAMLISH)
@settings(max_examples=400, deadline=None)
def test_yaml_punctuation_soup_raises_only_pipeline_error(text: str) -> None:
    assert_only_pipeline_error(text)


KEYS = st.one_of(
    st.sampled_from(STEP_KEYS + TOP_KEYS + ("branches", "events", "memory", "cpu", "exclude")),
    st.text(max_size=8),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.just("HUGEINT"),  # replaced by 5000 digits in the text (Hypothesis cannot print those)
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(["90s", "1h30m", "512MiB", "push", "../x", "/abs", "${{ matrix.x }}"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=20,
)
STEPISH = st.dictionaries(st.sampled_from(STEP_KEYS), VALUES, max_size=6) | VALUES
DOCUMENTS = st.one_of(
    VALUES,
    st.fixed_dictionaries(
        {"steps": st.lists(STEPISH, max_size=4) | st.dictionaries(KEYS, STEPISH, max_size=4)},
        optional={"env": VALUES, "version": VALUES},
    ),
)


@given(DOCUMENTS)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_yaml_documents_raise_only_pipeline_error(document: Any) -> None:
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    assert_only_pipeline_error(text.replace("HUGEINT", "9" * 5000))


@given(st.data())
@settings(max_examples=150, deadline=None)
def test_damaged_valid_files_raise_only_pipeline_error(data: st.DataObject) -> None:
    text = dump_pipeline(data.draw(pipelines()))
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(text)))
        cut = data.draw(st.integers(0, 5))
        insert = data.draw(st.text(alphabet=":-[]{}\n '\"&*!", max_size=3))
        text = text[:at] + insert + text[at + cut :]
    assert_only_pipeline_error(text)


# -- valid pipelines survive dump and parse ---------------------------------------


NO_NUL = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
TEXT = st.text(alphabet=NO_NUL, max_size=30)
IDENTIFIER = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)
NAME_CHARS = st.characters(
    whitelist_categories=("L", "N", "P", "S", "Zs"), blacklist_characters="\u2028\u2029\x85\xa0"
)
NAMES = st.text(alphabet=NAME_CHARS, min_size=1, max_size=40).map(str.strip).filter(bool)
WORDS = st.text(alphabet=NO_NUL, min_size=1, max_size=12)
PATHS = st.text(alphabet=string.ascii_letters + string.digits + "*?./_-", min_size=1, max_size=20)
RELATIVE = PATHS.filter(lambda p: path_problem(p) is None)
MATRIX_VALUES = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=10
)


def commands() -> st.SearchStrategy[tuple[str, ...]]:
    return (
        st.lists(TEXT, min_size=1, max_size=3)
        .map(tuple)
        .filter(lambda lines: any(line.strip() for line in lines))
    )


@st.composite
def steps(draw: st.DrawFn, name: str, earlier: list[str]) -> Step:
    optional = draw(st.sets(st.sampled_from(STEP_KEYS), max_size=len(STEP_KEYS)))
    kw: dict[str, Any] = {"name": name, "run": draw(commands())}
    if "shell" in optional:
        kw["shell"] = draw(st.lists(WORDS, min_size=1, max_size=3).map(tuple))
    if "needs" in optional:
        chosen = draw(st.lists(st.sampled_from(earlier), unique=True)) if earlier else []
        kw["needs"] = tuple(chosen)
    if "env" in optional:
        kw["env"] = draw(st.dictionaries(IDENTIFIER, TEXT, max_size=3))
    if "timeout" in optional:
        kw["timeout"] = draw(
            st.sampled_from([0.001, 0.5, 90.0, 5400.0, 86400.0])
            | st.floats(min_value=1e-9, max_value=30 * 86400.0)
        )
    if "retries" in optional:
        kw["retries"] = draw(st.integers(0, 10))
    if "retry_on" in optional:
        kw["retry_on"] = tuple(draw(st.lists(st.integers(1, 255), max_size=3)))
    if "allow_failure" in optional:
        kw["allow_failure"] = draw(st.booleans())
    if "when" in optional:
        branch = TEXT.filter(lambda b: b.strip() and b != "!")
        kw["when"] = When(
            branches=tuple(draw(st.lists(branch, max_size=2))),
            events=tuple(draw(st.lists(st.sampled_from(EVENTS), max_size=2))),
        )
    for key in ("artifacts", "junit"):
        if key in optional:
            kw[key] = tuple(draw(st.lists(RELATIVE, max_size=2)))
    if "workdir" in optional:
        kw["workdir"] = draw(RELATIVE)
    if "secrets" in optional:
        kw["secrets"] = tuple(draw(st.lists(IDENTIFIER, max_size=2)))
    if "limits" in optional:
        kw["limits"] = Limits(
            memory=draw(st.none() | st.integers(1, 2**40)),
            processes=draw(st.none() | st.integers(1, 1000)),
            cpu=draw(st.none() | st.floats(min_value=0.01, max_value=256)),
        )
    if "sandbox" in optional:  # a registered name: never a path to import
        kw["sandbox"] = draw(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,20}", fullmatch=True))
    if "image" in optional:
        kw["image"] = draw(TEXT.filter(str.strip))
    if "network" in optional:
        kw["network"] = draw(st.booleans())
    if "weight" in optional:
        kw["weight"] = draw(st.integers(1, 5))
    if "matrix" in optional:
        kw["matrix"] = draw(st.dictionaries(IDENTIFIER, MATRIX_VALUES, min_size=1, max_size=3))
    return Step(**kw)


@st.composite
def pipelines(draw: st.DrawFn) -> Pipeline:
    # Unique on disk too: a step's log file is named by its safe_name.
    names = draw(st.lists(NAMES, min_size=1, max_size=5, unique_by=safe_name))
    built = [draw(steps(name, names[:i])) for i, name in enumerate(names)]
    env = draw(st.dictionaries(IDENTIFIER, TEXT, max_size=3))
    return Pipeline(steps=built, env=env, source=".sauci.yml")


@given(pipelines())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_valid_pipelines_survive_dump_and_parse(pipeline: Pipeline) -> None:
    text = dump_pipeline(pipeline)
    assert parse_pipeline(text) == pipeline, text


MATRIX_DOC = st.fixed_dictionaries(
    {
        "run": st.just("echo ${{ matrix.a }}"),
        "matrix": st.fixed_dictionaries(
            {"a": st.lists(st.integers(0, 9), min_size=1, max_size=3, unique=True)},
            optional={"b": st.lists(st.sampled_from(["x", "y", "3.10"]), min_size=1, unique=True)},
        ),
    },
    optional={"needs": st.just([]), "timeout": st.sampled_from(["1h30m", 90, "500ms"])},
)


@given(
    st.lists(
        st.one_of(MATRIX_DOC, st.fixed_dictionaries({"run": st.just("true")})),
        min_size=1,
        max_size=4,
    )
)
@settings(max_examples=100, deadline=None)
def test_parsed_matrix_pipelines_survive_dump_and_parse(raw_steps: list[dict[str, Any]]) -> None:
    document = {"steps": {f"s{i}": s for i, s in enumerate(raw_steps)}}
    parsed = parse_pipeline(yaml.safe_dump(document, sort_keys=False))
    assume(parsed.steps)
    assert parse_pipeline(dump_pipeline(parsed)) == parsed
    # the file-order default survives: same dependencies after the trip
    assert parse_pipeline(dump_pipeline(parsed)).dependencies() == parsed.dependencies()


def test_defaults_in_the_strategy_match_the_model() -> None:
    # the strategies above leave keys out to mean the defaults; keep them honest
    assert Step(name="a", run="x").shell == DEFAULT_SHELL
    assert Step(name="a", run="x").timeout == DEFAULT_TIMEOUT
