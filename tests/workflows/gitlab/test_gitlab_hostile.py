"""A pushed .gitlab-ci.yml is untrusted: it cannot read outside its
repository, run code while it is read, exhaust the reader, or widen the
server's policy."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sauci.core.demands import SandboxCapabilities
from sauci.exceptions import ConfigError, PipelineError
from sauci.workflows.gitlab import GitLabContext, load_gitlab, plan_gitlab


def _problems(root: Path, text: str, **policy: object) -> list[str]:
    (root / ".gitlab-ci.yml").write_text(text, encoding="utf-8")
    with pytest.raises(PipelineError) as info:
        plan_gitlab(root, context=GitLabContext(), **policy)  # type: ignore[arg-type]
    return [str(p) for p in info.value.problems]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "outside.yml").write_text("stolen:\n  script: [x]\n", encoding="utf-8")
    root = tmp_path / "repo"
    root.mkdir()
    return root


@pytest.mark.parametrize(
    ("include", "says"),
    [
        ("../outside.yml", "outside the repository"),
        ("/../outside.yml", "outside the repository"),
        ("ci/../../outside.yml", "outside the repository"),
        ("/etc/passwd", "no file 'etc/passwd' in the repository"),  # "/" is the repository root
        ("link.yml", "symbolic link out of the repository"),
        ("fifo.yml", "not a regular file"),
        ("https://example.com/ci.yml", "remote files are not supported"),
    ],
)
def test_an_include_reads_only_regular_files_of_the_repository(
    repo: Path, include: str, says: str
) -> None:
    (repo / "link.yml").symlink_to(repo.parent / "outside.yml")
    os.mkfifo(repo / "fifo.yml")
    problems = _problems(repo, f"include:\n  - '{include}'\njob:\n  script: [x]\n")
    assert len(problems) == 1 and says in problems[0], problems
    assert problems[0].startswith(".gitlab-ci.yml:2:")


@pytest.mark.parametrize("kind", ["project", "template", "remote", "component"])
def test_other_kinds_of_include_are_named(repo: Path, kind: str) -> None:
    problems = _problems(repo, f"include:\n  - {kind}: x\njob:\n  script: [x]\n")
    assert problems == [
        f".gitlab-ci.yml:2:5: include: {kind} is not supported (SauCI reads only files of "
        "the repository: use include: local)"
    ]


def test_a_symlinked_pipeline_file_is_refused(repo: Path) -> None:
    (repo / ".gitlab-ci.yml").symlink_to(repo.parent / "outside.yml")
    with pytest.raises(ConfigError, match="symbolic link out of the repository"):
        load_gitlab(repo)


def test_includes_that_include_each_other_end(repo: Path) -> None:
    (repo / "a.yml").write_text("include: b.yml\na:\n  script: [x]\n", encoding="utf-8")
    (repo / "b.yml").write_text("include: a.yml\nb:\n  script: [x]\n", encoding="utf-8")
    (repo / ".gitlab-ci.yml").write_text("include: a.yml\n", encoding="utf-8")
    names = [s.name for s in load_gitlab(repo).steps]
    assert sorted(names) == ["a", "b"]


def test_alias_bombs_and_python_tags_are_problems(repo: Path) -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{n}: &{n} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, n in zip("abcdef", "bcdefg", strict=True)
    )
    assert "more than 100000 values" in _problems(repo, bomb)[0]
    problems = _problems(repo, "job:\n  script: !!python/object/apply:os.system [id]\n")
    assert problems == [
        ".gitlab-ci.yml:2:11: the tag tag:yaml.org,2002:python/object/apply:os.system is not "
        "understood (GitLab files use !reference only)"
    ]


def test_the_policy_still_decides(repo: Path) -> None:
    """A GitLab file cannot name a sandbox, the network or limits; what it
    can ask for (an image, services, a long timeout) is checked against the
    server's policy like a native file."""
    text = "job:\n  image: python:3.12\n  services: [postgres]\n  timeout: 5h\n  script: [x]\n"
    caps = SandboxCapabilities(default="local", lookup=lambda name: frozenset())
    problems = _problems(repo, text, capabilities=caps, max_timeout=600)
    assert any("timeout is more than this server's limit" in p for p in problems)
    (repo / ".gitlab-ci.yml").write_text(text.replace("  timeout: 5h\n", ""), encoding="utf-8")
    with pytest.raises(PipelineError) as info:
        load_gitlab(repo, capabilities=caps, max_timeout=600)
    messages = " ".join(p.message for p in info.value.problems)
    assert "image" in messages and "services" in messages
    step = load_gitlab(repo, max_timeout=600).steps[0]
    assert step.timeout == 600 and step.sandbox is None and step.network is None
    assert not step.limits and step.secrets == ()


def test_variables_never_become_commands(repo: Path) -> None:
    text = (
        'variables:\n  X: "$CI_PROJECT_DIR/$(touch pwned)`touch pwned2`\'"\njob:\n  script: [x]\n'
    )
    (repo / ".gitlab-ci.yml").write_text(text, encoding="utf-8")
    step = load_gitlab(repo).steps[0]
    line = next(line for line in step.run if line.startswith("export X="))
    assert line == "export X=\"${CI_PROJECT_DIR}\"'/$(touch pwned)`touch pwned2`'\"'\"''"


@pytest.mark.parametrize(
    "text",
    [
        'variables:\n  "X; touch pwned; Y": "$CI_PROJECT_DIR"\njob:\n  script: [x]\n',
        'job:\n  variables: {"A=B": "1"}\n  script: [x]\n',
        'job:\n  parallel:\n    matrix:\n      - {"PY $(id)": ["1"]}\n  script: [x]\n',
        'job:\n  script: [x]\n  rules:\n    - variables: {"1X": "y"}\n',
        'job:\n  script: [x]\n  services: [{name: db, variables: {"a b": "c"}}]\n',
    ],
)
def test_a_variable_name_that_is_not_one_is_a_problem(repo: Path, text: str) -> None:
    """Names become `export NAME=...` lines and environment keys: only
    GitLab's variable names are taken."""
    problems = _problems(repo, text)
    assert any("is not a variable name" in p for p in problems), problems


def test_a_server_build_plans_the_file_for_its_branch_under_the_servers_policy(
    repo: Path,
) -> None:
    """sauci serve's loader (sauci.workflows.load_for_build) reads a pushed
    .gitlab-ci.yml for the pushed branch, and the server's timeout cap holds."""
    from sauci.core.models import Build
    from sauci.workflows import load_for_build

    text = (
        "test:\n  script: [x]\n"
        "release:\n  script: [x]\n  rules:\n    - if: $CI_COMMIT_TAG\n"
        "main-only:\n  script: [x]\n  only: [main]\n"
    )
    (repo / ".gitlab-ci.yml").write_text(text, encoding="utf-8")
    build = Build(id=7, repo="r", ref="refs/heads/topic", sha="f" * 40, event="push")
    pipeline = load_for_build(repo, build, max_timeout=600.0)
    assert [s.name for s in pipeline.steps] == ["test"]
    assert pipeline.steps[0].timeout == 600.0
    assert pipeline.steps[0].env["CI_COMMIT_BRANCH"] == "topic"
    assert pipeline.steps[0].env["CI_COMMIT_SHA"] == "f" * 40
    tag = Build(id=8, repo="r", ref="refs/tags/v1", sha="f" * 40, event="push")
    assert [s.name for s in load_for_build(repo, tag).steps] == ["test", "release"]
    (repo / ".gitlab-ci.yml").write_text(text + "  timeout: 5h\n", encoding="utf-8")
    with pytest.raises(PipelineError, match="more than this server's limit"):
        load_for_build(repo, build, max_timeout=600.0)


def test_an_image_on_a_sandbox_without_images_errors_the_step(repo: Path) -> None:
    """The executor checks again what the sandbox can enforce: a GitLab job's
    image is never silently dropped to run the script on the host."""
    from sauci import Status, run_pipeline
    from sauci.core.config import Settings

    (repo / ".gitlab-ci.yml").write_text(
        "job:\n  image: python:3.12\n  script: [touch ran]\n", encoding="utf-8"
    )
    outcome = run_pipeline(
        load_gitlab(repo), repo, settings=Settings(data_dir=repo.parent / "data"), secrets={}
    )
    assert outcome.step("job").status is Status.ERRORED
    assert "does not run images" in (outcome.step("job").reason or "")
    assert not (repo / "ran").exists()


def test_a_glob_include_does_not_follow_links_out_or_round(repo: Path) -> None:
    (repo / "ci").mkdir()
    (repo / "ci" / "a.yml").write_text("a:\n  script: [x]\n", encoding="utf-8")
    for name in ("loop", "loop2", "loop3"):
        (repo / "ci" / name).symlink_to("..")
    (repo / "ci" / "out").symlink_to(repo.parent)
    (repo / ".gitlab-ci.yml").write_text("include: 'ci/**/*.yml'\n", encoding="utf-8")
    assert [s.name for s in load_gitlab(repo).steps] == ["a"]


def test_a_glob_include_never_walks_through_a_linked_directory(repo: Path) -> None:
    """Hostile: a committed ``link -> /`` and ``include: 'link/**/*.yml'``.
    pathlib's glob follows a symlink named by a literal or ``*`` component:
    the server walked the host's file system as itself and named what it
    found there in the pipeline's problems."""
    host = repo.parent / "host"
    (host / "etc" / "app").mkdir(parents=True)
    (host / "etc" / "app" / "private-name.yml").write_text("x:\n  script: [x]\n")
    (repo / "link").symlink_to(host)
    (repo / "ci").mkdir()
    (repo / "ci" / "a.yml").write_text("a:\n  script: [x]\n", encoding="utf-8")
    for include in ("link/**/*.yml", "*/etc/*/*.yml"):
        problems = _problems(repo, f"include: '{include}'\njob:\n  script: [x]\n")
        assert not any("private-name" in p for p in problems), problems
        assert any(f"no file matches {include!r}" in p for p in problems), problems
    (repo / ".gitlab-ci.yml").write_text("include: '*/*.yml'\n", encoding="utf-8")
    assert [s.name for s in load_gitlab(repo).steps] == ["a"]


def test_variables_that_name_each_other_cannot_expand_without_end(repo: Path) -> None:
    """Each of 30 variables names the next 8 times: each of GitLab's ten rounds
    multiplies by 8, and the server's reader ran out of memory (billions of
    pieces) on a 32-line file. Past a mebibyte the expansion is a problem."""
    lines = [f'  V{i}: "{f"$V{i + 1}" * 8}"' for i in range(30)]
    text = "variables:\n" + "\n".join(lines) + "\n  V30: x\njob:\n  script: [echo $V0]\n"
    [problem] = _problems(repo, text)
    assert "a variable expands to more than 1048576 characters" in problem, problem


def test_many_variables_are_read_in_linear_time(repo: Path) -> None:
    """Each variable was expanded against a copy of all the others: 10,000 of
    them took 4.4 s, and a 1 MiB file holds 70,000 (about 4 minutes a job)."""
    import time

    names = "".join(f"  V{i}: x$V{i - 1}\n" if i else "  V0: x\n" for i in range(20_000))
    (repo / ".gitlab-ci.yml").write_text(f"variables:\n{names}job:\n  script: [echo]\n")
    started = time.process_time()
    pipeline = load_gitlab(repo / ".gitlab-ci.yml")
    # CPU time, not wall time, with a wide margin: 17 to 25 s before, 0.4 s now.
    assert time.process_time() - started < 10
    assert "xx" == pipeline.steps[0].env["V1"]


def test_included_files_together_are_capped(repo: Path) -> None:
    """Each included file may hold 1 MiB and there may be 150: ten million
    values, minutes of the server's CPU and gigabytes of its memory at every
    build of the commit. Past 8 MiB together, an include is a problem."""
    from sauci.workflows.gitlab._include import MAX_INCLUDED_BYTES

    body = "".join(f"    V{j}: {'x' * 40}\n" for j in range(15_000))  # about 750 KiB
    count = MAX_INCLUDED_BYTES // len(body) + 2
    for i in range(count):
        include = f"include: 'f{i + 1}.yml'\n" if i + 1 < count else ""
        (repo / f"f{i}.yml").write_text(f"{include}job{i}:\n  script: [echo]\n  variables:\n{body}")
    problems = _problems(repo, "include: 'f0.yml'\n")
    assert any("takes the included files past 8 MiB" in p for p in problems), problems
