"""`sauci serve` builds a pushed GitHub workflow, honouring its ``on.push.branches``."""

from __future__ import annotations

import subprocess
from pathlib import Path

from polling import wait_for

from sauci.app.server import build_server
from sauci.core.config import Settings
from sauci.core.models import Status
from sauci.core.server import Server, ServerOptions
from sauci.storage import open_store
from sauci.triggers import install_hook

GIT = ["git", "-c", "user.name=Pusher", "-c", "user.email=p@example.com"]

WORKFLOW = """\
name: Tests
on:
  push:
    branches: [main]
jobs:
  test:
    runs-on: ubuntu-latest
    strategy:
      matrix:
        python-version: ["3.x"]
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: ${{ matrix.python-version }}
      - id: ref
        run: echo "ref=$GITHUB_REF sha=${GITHUB_SHA:0:7}" >> "$GITHUB_OUTPUT"
      - run: echo "${{ steps.ref.outputs.ref }} on ${{ github.ref_name }}"
"""


def git(cwd: Path, *args: str) -> str:
    return subprocess.run([*GIT, *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def start_server(settings: Settings, repo: Path) -> Server:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    install_hook(repo, settings.data_dir / "spool", "receive")
    server = build_server(
        store=open_store(settings.store_url),
        settings=settings,
        repos=[str(repo)],
        options=ServerOptions(),
    )
    server.start()
    return server


def finished(store, n: int):
    builds = store.list_builds(limit=50)
    done = [b for b in builds if b.status.done]
    return builds if len(builds) >= n and len(done) == len(builds) else None


def test_a_push_builds_the_workflow_and_its_branch_filter_holds(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", grace=1.0, sandbox="local")
    bare = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(bare), str(work))
    git(work, "checkout", "-q", "-b", "main")
    (work / ".github" / "workflows").mkdir(parents=True)
    (work / ".github" / "workflows" / "tests.yml").write_text(WORKFLOW)
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "first")
    server = start_server(settings, bare)
    try:
        git(work, "branch", "feature")
        # One push for both refs: a second push racing the server's own git
        # calls on the bare repository can fail to lock a ref on a busy machine.
        git(work, "push", "-q", "origin", "main", "feature")
        builds = wait_for(lambda: finished(server.store, 2), timeout=90)
        by_branch = {b.branch: b for b in builds}
        main_steps = server.store.list_steps(by_branch["main"].id)
        feature_steps = server.store.list_steps(by_branch["feature"].id)
    finally:
        server.stop()
    assert Status.PASSED == by_branch["main"].status, by_branch["main"].reason
    assert [("test (3.x)", Status.PASSED)] == [(s.name, s.status) for s in main_steps]
    log = Path(main_steps[0].log_path).read_text()
    assert "\nrefs/heads/main sha=" in log and " on main\n" in log
    assert [Status.SKIPPED] == [s.status for s in feature_steps]
    assert "'when' does not match branch 'feature'" in (feature_steps[0].reason or "")
