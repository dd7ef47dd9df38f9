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
from sauci.core.models import StepRun
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


def _caught_up(tee) -> None:
    """Replay the tee's backlogs until none waits (a restarted Redis may
    answer LOADING for a moment)."""
    deadline = time.monotonic() + 30
    while not tee.catch_up():
        assert time.monotonic() < deadline, f"backlog {tee.backlog()}"
        time.sleep(0.1)


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
        _caught_up(tee)
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


def test_writes_of_another_process_reach_the_secondarys_build_of_the_same_uuid(
    persistent_redis, tmp_path
):
    """Two processes' tees number the secondary's builds differently (one
    create waited in a backlog while the other process's went first); a
    third (a restarted server ending a build it did not create) must write
    to the secondary's build of the same UUID, not to its id there."""
    url = f"tee:sqlite:///{tmp_path / 'ci.db'};{persistent_redis.url}"
    first, second = open_store(url), open_store(url)
    try:
        persistent_redis.stop()
        mine = first.create_build(BuildRequest(repo="/repo", event="push"))  # waits in a backlog
        persistent_redis.start()
        other = second.create_build(BuildRequest(repo="/repo", event="push"))
        _caught_up(first)
        _caught_up(second)
    finally:
        first.close()
        second.close()
    restarted = open_store(url)
    try:
        restarted.update_build(mine.id, status=Status.ERRORED, reason="runner lost")
        restarted.append_log(mine.id, "talk", b"mine\n")
        _caught_up(restarted)
        secondary = restarted.secondaries[0]
        by_uuid = {b.uuid: b for b in secondary.list_builds(limit=10)}
        assert by_uuid[mine.uuid].id != mine.id  # numbered apart: the case at hand
        assert (by_uuid[mine.uuid].status, by_uuid[mine.uuid].reason) == (
            Status.ERRORED,
            "runner lost",
        )
        assert secondary.read_log(by_uuid[mine.uuid].id, "talk") == b"mine\n"
        assert by_uuid[other.uuid].status is Status.QUEUED
        assert secondary.read_log(by_uuid[other.uuid].id, "talk") == b""
        assert _seen(secondary) == _seen(restarted.primary)
    finally:
        restarted.close()


def test_log_bytes_a_killed_process_owed_the_secondary_reach_it_at_the_builds_end(
    persistent_redis, tmp_path
):
    """A process appended a log chunk to the primary while the secondary was
    away, and ended (``kill -9``) with the chunk in its backlog: whoever
    ends the build (the next ``sauci run``, a restarted server) completes
    the secondary's log from the primary."""
    url = f"tee:sqlite:///{tmp_path / 'ci.db'};{persistent_redis.url}"
    killed = open_store(url)
    try:
        build = killed.create_build(BuildRequest(repo="/repo", event="push"))
        killed.save_step(StepRun(build_id=build.id, name="talk", status=Status.RUNNING))
        killed.append_log(build.id, "talk", b"one\n")
        persistent_redis.stop()
        killed.append_log(build.id, "talk", b"two\n")  # the primary only: the rest waits
    finally:
        killed.close()  # its backlog goes with it
    persistent_redis.start()
    after = open_store(url)
    try:
        after.save_step(StepRun(build_id=build.id, name="talk", status=Status.ERRORED))
        after.update_build(build.id, status=Status.ERRORED, reason="runner lost")
        _caught_up(after)
        assert after.read_log(build.id, "talk") == b"one\ntwo\n"
        assert _seen(after.secondaries[0]) == _seen(after.primary)
    finally:
        after.close()
