"""The stream store under faults, on the real Redis and Kafka (Tansu) brokers:
events of any size round-trip (a 5 MB JUnit report, a 5 MB log chunk),
events appended twice or retried after an unknown outcome are applied once
(no duplicate build), and a hole in the broker's log is named with the
command that rebuilds the views from what remains."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kafka_broker import TansuBroker, tansu_broker  # noqa: F401
from redis_server import RedisServer, redis_server  # noqa: F401

from sauci.core.models import BuildRequest, StepRun, TestCase
from sauci.exceptions import StoreError
from sauci.storage.copy import store_digest

pytest.importorskip("redis")

from sauci.storage.stream import StreamStore

_BIG = 5 * 1024 * 1024


@pytest.fixture(params=["redis", "kafka"])
def open_stream(
    request: pytest.FixtureRequest,
) -> Iterator[Callable[..., StreamStore]]:
    """``open_stream(**kw)``: a StreamStore on one stream of its own (the
    same stream for every call in one test), on Redis or on Kafka."""
    if request.param == "redis":
        url = request.getfixturevalue("redis_server").url
    else:
        url = request.getfixturevalue("tansu_broker").url
    prefix = f"f{uuid.uuid4().hex[:12]}"
    opened: list[StreamStore] = []

    def make(**kw: Any) -> StreamStore:
        store = StreamStore(url, prefix=prefix, **kw)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def _junit(size: int) -> list[TestCase]:
    """A JUnit report of ``size`` bytes of failure text, in 50 cases."""
    unit = "assertion failed: \u2717 "  # 22 bytes in UTF-8
    text = unit * (size // 50 // 22 + 1)
    return [
        TestCase(name=f"test_{n}", status="failed", message="boom", text=text) for n in range(50)
    ]


def test_a_5_mb_junit_report_and_log_chunk_round_trip(
    open_stream: Callable[..., StreamStore],
) -> None:
    writer = open_stream(follow=False)
    build = writer.create_build(BuildRequest(repo="r"))
    writer.save_step(StepRun(build_id=build.id, name="test", position=0))
    cases = _junit(_BIG)
    assert sum(len(c.text.encode()) for c in cases) >= _BIG
    writer.add_test_results(build.id, "test", cases)
    log = os.urandom(_BIG)
    assert _BIG == writer.append_log(build.id, "test", log)
    assert [("test", c) for c in cases] == writer.list_test_results(build.id)
    reader = open_stream(follow=False)  # a view built from the stream alone
    assert [("test", c) for c in cases] == reader.list_test_results(build.id)
    assert log == reader.read_log(build.id, "test")
    assert store_digest(writer) == store_digest(reader)
    assert writer.applied_entries > 10  # it travelled in pieces


def test_events_appended_twice_make_one_build(open_stream: Callable[..., StreamStore]) -> None:
    """A replay of the same events (a broker redelivering, a producer retry)
    never makes a duplicate build, nor doubles a log."""
    writer = open_stream(follow=False)
    build = writer.create_build(BuildRequest(repo="r", sha="a" * 40))
    writer.append_log(build.id, "test", b"once\n")
    writer.append_log(build.id, "test", os.urandom(1_500_000))  # in pieces
    entries = writer._log.read(None, None)
    for _, payload, data in entries:  # the whole stream appended again
        writer._log.append(payload, data)
    reader = open_stream(follow=False)
    assert 2 * len(entries) == reader.applied_entries
    assert [build.id] == [b.id for b in reader.list_builds()]
    assert writer.read_log(build.id, "test") == reader.read_log(build.id, "test")
    assert store_digest(writer) == store_digest(reader)


def test_a_write_retried_after_an_unknown_outcome_is_the_same_event(
    open_stream: Callable[..., StreamStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report's 93 duplicate builds: a create whose event reached the
    broker but whose answer did not, retried by its trigger."""
    store = open_stream(follow=False)
    real = store._log.append
    lost = {"answers": 3}

    def append_but_lose_the_answer(payload: bytes, data: bytes) -> Any:
        position = real(payload, data)
        if lost["answers"] > 0:
            lost["answers"] -= 1
            raise StoreError("broker did not answer in time")
        return position

    monkeypatch.setattr(store._log, "append", append_but_lose_the_answer)
    request = BuildRequest(repo="r", sha="b" * 40, event="push")
    for _ in range(3):
        with pytest.raises(StoreError, match="did not answer"):
            store.create_build(request)
    build = store.create_build(request)
    assert [build.id] == [b.id for b in store.list_builds()]
    other = store.create_build(request)  # a new request after that is a new build
    assert [other.id, build.id] == [b.id for b in store.list_builds()]
    assert [other.id, build.id] == [b.id for b in open_stream(follow=False).list_builds()]


def test_a_hole_at_the_start_of_a_redis_stream_is_named_until_rebuilt(
    redis_server: RedisServer,  # noqa: F811
) -> None:
    import redis

    prefix = f"g{uuid.uuid4().hex[:12]}"
    url = f"stream+{redis_server.url}?prefix={prefix}"
    store = StreamStore(redis_server.url, prefix=prefix, follow=False)
    for n in range(6):
        store.create_build(BuildRequest(repo=f"r{n}"))
    store.close()
    client = redis.Redis.from_url(redis_server.url)
    client.xtrim(f"{prefix}:stream", maxlen=4, approximate=False)  # the broker lost two
    with pytest.raises(StoreError) as caught:
        StreamStore(redis_server.url, prefix=prefix, follow=False)
    message = str(caught.value)
    assert f"stream {prefix}:stream" in message and "lost entries after the start" in message
    assert f"sauci store rebuild --store '{url}'" in message
    rebuilt = subprocess.run(
        [sys.executable, "-m", "sauci", "store", "rebuild", "--store", url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert 0 == rebuilt.returncode, rebuilt.stderr
    assert "builds                4" in rebuilt.stdout and "recorded 1 hole" in rebuilt.stdout
    after = StreamStore(redis_server.url, prefix=prefix, follow=False)  # reads past it now
    assert ["r5", "r4", "r3", "r2"] == [b.repo for b in after.list_builds()]
    after.create_build(BuildRequest(repo="r6"))
    after.close()
    client.close()


def test_a_hole_a_running_view_has_not_read_yet_is_named(
    redis_server: RedisServer,  # noqa: F811
) -> None:
    import redis

    prefix = f"h{uuid.uuid4().hex[:12]}"
    reader = StreamStore(redis_server.url, prefix=prefix, follow=False)
    writer = StreamStore(redis_server.url, prefix=prefix, follow=False)
    first = writer.create_build(BuildRequest(repo="r"))
    reader.catch_up()
    lost = writer.create_build(BuildRequest(repo="lost"))
    writer.create_build(BuildRequest(repo="kept"))
    client = redis.Redis.from_url(redis_server.url)
    (entry,) = [i for i, f in client.xrange(f"{prefix}:stream") if b'"lost"' in f[b"e"]]
    client.xdel(f"{prefix}:stream", entry)
    with pytest.raises(StoreError, match=f"lost entries after entry .* up to {entry.decode()}"):
        reader.catch_up()
    assert [first.id] == [b.id for b in reader.list_builds()]  # it kept what it had
    assert lost.id != first.id
    for s in (reader, writer):
        s.close()
    client.close()


def test_a_kafka_broker_that_lost_its_log_is_named_with_the_way_out(
    tansu_broker: TansuBroker,  # noqa: F811
) -> None:
    prefix = f"k{uuid.uuid4().hex[:12]}"
    store = StreamStore(tansu_broker.url, prefix=prefix, follow=False, socket_timeout=5)
    for n in range(5):
        store.create_build(BuildRequest(repo=f"r{n}"))
    tansu_broker.stop()
    tansu_broker.start()  # in memory: every topic is gone
    fresh = StreamStore(tansu_broker.url, prefix=prefix, follow=False)  # sees what remains
    assert [] == fresh.list_builds()
    fresh.create_build(BuildRequest(repo="after"))
    with pytest.raises(StoreError) as caught:
        store.create_build(BuildRequest(repo="again"))
    message = str(caught.value)
    assert f"stream {prefix}.stream" in message and "lost" in message
    assert "restart every process that uses this store" in message
    assert f"sauci store rebuild --store 'stream+{tansu_broker.url}?prefix={prefix}'" in message
    store.close()
    fresh.close()


def test_rebuild_of_a_store_without_views_exits_2(tmp_path: Any) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sauci",
            "store",
            "rebuild",
            "--store",
            f"sqlite:///{tmp_path}/x.db",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (2, True) == (done.returncode, "not a stream store" in done.stderr), done.stderr


def test_a_redis_that_lost_its_data_is_named_by_a_running_view(
    redis_server: RedisServer,  # noqa: F811
) -> None:
    """redis-server restarted without persistence: the stream is gone, or
    made again by the next write, and the view says so instead of going on."""
    prefix = f"z{uuid.uuid4().hex[:12]}"
    store = StreamStore(redis_server.url, prefix=prefix, follow=False)
    for n in range(3):
        store.create_build(BuildRequest(repo=f"r{n}"))
    redis_server.stop()
    redis_server.start()
    with pytest.raises(StoreError, match=f"stream {prefix}:stream .* lost all 3 entries"):
        store.catch_up()
    store.create_build(BuildRequest(repo="after"))  # makes the stream again
    with pytest.raises(StoreError, match="restart every process that uses this store"):
        store.catch_up()
    fresh = StreamStore(redis_server.url, prefix=prefix, follow=False)  # what remains
    assert ["after"] == [b.repo for b in fresh.list_builds()]
    fresh.close()
    store.close()
