"""The stream store on Kafka, its broker killed and restarted in the middle
of a build with its log kept (Tansu on its S3 storage engine, as a Kafka
broker restarted with its disk): a brief outage, nothing else. The build
waits and passes with every byte of every log, one build, nothing pending,
and a view built afresh from the broker's log (another process, a restarted
server) sees the same one build: nothing lost, nothing applied twice."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

from kafka_broker import TansuBroker, tansu_s3_broker  # noqa: F401

from sauci import BuildRequest, Pipeline, Status, Step
from sauci.app import LocalRunner
from sauci.core.config import Settings
from sauci.core.undelivered import pending_notes
from sauci.storage.stream import StreamStore

PIPELINE = Pipeline(
    steps=[
        Step(name="first", run="echo before"),
        Step(name="slow", run="for i in $(seq 1 12); do echo line $i; sleep 0.2; done"),
        Step(name="after", run="echo after"),
    ]
)
LOGS = {
    "first": b"before\n",
    "slow": b"".join(b"line %d\n" % i for i in range(1, 13)),
    "after": b"after\n",
}


def test_a_kafka_broker_restarted_with_its_log_costs_a_pause_and_nothing_else(
    tansu_s3_broker: TansuBroker,  # noqa: F811
    tmp_path: Path,
    sound,
) -> None:
    prefix = f"k{uuid.uuid4().hex[:12]}"
    store = StreamStore(tansu_s3_broker.url, prefix=prefix, socket_timeout=5)
    settings = Settings(data_dir=tmp_path / "data", grace=1.0)
    runner = LocalRunner(store=store, settings=settings, secrets={}, store_retry=60.0)
    ws = tmp_path / "ws"
    ws.mkdir()

    def restart() -> None:
        time.sleep(0.8)
        tansu_s3_broker.stop()  # SIGKILL, mid-step
        time.sleep(0.5)
        tansu_s3_broker.start()

    thread = threading.Thread(target=restart)
    thread.start()
    try:
        outcome = runner.run_pipeline(PIPELINE, ws, BuildRequest(repo="/repo", event="push"))
    finally:
        thread.join()
    assert outcome.build.status is Status.PASSED, outcome.build.reason
    assert pending_notes(settings.data_dir) == []
    builds = store.list_builds(limit=100)
    assert [(b.uuid, b.status) for b in builds] == [(outcome.build.uuid, Status.PASSED)]
    steps = store.list_steps(builds[0].id)
    assert {s.name: store.read_log(builds[0].id, s.name) for s in steps} == LOGS
    sound(store)
    store.close()

    # A view built afresh from the kept log (another process, a restarted
    # server) sees the same one build. Tansu's S3 engine answers ListOffsets
    # behind what it acknowledged: the view reads on to the end that Fetch
    # reports instead of stopping short there.
    fresh = StreamStore(tansu_s3_broker.url, prefix=prefix, socket_timeout=5)
    try:
        again = fresh.list_builds(limit=100)
        assert [(b.uuid, b.status) for b in again] == [(outcome.build.uuid, Status.PASSED)]
        steps = fresh.list_steps(again[0].id)
        assert {s.name: fresh.read_log(again[0].id, s.name) for s in steps} == LOGS
        sound(fresh)
    finally:
        fresh.close()
