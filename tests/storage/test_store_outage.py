"""A store that goes down in the middle of a build: the build ends errored with a
clear reason once the store is back, its log is complete on disk, and nothing
already stored is lost."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from sauci import BuildRequest, Pipeline, Status, Step
from sauci.app import LocalRunner
from sauci.core.config import Settings
from sauci.storage import open_store

pytest_plugins = ["redis_server"]


def _outage(stop, start, *, down_at: float, up_at: float) -> threading.Thread:
    def run() -> None:
        time.sleep(down_at)
        stop()
        time.sleep(up_at - down_at)
        start()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _build_through_an_outage(store, tmp_path: Path, stop, start):
    settings = Settings(data_dir=tmp_path / "data", grace=1.0)
    runner = LocalRunner(store=store, settings=settings, secrets={}, store_retry=60.0)
    ws = tmp_path / "ws"
    ws.mkdir()
    earlier = store.create_build(BuildRequest(repo="/earlier", event="push"))
    store.append_log(earlier.id, "s", b"kept\n")
    pipeline = Pipeline(
        steps=[
            Step(name="first", run="echo before"),
            Step(name="slow", run="for i in 1 2 3 4 5 6 7 8; do echo line $i; sleep 0.25; done"),
            Step(name="after", run="echo never"),
        ]
    )
    outage = _outage(stop, start, down_at=0.8, up_at=3.5)
    try:
        outcome_error = None
        try:
            runner.run_pipeline(pipeline, ws, BuildRequest(repo="/repo", event="push"))
        except Exception as exc:  # the test reports it below
            outcome_error = exc
    finally:
        outage.join()
    assert outcome_error is None, f"the build was not recorded: {outcome_error!r}"
    builds = store.list_builds(repo="/repo")
    assert len(builds) == 1
    build = builds[0]
    assert build.status is Status.ERRORED
    assert "the store failed during the build" in build.reason
    assert build.finished_at is not None
    slow = next(s for s in store.list_steps(build.id) if s.name == "slow")
    assert Path(slow.log_path).parent == settings.logs_dir / "repo" / f"{build.id}-{build.uuid}"
    lines = Path(slow.log_path).read_text().splitlines()
    assert lines[:8] == [f"line {i}" for i in range(1, 9)], lines
    # nothing stored before the outage was lost
    assert store.get_build(earlier.id).repo == "/earlier"
    assert store.read_log(earlier.id, "s") == b"kept\n"
    assert store.read_log(build.id, "first") == b"before\n"
    return build


@pytest.mark.postgres
def test_postgresql_down_in_the_middle_of_a_build(postgres_server, clean_postgres, tmp_path):
    store = open_store(clean_postgres)
    try:
        _build_through_an_outage(store, tmp_path, postgres_server.stop, postgres_server.start)
    finally:
        store.close()


def test_redis_down_in_the_middle_of_a_build(redis_server, tmp_path):
    from redis_server import RedisServer

    # A server of its own that keeps its data across the restart, as a real one would.
    persistent = RedisServer(redis_server.binary, persist_dir=str(tmp_path))
    persistent.start()
    store = open_store(persistent.url)
    try:
        _build_through_an_outage(store, tmp_path, persistent.stop, persistent.start)
    finally:
        store.close()
        persistent.stop()
