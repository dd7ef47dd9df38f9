"""A GitHub workflow's on.schedule reaches the server's cron trigger (read at the head commit)."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

from sauci.source.git import read_file
from sauci.workflows import workflow_schedules

GIT = ["git", "-c", "user.name=T", "-c", "user.email=t@example.com"]


def commit(repo: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    subprocess.run([*GIT, "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run([*GIT, "add", "."], cwd=repo, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", "m"], cwd=repo, check=True)


def test_the_schedules_of_the_test_workflow_are_found(tmp_path: Path) -> None:
    job = "jobs:\n  t:\n    runs-on: ubuntu-latest\n    steps:\n      - run: 'true'\n"
    commit(
        tmp_path,
        {
            ".github/workflows/release.yml": "on:\n  schedule:\n    - cron: '1 1 * * *'\n" + job,
            ".github/workflows/tests.yml": "on:\n  push:\n  schedule:\n"
            "    - cron: '0 6 * * 1'\n    - cron: '30 2 * * *'\n" + job,
        },
    )
    read = functools.partial(read_file, tmp_path, "HEAD")
    assert [("0 6 * * 1", "main"), ("30 2 * * *", "main")] == workflow_schedules(read)


def test_no_workflow_or_a_broken_one_gives_none(tmp_path: Path) -> None:
    commit(tmp_path, {"README": "x", ".github/workflows/ci.yml": "on: [push\n"})
    assert [] == workflow_schedules(functools.partial(read_file, tmp_path, "HEAD"))
    assert [] == workflow_schedules(lambda path: None)
