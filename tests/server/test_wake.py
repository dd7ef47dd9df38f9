"""Other processes wake `sauci serve` through the spool's wake pipe: a git hook's
push, `sauci trigger`, `sauci rerun` and `sauci cancel` act at once, though the
server's safety rounds are minutes apart here (without the wake, every test
below would time out)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from polling import wait_for

from sauci.app.server import build_server
from sauci.core.config import Settings
from sauci.core.models import BuildRequest, Status
from sauci.core.server import Server, ServerOptions
from sauci.storage import open_store
from sauci.triggers import install_hook
from sauci.triggers.wake import WakeReader, poke

GIT = ["git", "-c", "user.name=Pusher", "-c", "user.email=p@example.com"]
SLOW = {"tick": 300.0, "idle_tick": 300.0}  # safety rounds far beyond the test's deadline
DEADLINE = 30.0


def git(cwd: Path, *args: str) -> str:
    return subprocess.run([*GIT, *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def make_origin(tmp: Path, pipeline: str) -> tuple[Path, Path]:
    bare = tmp / "origin.git"
    git(tmp, "init", "-q", "--bare", "-b", "main", str(bare))
    work = tmp / "work"
    git(tmp, "clone", "-q", str(bare), str(work))
    git(work, "checkout", "-q", "-b", "main")
    (work / ".sauci.yml").write_text(pipeline)
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "first")
    return bare, work


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", grace=1.0, sandbox="local")


def start(settings: Settings, repo: Path) -> Server:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    install_hook(repo, settings.data_dir / "spool", "receive")
    server = build_server(
        store=open_store(settings.store_url),
        settings=settings,
        repos=[str(repo)],
        options=ServerOptions(**SLOW),
    )
    server.start()
    return server


def sauci(settings: Settings, *args: str) -> str:
    env = {**os.environ, "SAUCI_DATA_DIR": str(settings.data_dir)}
    env.pop("SAUCI_STORE", None)
    done = subprocess.run(
        [sys.executable, "-m", "sauci", *args], env=env, capture_output=True, text=True
    )
    assert 0 == done.returncode, done.stderr
    return done.stdout


def test_a_push_through_the_shell_hook_starts_at_once(tmp_path, settings):
    bare, work = make_origin(tmp_path, "steps:\n  hello:\n    run: echo hi\n")
    server = start(settings, bare)
    try:
        git(work, "push", "-q", "origin", "main")
        wait_for(
            lambda: [b for b in server.store.list_builds() if b.status.done],
            "the pushed build to run",
            timeout=DEADLINE,
        )
    finally:
        server.stop()
    (build,) = server.store.list_builds()
    assert Status.PASSED is build.status


def test_trigger_rerun_and_cancel_from_another_process_act_at_once(tmp_path, settings):
    bare, work = make_origin(tmp_path, "steps:\n  nap:\n    run: sleep 60\n")
    server = start(settings, bare)
    store = server.store
    try:
        git(work, "push", "-q", "origin", "main")
        wait_for(lambda: store.list_builds(), "the push", timeout=DEADLINE)
        (first,) = store.list_builds()
        wait_for(lambda: store.get_build(first.id).status is Status.RUNNING, "the build to run")
        sauci(settings, "cancel", str(first.id))
        wait_for(
            lambda: store.get_build(first.id).status is Status.CANCELLED,
            "the cancel to reach the running build",
            timeout=DEADLINE,
        )
        sauci(settings, "rerun", str(first.id))
        wait_for(
            lambda: len(store.list_builds(status=Status.RUNNING)) == 1,
            "the rerun to start",
            timeout=DEADLINE,
        )
        (again,) = store.list_builds(status=Status.RUNNING)
        sauci(settings, "cancel", str(again.id))
        wait_for(lambda: store.get_build(again.id).status.done, "the rerun to end")
        sauci(settings, "trigger", str(bare), "--ref", "main")
        wait_for(
            lambda: len(store.list_builds(status=Status.RUNNING)) == 1,
            "the triggered build to start",
            timeout=DEADLINE,
        )
    finally:
        server.stop()


def test_a_build_queued_in_this_process_while_another_runs_starts_at_once(tmp_path, settings):
    bare, _ = make_origin(tmp_path, "steps:\n  hello:\n    run: echo hi\n")
    server = start(settings, bare)
    try:
        from sauci.core.scheduler import Scheduler

        build = Scheduler(server.store).enqueue(BuildRequest(repo=str(bare), ref="refs/heads/main"))
        wait_for(
            lambda: server.store.get_build(build.id).status.done, "the build", timeout=DEADLINE
        )
    finally:
        server.stop()


def test_a_poke_with_no_server_does_nothing_and_never_blocks(tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    assert poke(spool) is False  # no pipe
    os.mkfifo(spool / "wake", 0o600)
    assert poke(spool) is False  # a pipe nobody reads: the open fails at once


def test_a_full_pipe_and_a_file_in_its_place_are_handled(tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "wake").write_text("not a pipe")  # whatever was there is replaced
    woken = []
    reader = WakeReader(spool, lambda: woken.append(1))
    reader.start()
    try:
        assert stat.S_ISFIFO(os.lstat(spool / "wake").st_mode)
        for _ in range(100_000):  # far more than a pipe holds: never blocks
            poke(spool)
        wait_for(lambda: woken, "a wake")
    finally:
        reader.close()
    assert poke(spool) is False  # closed: nobody reads any more


def test_a_symlink_in_place_of_the_pipe_is_not_followed(tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    target = tmp_path / "elsewhere"
    target.write_text("keep me")
    (spool / "wake").symlink_to(target)
    reader = WakeReader(spool, lambda: None)
    reader.start()
    reader.close()
    assert "keep me" == target.read_text()
    assert stat.S_ISFIFO(os.lstat(spool / "wake").st_mode)
