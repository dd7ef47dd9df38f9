"""PostgreSQL, Redis and the stream store (on Redis) stopped and restarted in
the middle of a build: briefly (the build waits and passes, whole) and past
the deadline (the build errors "store unavailable", its data is delivered
once the store is back)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from sauci import BuildRequest, Pipeline, Status, Step
from sauci.app import LocalRunner
from sauci.core.config import Settings
from sauci.core.undelivered import deliver_pending, pending_notes
from sauci.storage import open_store

PIPELINE = Pipeline(
    steps=[
        Step(name="first", run="echo before"),
        Step(name="slow", run="for i in $(seq 1 12); do echo line $i; sleep 0.2; done"),
        Step(name="after", run="echo after"),
    ]
)


def _through(store, tmp_path: Path, stop, start, *, deadline: float, down_for: float):
    settings = Settings(data_dir=tmp_path / "data", grace=1.0)
    runner = LocalRunner(store=store, settings=settings, secrets={}, store_retry=deadline)
    ws = tmp_path / "ws"
    ws.mkdir()

    def outage() -> None:
        time.sleep(0.7)
        stop()
        time.sleep(down_for)
        start()

    thread = threading.Thread(target=outage)
    thread.start()
    try:
        outcome = runner.run_pipeline(PIPELINE, ws, BuildRequest(repo="/repo", event="push"))
    finally:
        thread.join()
    return settings, outcome.build


@pytest.fixture(params=["postgresql", "redis", "stream"])
def server(request, tmp_path):
    """(store, stop, start) for one kind of store on a real server."""
    if request.param == "postgresql":
        pg = request.getfixturevalue("postgres_server")
        url = request.getfixturevalue("clean_postgres")
        store = open_store(url)
        yield store, pg.stop, pg.start
    else:
        redis = request.getfixturevalue("persistent_redis")
        url = (
            redis.url
            if request.param == "redis"
            else redis.url.replace("redis://", "stream+redis://")
        )
        store = open_store(url)
        yield store, redis.stop, redis.start
    store.close()


def test_a_brief_outage_costs_a_pause_and_nothing_else(server, tmp_path, sound):
    store, stop, start = server
    settings, ended = _through(store, tmp_path, stop, start, deadline=60.0, down_for=1.5)
    build = store.get_build(ended.id)
    assert build.status is Status.PASSED, build.reason
    expected = b"".join(b"line %d\n" % i for i in range(1, 13))
    assert store.read_log(build.id, "slow") == expected
    assert pending_notes(settings.data_dir) == []
    sound(store)


def test_past_the_deadline_the_build_errors_and_its_data_comes_later(server, tmp_path, sound):
    store, stop, start = server
    settings, ended = _through(store, tmp_path, stop, start, deadline=0.8, down_for=2.5)
    assert ended.status is Status.ERRORED and ended.reason.startswith("store unavailable")
    deliver_pending(store, settings.data_dir)  # the store is back: what serve/run do
    assert pending_notes(settings.data_dir) == []
    build = store.get_build(ended.id)
    assert build.status is Status.ERRORED and build.reason.startswith("store unavailable")
    sound(store)
