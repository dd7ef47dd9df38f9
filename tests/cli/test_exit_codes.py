"""The `sauci` executable's exit codes, one per kind of outcome, the same in
every command: 0 passed, 1 the build failed, 2 any user or configuration
error, 3 SauCI itself could not work (docs/cli.md; issue 'Real projects, real
results', item 6). Each case runs the real command line in a process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import sauci.exceptions as exceptions
from sauci.exceptions import (
    EXIT_CODES,
    ConfigError,
    MissingDependencyError,
    NotFoundError,
    PipelineError,
    PluginError,
    Problem,
    SandboxError,
    SauCIError,
    SourceError,
    SourceUnavailableError,
    StoreError,
    exit_code,
)

GIT = ["git", "-c", "user.name=Tester", "-c", "user.email=t@example.com"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SAUCI_") and k not in ("GIT_DIR", "GIT_WORK_TREE")
    }
    return {**clean, "SAUCI_DATA_DIR": str(tmp_path / "data"), "NO_COLOR": "1"}


def sauci(env: dict[str, str], *args: str, cwd: Path | None = None) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "sauci", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in done.stderr, done.stderr  # never one for an error of ours
    return done.returncode, done.stdout + done.stderr


def make_repo(path: Path, pipeline: str) -> Path:
    path.mkdir()
    (path / ".sauci.yml").write_text(pipeline)
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "first"]):
        subprocess.run([*GIT, *args], cwd=path, check=True, capture_output=True)
    return path


# -- the table ---------------------------------------------------------------------------


def test_every_exception_sauci_exports_has_its_exit_code():
    """A new error class must be placed in the table on purpose, not fall through."""
    classes = [
        value
        for name in exceptions.__all__
        if isinstance(value := getattr(exceptions, name), type) and issubclass(value, Exception)
    ]
    assert len(classes) >= 10
    assert [] == [cls.__name__ for cls in classes if cls not in EXIT_CODES]
    assert set(EXIT_CODES.values()) == {2, 3}  # 0 and 1 are a build's answer, not an error's


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConfigError("bad setting"), 2),
        (PipelineError([Problem(file=".sauci.yml", line=1, column=1, message="x")]), 2),
        (PluginError("no such sandbox"), 2),
        (MissingDependencyError("docker", "docker"), 2),
        (NotFoundError("build 9 not found"), 2),  # a StoreError, but the user's mistake
        (SourceUnavailableError("x is not a git repository"), 2),
        (StoreError("database is down"), 3),
        (SandboxError("bwrap cannot start"), 3),
        (SourceError("git fetch timed out"), 3),
        (SauCIError("cannot reach the broker"), 3),
    ],
)
def test_exit_code_of_each_kind_of_error(error, code):
    assert code == exit_code(error)


def test_a_subclass_takes_its_nearest_entry():
    class Gone(NotFoundError):
        pass

    class Flaky(StoreError):
        pass

    assert (2, 3) == (exit_code(Gone("x")), exit_code(Flaky("y")))


# -- the real command line ---------------------------------------------------------------


def test_a_passing_build_exits_0(tmp_path, env):
    repo = make_repo(tmp_path / "repo", "steps:\n  ok:\n    run: 'true'\n")
    assert 0 == sauci(env, "run", str(repo))[0]


def test_a_failed_build_exits_1(tmp_path, env):
    repo = make_repo(tmp_path / "repo", "steps:\n  no:\n    run: exit 7\n")
    assert 1 == sauci(env, "run", str(repo))[0]


def test_a_bad_pipeline_exits_2_in_run_and_validate(tmp_path, env):
    repo = make_repo(tmp_path / "repo", "steps:\n  a:\n    run: 'true'\n    tiemout: 5s\n")
    for command in ("run", "validate"):
        code, out = sauci(env, command, str(repo))
        assert (2, True) == (code, ".sauci.yml:4:5" in out), (command, out)


@pytest.mark.parametrize("command", ["run", "validate"])
def test_a_path_that_does_not_exist_exits_2(tmp_path, env, command):
    code, out = sauci(env, command, str(tmp_path / "nowhere"))
    assert 2 == code, out


def test_not_a_git_repository_exits_2(tmp_path, env):
    plain = tmp_path / "plain"
    plain.mkdir()
    code, out = sauci(env, "run", str(plain))
    assert (2, True) == (code, "is not a git repository" in out and "git init" in out), out


def test_a_repository_without_commits_exits_2(tmp_path, env):
    empty = tmp_path / "empty"
    empty.mkdir()
    subprocess.run([*GIT, "init", "-q", "-b", "main"], cwd=empty, check=True)
    code, out = sauci(env, "run", str(empty))
    assert (2, True) == (code, "sauci init" in out), out  # no pipeline file yet
    code, out = sauci(env, "run", str(empty), "--commit", "HEAD")
    assert (2, True) == (code, "is not a commit" in out), out


@pytest.mark.parametrize(
    "argv", [["show", "999"], ["logs", "999"], ["rerun", "999"], ["cancel", "999"]]
)
def test_an_unknown_build_id_exits_2(env, argv):
    code, out = sauci(env, *argv)
    assert (2, True) == (code, "build 999 not found" in out), out


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--no-such-option"],
        ["show", "not-a-number"],
        ["no-such-command"],
        ["builds", "--limit", "many"],
        ["repo"],  # an action is required
        [],  # no command at all
    ],
)
def test_a_bad_command_line_exits_2(env, argv):
    assert 2 == sauci(env, *argv)[0]


def test_a_bad_setting_exits_2(tmp_path, env):
    repo = make_repo(tmp_path / "repo", "steps:\n  ok:\n    run: 'true'\n")
    code, out = sauci({**env, "SAUCI_JOBS": "many"}, "run", str(repo))
    assert (2, True) == (code, "SAUCI_JOBS" in out), out


def test_an_unknown_store_scheme_exits_2(env):
    code, out = sauci(env, "builds", "--store", "memry://")
    assert (2, True) == (code, "did you mean memory://" in out), out


def test_an_unregistered_repository_to_remove_exits_2(tmp_path, env):
    repo = make_repo(tmp_path / "repo", "steps:\n  ok:\n    run: 'true'\n")
    assert 2 == sauci(env, "repo", "remove", str(repo))[0]


def test_a_store_that_is_down_exits_3_not_2(env):
    """SauCI could not work: not the user's command to fix, and not a build's answer."""
    pytest.importorskip("sqlalchemy")
    pytest.importorskip("psycopg")
    code, out = sauci(env, "builds", "--store", "postgresql://u@127.0.0.1:1/x")
    assert (3, True) == (code, "Connection refused" in out), out


def test_store_copy_into_a_store_that_is_not_a_copy_exits_2(tmp_path, env):
    """Not 1 (that is a failed build): the destination is the user's to choose."""
    repo = make_repo(tmp_path / "repo", "steps:\n  ok:\n    run: 'true'\n")
    assert 0 == sauci(env, "run", str(repo))[0]
    source = f"sqlite:///{tmp_path / 'data' / 'sauci.db'}"
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    argv = ["store", "copy", "--from", source, "--to", target]
    assert 0 == sauci(env, *argv)[0]
    code, out = sauci(env, *argv)
    assert (2, True) == (code, "destination holds 1 builds" in out), out
    code, out = sauci(env, *argv, "--merge")
    assert (0, True) == (code, "1 already there" in out), out


def test_triggering_a_directory_that_is_not_a_git_repository_exits_2(tmp_path, env):
    plain = tmp_path / "plain"
    plain.mkdir()
    code, out = sauci(env, "trigger", str(plain))
    assert (2, True) == (code, "is not a git repository" in out), out
    assert 0 == sauci(env, "builds")[0]
    assert "queued" not in sauci(env, "builds")[1]  # nothing was queued
