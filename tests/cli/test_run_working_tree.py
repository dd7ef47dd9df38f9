"""`sauci run` on the working tree as it is; `--commit REF` on a clean commit;
errors that name the user's own file and say what to do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

GIT = ["git", "-c", "user.name=Tester", "-c", "user.email=t@example.com"]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        [*GIT, *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    d = tmp_path / "data"
    monkeypatch.setenv("SAUCI_DATA_DIR", str(d))
    monkeypatch.delenv("SAUCI_STORE", raising=False)
    return d


def sauci(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sauci", *args, "--color", "never"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def workspaces(data_dir: Path) -> list[str]:
    where = data_dir / "workspaces"
    return sorted(os.listdir(where)) if where.exists() else []


def test_init_then_validate_and_run_without_committing(tmp_path, data_dir):
    """The first thing a new user does: nothing committed, nothing staged."""
    repo = tmp_path / "fresh"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    assert 0 == sauci("init", cwd=repo).returncode
    checked = sauci("validate", cwd=repo)
    assert 0 == checked.returncode, checked.stdout + checked.stderr
    ran = sauci("run", cwd=repo)
    assert 0 == ran.returncode, ran.stdout + ran.stderr
    assert "hello │ replace me" in ran.stdout
    assert [] == workspaces(data_dir)


def test_untracked_files_and_edits_run_ignored_files_do_not(tmp_path, data_dir):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / ".gitignore").write_text("secret.env\n")
    (repo / "a.txt").write_text("committed\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    (repo / ".sauci.yml").write_text(  # untracked itself
        "steps:\n  s:\n    run: cat a.txt new.txt; test ! -e secret.env && echo no-secret\n"
    )
    (repo / "a.txt").write_text("edited\n")
    (repo / "new.txt").write_text("untracked\n")
    (repo / "secret.env").write_text("TOKEN=1\n")
    ran = sauci("run", cwd=repo)
    assert 0 == ran.returncode, ran.stdout + ran.stderr
    assert ["s │ edited", "s │ untracked", "s │ no-secret"] == [
        line for line in ran.stdout.splitlines() if line.startswith("s │")
    ]
    assert [] == workspaces(data_dir)
    assert 1 == len(git(repo, "worktree", "list").splitlines())
    assert "first (working tree)" in sauci("show", "1", cwd=repo).stdout
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "second")
    (repo / "secret.env").write_text("TOKEN=2\n")  # ignored: not a change
    assert 0 == sauci("run", cwd=repo).returncode
    shown = sauci("show", "2", cwd=repo).stdout
    assert "second" in shown and "working tree" not in shown


def test_an_error_names_the_users_own_file(tmp_path, data_dir):
    repo = tmp_path / "proj"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / ".sauci.yml").write_text("steps:\n  a:\n    run: 'true'\n    tiemout: 5s\n")
    ran = sauci("run", cwd=repo)
    assert 2 == ran.returncode
    assert f"{repo / '.sauci.yml'}:4:5" in ran.stderr
    assert "workspaces" not in ran.stderr and "Traceback" not in ran.stderr
    assert [] == workspaces(data_dir)


def test_commit_names_the_file_at_that_commit_and_says_when_it_is_not_there(tmp_path, data_dir):
    repo = tmp_path / "proj"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README").write_text("x\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    (repo / ".sauci.yml").write_text("steps:\n  a:\n    run: 'true'\n")
    ran = sauci("run", "--commit", "HEAD", cwd=repo)
    assert 2 == ran.returncode
    assert "it is in the working tree: commit it, or run without --commit" in ran.stderr
    (repo / ".sauci.yml").write_text("steps:\n  a:\n    run: 'true'\n    tiemout: 5s\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "pipeline")
    ran = sauci("run", "--commit", "main", cwd=repo)
    assert 2 == ran.returncode
    assert "main:.sauci.yml:4:5" in ran.stderr
    ran = sauci("run", "--commit", "no-such-branch", cwd=repo)
    assert 2 == ran.returncode and "'no-such-branch' is not a commit" in ran.stderr
    assert [] == workspaces(data_dir)
    assert 1 == len(git(repo, "worktree", "list").splitlines())


def test_outside_a_git_repository_says_to_run_git_init(tmp_path, data_dir):
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / ".sauci.yml").write_text("steps:\n  a:\n    run: 'true'\n")
    ran = sauci("run", cwd=plain)
    assert 2 == ran.returncode
    assert "is not a git repository" in ran.stderr and "git init" in ran.stderr
    assert "Traceback" not in ran.stderr


def test_a_step_cannot_change_the_users_files(tmp_path, data_dir):
    """The copy is a copy: a step that writes, deletes or rewrites through a
    link leaves the working tree as it was."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "a.txt").write_text("mine\n")
    (repo / "link").symlink_to("a.txt")
    (repo / ".sauci.yml").write_text(
        "steps:\n  s:\n    run: echo via-link > link; rm -f link; echo changed > a.txt;"
        " touch made-by-step\n"
    )
    assert 0 == sauci("run", cwd=repo).returncode
    assert "mine\n" == (repo / "a.txt").read_text()
    assert (repo / "link").is_symlink() and not (repo / "made-by-step").exists()


def test_an_ignored_pipeline_file_is_named_as_such(tmp_path, data_dir):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / ".gitignore").write_text("local.yml\n")
    (repo / "local.yml").write_text("steps:\n  a:\n    run: 'true'\n")
    ran = sauci("run", "--file", "local.yml", cwd=repo)
    assert 2 == ran.returncode
    assert f"{repo / 'local.yml'} is ignored by git" in ran.stderr
    assert [] == workspaces(data_dir)


def test_a_pipeline_file_linked_out_of_the_repository_is_refused(tmp_path, data_dir):
    """Hostile: the copy keeps the link as a link, and the reader refuses it
    (naming the user's file), so nothing outside is read as the pipeline."""
    outside = tmp_path / "outside.yml"
    outside.write_text("steps:\n  leak:\n    run: echo SHOULD-NOT-RUN\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / ".sauci.yml").symlink_to(outside)
    ran = sauci("run", cwd=repo)
    assert 2 == ran.returncode
    assert f"{repo / '.sauci.yml'} is a symbolic link out of its repository" in ran.stderr
    assert "SHOULD-NOT-RUN" not in ran.stdout
    assert [] == workspaces(data_dir)
