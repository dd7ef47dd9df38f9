"""A store that goes down in the middle of a build. Briefly: the build waits
it out and ends as its steps say, with every byte of its logs in the store.
Past the deadline (``store_deadline``): the build ends "errored: store
unavailable", its logs stay on disk, and they are delivered once the store is
back. Either way nothing already stored is lost and no step stays "running"."""

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


PIPELINE = Pipeline(
    steps=[
        Step(name="first", run="echo before"),
        Step(name="slow", run="for i in 1 2 3 4 5 6 7 8; do echo line $i; sleep 0.25; done"),
        Step(name="after", run="echo after"),
    ]
)
LINES = b"".join(b"line %d\n" % i for i in range(1, 9))


def _build_through_an_outage(store, tmp_path: Path, stop, start, *, deadline, up_at):
    settings = Settings(data_dir=tmp_path / "data", grace=1.0)
    runner = LocalRunner(store=store, settings=settings, secrets={}, store_retry=deadline)
    ws = tmp_path / "ws"
    ws.mkdir()
    earlier = store.create_build(BuildRequest(repo="/earlier", event="push"))
    store.append_log(earlier.id, "s", b"kept\n")
    outage = _outage(stop, start, down_at=0.8, up_at=up_at)
    try:
        outcome_error = None
        try:
            outcome = runner.run_pipeline(PIPELINE, ws, BuildRequest(repo="/repo", event="push"))
        except Exception as exc:  # the test reports it below
            outcome_error = exc
    finally:
        outage.join()
    assert outcome_error is None, f"the build was not recorded: {outcome_error!r}"
    # nothing stored before the outage was lost
    assert store.get_build(earlier.id).repo == "/earlier"
    assert store.read_log(earlier.id, "s") == b"kept\n"
    return settings, outcome.build


def _check_brief(store, tmp_path, stop, start):
    settings, ended = _build_through_an_outage(
        store, tmp_path, stop, start, deadline=60.0, up_at=3.0
    )
    build = store.get_build(ended.id)
    assert build.status is Status.PASSED, build.reason
    steps = {s.name: s for s in store.list_steps(build.id)}
    assert {s.status for s in steps.values()} == {Status.PASSED}
    assert (
        Path(steps["slow"].log_path).parent
        == settings.logs_dir / "repo" / f"{build.id}-{build.uuid}"
    )
    assert store.read_log(build.id, "slow") == LINES == Path(steps["slow"].log_path).read_bytes()
    assert store.read_log(build.id, "after") == b"after\n"
    assert not (settings.data_dir / "undelivered").exists()


def _check_past_the_deadline(store, tmp_path, stop, start):
    from sauci.core.undelivered import deliver_pending, pending_notes

    settings, ended = _build_through_an_outage(
        store, tmp_path, stop, start, deadline=1.0, up_at=4.5
    )
    assert ended.status is Status.ERRORED
    assert ended.reason.startswith("store unavailable")
    # The store is back (the outage thread restarted it); whatever the build
    # could not record is delivered from the disk now (the server does it every
    # few seconds, sauci run at start).
    deliver_pending(store, settings.data_dir)
    assert pending_notes(settings.data_dir) == []
    build = store.get_build(ended.id)
    assert build.status is Status.ERRORED and build.finished_at is not None
    assert build.reason.startswith("store unavailable"), build.reason
    steps = {s.name: s for s in store.list_steps(build.id)}
    assert all(s.status.done for s in steps.values()), steps
    assert Path(steps["slow"].log_path).read_bytes() == LINES
    assert store.read_log(build.id, "slow") == LINES
    assert store.read_log(build.id, "first") == b"before\n"


@pytest.mark.parametrize("check", [_check_brief, _check_past_the_deadline])
@pytest.mark.postgres
def test_postgresql_down_in_the_middle_of_a_build(check, postgres_server, clean_postgres, tmp_path):
    store = open_store(clean_postgres)
    try:
        check(store, tmp_path, postgres_server.stop, postgres_server.start)
    finally:
        store.close()


@pytest.mark.parametrize("check", [_check_brief, _check_past_the_deadline])
def test_redis_down_in_the_middle_of_a_build(check, redis_server, tmp_path):
    from redis_server import RedisServer

    # A server of its own that keeps its data across the restart, as a real one would.
    persistent = RedisServer(redis_server.binary, persist_dir=str(tmp_path))
    persistent.start()
    store = open_store(persistent.url)
    try:
        check(store, tmp_path, persistent.stop, persistent.start)
    finally:
        store.close()
        persistent.stop()
