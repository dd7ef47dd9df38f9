"""The stream store on Kafka, its broker restarted in the middle of a build.

The test broker (Tansu, in memory) loses its whole log when it restarts, as a
broker that lost its disk would: the build must not end "passed" with its
data gone. It ends "errored", its log stays whole on disk, and the error
names the lost stream and the command that rebuilds the views."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

from kafka_broker import TansuBroker, tansu_broker  # noqa: F401

from sauci import BuildRequest, Pipeline, Status, Step
from sauci.app import LocalRunner
from sauci.core.config import Settings
from sauci.storage.stream import StreamStore

PIPELINE = Pipeline(
    steps=[
        Step(name="first", run="echo before"),
        Step(name="slow", run="for i in $(seq 1 12); do echo line $i; sleep 0.2; done"),
        Step(name="after", run="echo after"),
    ]
)
LINES = b"".join(b"line %d\n" % i for i in range(1, 13))


def test_a_kafka_broker_restarted_mid_build_never_gives_a_green_build(
    tansu_broker: TansuBroker,  # noqa: F811
    tmp_path: Path,
) -> None:
    prefix = f"c{uuid.uuid4().hex[:12]}"
    store = StreamStore(tansu_broker.url, prefix=prefix, socket_timeout=5)
    settings = Settings(data_dir=tmp_path / "data", grace=1.0)
    runner = LocalRunner(store=store, settings=settings, secrets={}, store_retry=5.0)
    ws = tmp_path / "ws"
    ws.mkdir()

    def restart() -> None:
        time.sleep(0.8)
        tansu_broker.stop()
        time.sleep(0.5)
        tansu_broker.start()

    thread = threading.Thread(target=restart)
    thread.start()
    try:
        outcome = runner.run_pipeline(PIPELINE, ws, BuildRequest(repo="/repo", event="push"))
    finally:
        thread.join()
        store.close()
    build = outcome.build
    assert build.status is Status.ERRORED, build
    assert build.reason is not None and f"stream {prefix}.stream" in build.reason
    assert "lost" in build.reason and "sauci store rebuild --store" in build.reason
    logs = list((settings.data_dir / "logs").rglob("slow.log"))
    assert [LINES] == [p.read_bytes() for p in logs]
