"""A served build whose step asks its sandbox for what it cannot give errors at
load, with the same file:line:col problem `sauci validate --sandbox` prints."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from polling import wait_for

from sauci.app.server import build_server
from sauci.core.config import Settings
from sauci.core.models import Status
from sauci.core.server import ServerOptions
from sauci.storage import open_store
from sauci.triggers import install_hook

GIT = ["git", "-c", "user.name=Pusher", "-c", "user.email=p@example.com"]
PIPELINE = "steps:\n  test:\n    run: echo never-ran\n    services: [redis]\n"


def _git(cwd: Path, *args: str) -> None:
    subprocess.run([*GIT, *args], cwd=cwd, check=True, capture_output=True)


def _serve_one_push(tmp: Path, settings: Settings):
    bare, work = tmp / "origin.git", tmp / "work"
    _git(tmp, "init", "-q", "--bare", "-b", "main", str(bare))
    _git(tmp, "clone", "-q", str(bare), str(work))
    _git(work, "checkout", "-q", "-b", "main")
    (work / ".sauci.yml").write_text(PIPELINE)
    _git(work, "add", ".")
    _git(work, "commit", "-q", "-m", "first")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    install_hook(bare, settings.data_dir / "spool", "receive")
    server = build_server(
        store=open_store(settings.store_url),
        settings=settings,
        repos=[str(bare)],
        options=ServerOptions(),
    )
    server.start()
    try:
        _git(work, "push", "-q", "origin", "main")
        build = wait_for(
            lambda: next((b for b in server.store.list_builds(limit=5) if b.status.done), None),
            timeout=60,
        )
        return build, server.store.list_steps(build.id)
    finally:
        server.stop()


def test_served_build_errors_at_the_key_before_any_step(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", grace=1.0, sandbox="local")
    build, steps = _serve_one_push(tmp_path, settings)
    assert Status.ERRORED == build.status
    assert re.search(
        r"\.sauci\.yml:4:5: sandbox 'local' cannot run services \(step 'test'\)", build.reason
    ), build.reason
    assert [] == steps  # refused before any step was recorded or ran


def test_served_build_with_warn_runs_without_it(tmp_path):
    settings = Settings(
        data_dir=tmp_path / "data", grace=1.0, sandbox="local", unenforced_limits="warn"
    )
    build, steps = _serve_one_push(tmp_path, settings)
    assert Status.PASSED == build.status, build.reason
    assert ["test"] == [s.name for s in steps]
