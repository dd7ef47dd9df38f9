"""A tee (SQLite primary, Redis secondary) whose secondary is stopped in the
middle of a build: the primary decides, the build passes whole, and the
secondary catches up with the same build, status and logs. A backlog still
waiting when the tee closes is dropped; ``copy_store(..., merge=True)``
(``sauci store copy --merge``) completes the secondary, and a second merge
adds nothing."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sauci import BuildRequest, Pipeline, Status, Step
from sauci.app import LocalRunner
from sauci.core.config import Settings
from sauci.storage import open_store
from sauci.storage.copy import copy_store

PIPELINE = Pipeline(
    steps=[
        Step(name="first", run="echo before"),
        Step(name="slow", run="for i in $(seq 1 8); do echo line $i; sleep 0.2; done"),
        Step(name="after", run="echo after"),
    ]
)


def _seen(store) -> dict:
    return {
        b.uuid: (
            b.status,
            b.reason,
            {s.name: store.read_log(b.id, s.name) for s in store.list_steps(b.id)},
        )
        for b in store.list_builds(limit=100)
    }


def _build_through_outage(tee, redis, tmp_path: Path, *, back: bool):
    settings = Settings(data_dir=tmp_path / "data", grace=1.0)
    runner = LocalRunner(store=tee, settings=settings, secrets={}, store_retry=30.0)
    ws = tmp_path / "ws"
    ws.mkdir()

    def outage() -> None:
        time.sleep(0.5)
        redis.stop()
        if back:
            time.sleep(0.8)
            redis.start()

    thread = threading.Thread(target=outage)
    thread.start()
    try:
        outcome = runner.run_pipeline(PIPELINE, ws, BuildRequest(repo="/repo", event="push"))
    finally:
        thread.join()
    return outcome.build


def test_a_secondary_down_mid_build_catches_up_whole(persistent_redis, tmp_path, sound):
    tee = open_store(f"tee:sqlite:///{tmp_path / 'ci.db'};{persistent_redis.url}")
    try:
        build = _build_through_outage(tee, persistent_redis, tmp_path, back=True)
        assert build.status is Status.PASSED, build.reason
        deadline = time.monotonic() + 30
        while not tee.catch_up():
            assert time.monotonic() < deadline, f"backlog {tee.backlog()}"
            time.sleep(0.2)
        want = _seen(tee.primary)
        assert list(want) == [build.uuid]
        assert _seen(tee.secondaries[0]) == want
        sound(tee)
    finally:
        tee.close()


def test_a_backlog_dropped_at_close_is_completed_by_a_merge(persistent_redis, tmp_path):
    tee = open_store(f"tee:sqlite:///{tmp_path / 'ci.db'};{persistent_redis.url}")
    try:
        build = _build_through_outage(tee, persistent_redis, tmp_path, back=False)
        assert build.status is Status.PASSED, build.reason
        assert tee.backlog() != [0]
    finally:
        tee.close()  # the secondary is still down: its backlog is dropped
    persistent_redis.start()
    primary = open_store(f"sqlite:///{tmp_path / 'ci.db'}")
    secondary = open_store(persistent_redis.url)
    try:
        assert _seen(secondary) != _seen(primary)
        copy_store(primary, secondary, merge=True)
        assert _seen(secondary) == _seen(primary)
        copy_store(primary, secondary, merge=True)  # copy twice = copy once
        assert len(secondary.list_builds(limit=100)) == 1
        assert _seen(secondary) == _seen(primary)
    finally:
        primary.close()
        secondary.close()
