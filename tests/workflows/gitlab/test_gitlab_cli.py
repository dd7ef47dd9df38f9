"""`sauci validate` and `sauci run` on a repository whose pipeline is a
.gitlab-ci.yml (found by sauci.workflows when there is no .sauci.yml)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PIPELINE = """
stages: [test, deploy]
test:
  parallel:
    matrix:
      - PY: ["3.11", "3.12"]
  script:
    - echo "testing $PY $CI_NODE_INDEX/$CI_NODE_TOTAL on $CI_COMMIT_BRANCH"
deploy:
  stage: deploy
  script: [echo deploy]
  when: manual
tagged:
  script: [echo tag]
  rules:
    - if: $CI_COMMIT_TAG
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / ".gitlab-ci.yml").write_text(PIPELINE, encoding="utf-8")
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "ci"], check=True)
    return root


def _sauci(*args: str, data: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SAUCI_DATA_DIR": str(data), "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "sauci", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_validate_prints_the_plan(repo: Path, tmp_path: Path) -> None:
    done = _sauci("validate", str(repo / ".gitlab-ci.yml"), data=tmp_path / "data")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "test: [3.11]",
        "test: [3.12]",
        "deploy  (after test: [3.11], test: [3.12])  [manual: skipped]  [may fail]",
        "tagged  left out: no rule matches",
    ]


def test_validate_names_what_is_not_supported(repo: Path, tmp_path: Path) -> None:
    (repo / ".gitlab-ci.yml").write_text("a:\n  script: [x]\n  trigger: b/c\n", encoding="utf-8")
    done = _sauci("validate", str(repo / ".gitlab-ci.yml"), data=tmp_path / "data")
    assert done.returncode != 0
    assert ".gitlab-ci.yml:3:3: a: trigger (downstream pipelines) is not supported" in done.stdout


def test_run_runs_it(repo: Path, tmp_path: Path) -> None:
    done = _sauci("run", str(repo), data=tmp_path / "data")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "testing 3.12 2/2 on main" in done.stdout
    assert "manual" in done.stdout


def test_run_job_keeps_one_job_and_what_it_needs(repo: Path, tmp_path: Path) -> None:
    from sauci.workflows import Options, load_workflow

    text = "stages: [a, b]\nfirst:\n  stage: a\n  script: [x]\nother:\n  stage: a\n  script: [x]\n"
    text += "last:\n  stage: b\n  needs: [first]\n  parallel: 2\n  script: [x]\n"
    (repo / ".gitlab-ci.yml").write_text(text, encoding="utf-8")
    loaded = load_workflow("gitlab", repo / ".gitlab-ci.yml", Options(job="last"))
    assert [s.name for s in loaded.pipeline.steps] == ["first", "last 1/2", "last 2/2"]
    (repo / ".gitlab-ci.yml").write_text(text + "  when: manual\n", encoding="utf-8")
    steps = load_workflow("gitlab", repo / ".gitlab-ci.yml", Options(job="last")).pipeline.steps
    assert [s.condition for s in steps] == [None, None, None]  # named: a person started it
    steps = load_workflow("gitlab", repo / ".gitlab-ci.yml", Options()).pipeline.steps
    assert steps[-1].condition is not None and steps[-1].condition.reason == "manual"


def test_changes_and_the_commit_message_come_from_the_push(repo: Path) -> None:
    from sauci.workflows import Options, load_workflow

    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    before = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    (repo / "docs").mkdir()
    (repo / "docs" / "index.md").write_text("x", encoding="utf-8")
    (repo / ".gitlab-ci.yml").write_text(
        "docs:\n  script: [x]\n  rules: [{changes: ['docs/**/*']}]\n"
        "code:\n  script: [x]\n  rules: [{changes: ['src/**/*.py']}]\n"
        "skippable:\n  script: [x]\n  rules:\n"
        "    - if: $CI_COMMIT_TITLE =~ /\\[skip slow\\]/\n      when: never\n    - when: on_success\n",
        encoding="utf-8",
    )
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "docs only [skip slow]"], check=True)
    sha = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout

    def names(**github: str) -> list[str]:
        options = Options(github={"ref": "refs/heads/main", **github}, workspace=repo)
        return [
            s.name for s in load_workflow("gitlab", repo / ".gitlab-ci.yml", options).pipeline.steps
        ]

    assert names(sha=sha.strip(), before=before.strip()) == ["docs"]
    # Without the push's old sha nothing is known: changes hold, as in GitLab.
    assert names(sha=sha.strip()) == ["docs", "code"]
    # Only hex shas reach git: anything else is "not known".
    assert names(sha=sha.strip(), before="--output=/tmp/pwned") == ["docs", "code"]
    assert not Path("/tmp/pwned").exists()


def test_the_default_branch_is_the_repositorys(tmp_path: Path) -> None:
    """`$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH`, the common rule, holds on a
    served repository whose default branch is master."""
    from sauci.workflows import Options, load_workflow

    bare = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "master", str(bare)], check=True)
    work = tmp_path / "work"
    subprocess.run(["git", "clone", "-q", str(bare), str(work)], check=True, capture_output=True)
    (work / ".gitlab-ci.yml").write_text(
        "deploy:\n  script: [x]\n  rules: [{if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH}]\n",
        encoding="utf-8",
    )
    git = ["git", "-C", str(work), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "ci"], check=True)
    subprocess.run([*git, "push", "-q", "origin", "HEAD:master"], check=True)
    workspace = tmp_path / "ws"
    subprocess.run(
        ["git", f"--git-dir={bare}", "worktree", "add", "-q", "--detach", str(workspace), "master"],
        check=True,
    )

    def names(branch: str) -> list[str]:
        options = Options(github={"ref": f"refs/heads/{branch}"}, workspace=workspace)
        loaded = load_workflow("gitlab", workspace / ".gitlab-ci.yml", options)
        return [s.name for s in loaded.pipeline.steps]

    assert names("master") == ["deploy"]
    assert names("main") == []
