"""actions/setup-python's ``python-version-file`` in the forms projects use
(``.python-version``, ``.tool-versions``, ``pyproject.toml``), and, since a
pushed workflow names it and the plan reads it on the server, never a file
outside the repository."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from sauci.exceptions import PipelineError
from sauci.workflows.github import Settings, plan_github
from sauci.workflows.github.version_files import version_file

HERE = "{}.{}".format(*sys.version_info[:2])


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (".python-version", "# pinned\n3.12.4\n3.11\n", ["3.12.4"]),
        (".tool-versions", "nodejs 20.1.0\npython 3.13.0 3.12.1\n", ["3.13.0"]),
        ("pyproject.toml", '[project]\nname = "p"\nrequires-python = ">=3.9"\n', [">=3.9"]),
        ("pyproject.toml", '[tool.poetry.dependencies]\npython = "^3.10"\n', ["^3.10"]),
    ],
)
def test_each_form_gives_the_version_it_asks_for(tmp_path: Path, name, text, expected) -> None:
    (tmp_path / name).write_text(text)
    assert expected == version_file(tmp_path, name)


def plan(tmp_path: Path, file: str):
    text = f"""\
on: push
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/setup-python@v5
        with:
          python-version-file: {file}
"""
    return plan_github(text, Settings(workspace=tmp_path, file="ci.yml", path=os.environ["PATH"]))


def test_a_requires_python_range_picks_a_python_of_this_machine(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(f'[project]\nrequires-python = ">={HERE}"\n')
    (entry,) = plan(tmp_path, "pyproject.toml").entries
    assert entry.skip is None


def test_a_file_outside_the_repository_is_refused_and_never_shown(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("hunter2-not-a-version\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "link").symlink_to(secret)
    os.mkfifo(repo / "fifo")  # would block a reader that opens it plainly
    for name, why in (
        ("../secret", "is outside the repository"),
        (str(secret), "cannot read"),  # a leading / is the repository's root
        ("link", "is outside the repository"),
        ("fifo", "is not a regular file"),
        ("missing", "cannot read"),
    ):
        with pytest.raises(PipelineError) as caught:
            plan(repo, name)
        assert why in str(caught.value), name
        assert "hunter2" not in str(caught.value)
        assert "ci.yml:6:" in str(caught.value)


MISSING = """\
on: push
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/setup-python@v5
        with:
          python-version: "2.5"
      - run: echo never-reached
"""


def test_a_missing_python_skips_the_entry_unless_the_operator_says_fail() -> None:
    (skipped,) = plan_github(MISSING, Settings(file="ci.yml")).entries
    assert "skipped: python 2.5 is not installed on this machine" == skipped.skip
    made = plan_github(MISSING, Settings(file="ci.yml", missing_python="fail"))
    (entry,) = made.entries
    assert entry.skip is None
    assert "note: python 2.5 is not on this machine; the job fails (missing = fail)" in made.text()


def test_the_operator_says_fail_in_sauci_toml_and_the_job_fails(tmp_path, monkeypatch) -> None:
    import subprocess

    from sauci.exceptions import ConfigError
    from sauci.workflows._for_build import missing_python

    config = tmp_path / "sauci.toml"
    config.write_text('[sauci.setup-python]\nmissing = "fail"\n')
    assert "fail" == missing_python({"SAUCI_CONFIG": str(config)})
    bad = tmp_path / "bad.toml"
    bad.write_text('[sauci.setup-python]\nmissing = "ignore"\n')
    with pytest.raises(ConfigError, match='missing is "skip" or "fail"'):
        missing_python({"SAUCI_CONFIG": str(bad)})
    repo = tmp_path / "repo"
    (repo / ".github" / "workflows").mkdir(parents=True)
    (repo / ".github" / "workflows" / "ci.yml").write_text(MISSING)
    git = ["git", "-c", "user.name=T", "-c", "user.email=t@x", "-C", str(repo)]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "m"], check=True)
    env = {**os.environ, "SAUCI_CONFIG": str(config), "SAUCI_DATA_DIR": str(tmp_path / "d")}
    env.pop("SAUCI_STORE", None)
    done = subprocess.run(
        [sys.executable, "-m", "sauci", "run", str(repo), "--color", "never"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert 1 == done.returncode, out
    assert "no interpreter for python-version '2.5'" in out
    assert "│ never-reached" not in out
