"""on.push.paths / paths-ignore: GitHub's pattern rules, and a server push that changes only docs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from sauci.core.models import Build
from sauci.workflows import load_for_build
from sauci.workflows.github._paths import glob_regex, paths_skip

GIT = ["git", "-c", "user.name=T", "-c", "user.email=t@example.com"]


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("*.md", "README.md", True),
        ("*.md", "docs/index.md", False),  # * stays in one segment
        ("**.md", "docs/index.md", True),
        ("docs/**", "docs/a/b.rst", True),
        ("**/test_*.py", "test_a.py", True),  # **/ may match no directory
        ("**/test_*.py", "tests/unit/test_a.py", True),
        ("src/?.py", "src/a.py", True),
        ("src/?.py", "src/ab.py", False),
    ],
)
def test_patterns_follow_github_globs(pattern: str, path: str, matches: bool) -> None:
    assert matches == bool(glob_regex(pattern).match(path))


def test_paths_needs_one_included_file_and_later_patterns_win() -> None:
    paths = ["src/**", "!src/**/*.md"]
    assert paths_skip(["src/a.py", "README.md"], paths, []) is None
    assert paths_skip(["src/notes.md"], paths, []) is not None  # excluded again
    assert paths_skip(["README.md"], paths, []) == (
        "skipped: on.push.paths: none of the 1 changed files matches"
    )


def test_paths_ignore_skips_only_when_every_file_is_ignored() -> None:
    assert paths_skip(["docs/a.md"], [], ["docs/**"]) is not None
    assert paths_skip(["docs/a.md", "src/a.py"], [], ["docs/**"]) is None


def test_unknown_changes_run() -> None:
    assert paths_skip(None, ["src/**"], []) is None


WORKFLOW = """\
on:
  push:
    paths-ignore: ["docs/**", "*.md"]
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - run: echo test
"""


def git(repo: Path, *args: str) -> str:
    done = subprocess.run([*GIT, *args], cwd=repo, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def test_a_push_changing_only_docs_skips_the_workflow_with_the_reason(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".github" / "workflows").mkdir(parents=True)
    (repo / ".github" / "workflows" / "ci.yml").write_text(WORKFLOW)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "one")
    first = git(repo, "rev-parse", "HEAD")
    (repo / "docs").mkdir()
    (repo / "docs" / "index.md").write_text("docs")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "docs")
    docs = git(repo, "rev-parse", "HEAD")
    build = Build(
        id=1, repo=str(repo), ref="refs/heads/main", sha=docs, old_sha=first, event="push"
    )
    (step,) = load_for_build(repo, build).steps
    assert step.condition is not None
    assert "skipped: on.push.paths-ignore: all 1 changed files are ignored" == step.condition.reason
    (repo / "app.py").write_text("x = 1\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "code")
    code = git(repo, "rev-parse", "HEAD")
    build = Build(id=2, repo=str(repo), ref="refs/heads/main", sha=code, old_sha=docs, event="push")
    (step,) = load_for_build(repo, build).steps
    assert step.condition is None
