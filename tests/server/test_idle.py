"""An idle `sauci serve` asks the store less and less often, and still starts
what comes in: pushes and builds queued in its own process at once, builds
queued by another process within ``idle_tick``."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest
from polling import wait_for

from sauci.app.server import build_server
from sauci.core.config import Settings
from sauci.core.models import BuildRequest, Status
from sauci.core.scheduler import Scheduler
from sauci.core.server import Server, ServerOptions
from sauci.storage.memory import MemoryStore

GIT = ["git", "-c", "user.name=Pusher", "-c", "user.email=p@example.com"]


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.claims: list[float] = []
        self.lock = threading.Lock()

    def claim_build(self, worker, *, build_id=None):  # type: ignore[no-untyped-def]
        with self.lock:
            self.claims.append(time.monotonic())
        return super().claim_build(worker, build_id=build_id)

    def list_builds(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        # A look at the queue: how the server claims by declared cost
        # (sauci.core.capacity) before it claims one build by id.
        if kwargs.get("status") is Status.QUEUED:
            with self.lock:
                self.claims.append(time.monotonic())
        return super().list_builds(*args, **kwargs)

    def claims_since(self, since: float) -> int:
        with self.lock:
            return sum(1 for t in self.claims if t >= since)


def make_repo(path: Path, pipeline: str = "steps:\n  hello:\n    run: echo hi\n") -> str:
    path.mkdir()
    (path / ".sauci.yml").write_text(pipeline)
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "x"]):
        subprocess.run([*GIT, *args], cwd=path, check=True, capture_output=True)
    return str(path)


def serve(tmp_path: Path, store: CountingStore, **options: float) -> Server:
    settings = Settings(data_dir=tmp_path / "data", grace=1.0, sandbox="local")
    server = build_server(
        store=store, settings=settings, repos=[], options=ServerOptions(**options)
    )
    server.start()
    return server


def test_an_idle_server_asks_the_store_less_and_less_often(tmp_path):
    store = CountingStore()
    server = serve(tmp_path, store, tick=0.02, idle_tick=0.4)
    try:
        time.sleep(1.0)  # the back-off reaches idle_tick within ~0.8 s
        since = time.monotonic()
        time.sleep(2.0)
        asked = store.claims_since(since)
    finally:
        server.stop()
    # Every tick (0.02 s) would be ~100; every idle_tick (0.4 s) is ~5.
    assert 1 <= asked <= 10, asked


def test_a_build_queued_a_slot_freed_or_a_cancel_here_wakes_the_loop(tmp_path):
    """A build queued (by this process's UI, webhook, poll or cron), a build
    slot freed or a cancel asked here wakes the loop for a round at once."""
    store = CountingStore()
    settings = Settings(data_dir=tmp_path / "data", grace=1.0, sandbox="local")
    server = build_server(store=store, settings=settings, repos=[], options=ServerOptions())
    assert not server._woken.is_set()
    for event in ("build_queued", "runner_slot_free", "build_cancel_requested"):
        server._on_event(event, {})
        assert server._woken.is_set()
        server._woken.clear()
    server._on_event("build_finished", {})  # the slot is not free yet: its thread runs on
    assert not server._woken.is_set()


@pytest.mark.parametrize(
    ("queued_by", "idle_tick"),
    # This process's Scheduler wakes the loop (the idle look is minutes away);
    # another process writes to the store only, and the idle look finds it.
    [("this process", 120.0), ("another process", 0.5)],
)
def test_an_idle_server_runs_what_is_queued(tmp_path, queued_by, idle_tick):
    store = CountingStore()
    server = serve(tmp_path, store, tick=0.02, idle_tick=idle_tick)
    try:
        time.sleep(1.0)  # idle
        repo = make_repo(tmp_path / "r")
        request = BuildRequest(repo=repo, ref="refs/heads/main")
        if queued_by == "this process":
            build = Scheduler(store).enqueue(request)
        else:
            build = store.create_build(request)  # no event in this process
        wait_for(lambda: store.get_build(build.id).status.done, "the build to run")
    finally:
        server.stop()
    assert store.get_build(build.id).status is Status.PASSED


def test_while_a_build_runs_the_store_is_asked_every_tick(tmp_path):
    store = CountingStore()
    server = serve(tmp_path, store, tick=0.02, idle_tick=5.0)
    try:
        repo = make_repo(tmp_path / "r", "steps:\n  wait:\n    run: sleep 1.5\n")
        build = Scheduler(store).enqueue(BuildRequest(repo=repo, ref="refs/heads/main"))
        wait_for(
            lambda: any(s.status is Status.RUNNING for s in store.list_steps(build.id)),
            "the step to start",
        )
        since = time.monotonic()
        time.sleep(0.5)
        asked = store.claims_since(since)
        wait_for(lambda: store.get_build(build.id).status.done, "the build to end")
    finally:
        server.stop()
    assert asked >= 3, asked  # ~25 at one every 0.02 s; idle, at most one in 0.5 s


def test_an_idle_server_keeps_its_heartbeat_fresh(tmp_path):
    """readyz/ and `sauci status` read the heartbeat in server.json: it is
    written about every second also between the idle looks at the store."""
    from sauci.core.server import read_status

    store = CountingStore()
    server = serve(tmp_path, store, tick=0.02, idle_tick=120.0)
    try:
        first = read_status(server.settings.data_dir)["heartbeat"]
        wait_for(
            lambda: read_status(server.settings.data_dir)["heartbeat"] > first + 1.0,
            "a newer heartbeat",
        )
    finally:
        server.stop()
