"""`sauci serve` builds a pushed .gitlab-ci.yml with GitLab's artifacts
passing (every parallel instance's), retry: when and after_script after a
timeout; a job whose services the server's sandbox cannot run is refused
with its place in the file."""

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

PIPELINE = """\
stages: [build, test]
build:
  stage: build
  parallel:
    matrix:
      - PART: [one, two]
  script: [mkdir -p out, 'echo "made $PART" > "out/$PART.txt"']
  artifacts: {paths: [out/]}
flaky:
  stage: build
  retry: {max: 1, when: [script_failure]}
  script: ['test -e tried || { touch tried; exit 1; }']
slow:
  stage: build
  timeout: 1s
  allow_failure: true
  variables: {RUNNER_AFTER_SCRIPT_TIMEOUT: 5s}
  script: [sleep 30]
  after_script: ['echo "cleaned up after $CI_JOB_STATUS"']
use:
  stage: test
  needs: [build]
  script: [cat out/one.txt out/two.txt]
"""


def git(cwd: Path, *args: str) -> str:
    return subprocess.run([*GIT, *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def start_server(settings: Settings, repo: Path) -> Server:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    install_hook(repo, settings.data_dir / "spool", "receive")
    server = build_server(
        store=open_store(settings.store_url), settings=settings, repos=[str(repo)],
        options=ServerOptions(),
    )  # fmt: skip
    server.start()
    return server


def finished(store, n: int):  # type: ignore[no-untyped-def]
    builds = store.list_builds(limit=50)
    done = [b for b in builds if b.status.done]
    return builds if len(builds) >= n and len(done) == len(builds) else None


def test_a_pushed_gitlab_file_passes_artifacts_retries_and_cleans_up(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", grace=1.0, sandbox="local")
    bare = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(bare), str(work))
    git(work, "checkout", "-q", "-b", "main")
    (work / ".gitlab-ci.yml").write_text(PIPELINE)
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "first")
    server = start_server(settings, bare)
    try:
        git(work, "push", "-q", "origin", "main")
        [build] = wait_for(lambda: finished(server.store, 1), timeout=120)
        first = {s.name: s for s in server.store.list_steps(build.id)}
        # The same server refuses a job with services: its sandbox runs none.
        (work / ".gitlab-ci.yml").write_text(
            "db:\n  services: [postgres:16]\n  script: [psql -h postgres]\n"
        )
        git(work, "commit", "-q", "-am", "services")
        git(work, "push", "-q", "origin", "main")
        builds = wait_for(lambda: finished(server.store, 2), timeout=120)
    finally:
        server.stop()
    assert Status.PASSED == build.status, {n: (s.status, s.reason) for n, s in first.items()}
    assert Path(first["use"].log_path).read_text().count("made ") == 2
    assert (first["flaky"].status, first["flaky"].attempt) == (Status.PASSED, 2)
    slow = first["slow"]
    assert slow.status is Status.FAILED
    assert "cleaned up after failed" in Path(slow.log_path).read_text()
    refused = next(b for b in builds if b.id != build.id)
    assert refused.status is Status.ERRORED
    assert ".gitlab-ci.yml:2:3: sandbox 'local' cannot run services (db)" in (refused.reason or "")
