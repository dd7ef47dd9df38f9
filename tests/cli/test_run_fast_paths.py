"""`sauci run`'s start-up shortcuts are invisible: the cached pipeline follows
every commit, and --keep-workspace still keeps a checkout."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from sauci.cli import main

GIT = ["git", "-c", "user.name=Tester", "-c", "user.email=t@example.com"]


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    d = tmp_path / "data"
    monkeypatch.setenv("SAUCI_DATA_DIR", str(d))
    monkeypatch.delenv("SAUCI_STORE", raising=False)
    return d


def commit(repo: Path, pipeline: str) -> None:
    repo.mkdir(exist_ok=True)
    (repo / ".sauci.yml").write_text(pipeline)
    if not (repo / ".git").exists():
        subprocess.run([*GIT, "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run([*GIT, "add", "."], cwd=repo, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", "change"], cwd=repo, check=True)


def test_a_committed_change_to_the_pipeline_is_run(tmp_path, data_dir, capsys):
    repo = tmp_path / "repo"
    commit(repo, "steps:\n  s:\n    run: echo first-version\n")
    assert 0 == main(["run", str(repo), "--color", "never"])
    assert "s │ first-version" in capsys.readouterr().out
    assert 1 == len(list((data_dir / "cache" / "pipelines").glob("*.json")))
    assert 0 == main(["run", str(repo), "--color", "never"])  # from the cache
    assert "s │ first-version" in capsys.readouterr().out
    commit(repo, "steps:\n  t:\n    run: echo second-version\n")
    assert 0 == main(["run", str(repo), "--color", "never"])
    out = capsys.readouterr().out
    assert "t │ second-version" in out and "first-version" not in out


def test_keep_workspace_keeps_the_checkout(tmp_path, data_dir, capsys):
    repo = tmp_path / "repo"
    commit(repo, "steps:\n  s:\n    run: touch made-by-step\n")
    assert 0 == main(["run", str(repo), "--keep-workspace", "--color", "never"])
    (kept,) = (data_dir / "workspaces").iterdir()
    assert (kept / "made-by-step").exists() and (kept / ".sauci.yml").exists()


def test_a_missing_commit_is_an_error_not_a_traceback(tmp_path, capsys):
    repo = tmp_path / "empty"
    repo.mkdir()
    subprocess.run([*GIT, "init", "-q", "-b", "main"], cwd=repo, check=True)
    assert 3 == main(["run", str(repo), "--color", "never"])
    assert "sauci: error:" in capsys.readouterr().err
