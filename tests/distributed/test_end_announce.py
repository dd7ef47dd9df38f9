"""A build's end announced by a worker wakes the server, through a real Redis:
at once, again after a broker restart, and never an error for the worker when
the broker is down (the server's safety round places the next build then)."""

from __future__ import annotations

import threading
import time

import pytest
from cluster import start_redis

from sauci.core.events import subscribe
from sauci.distributed import BrokerClient, announce_end, make_app


@pytest.fixture(scope="module")
def redis():
    pytest.importorskip("celery")
    server = start_redis(["127.0.0.1"])
    try:
        yield server
    finally:
        server.stop()


def _heard(redis_url: str):
    heard: list[int] = []
    came = threading.Event()

    def on_end(build_id: int) -> None:
        heard.append(build_id)
        came.set()

    client = BrokerClient(redis_url)
    return client, client.watch_ended(on_end), heard, came


def _announce_until_heard(app, came: threading.Event, build_id: int, within: float) -> None:
    """Announce until the watcher hears it (its subscription may still be on its way)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        announce_end(app, build_id, "w1")
        if came.wait(0.2):
            return
    pytest.fail(f"build {build_id}'s end not heard within {within} s")


def test_an_announced_end_reaches_every_listening_server(redis):
    first = _heard(redis.url)
    second = _heard(redis.url)
    worker = make_app(redis.url)
    try:
        _announce_until_heard(worker, first[3], 7, 10)
        # the second watcher subscribes on its own thread: the first hearing
        # says nothing about it, so announce until it hears as well
        _announce_until_heard(worker, second[3], 7, 10)
        assert 7 in first[2] and 7 in second[2]
    finally:
        for client, stop, _, _ in (first, second):
            stop()
            client.close()
        worker.close()


def test_the_watch_outlives_a_broker_restart(redis):
    client, stop, heard, came = _heard(redis.url)
    worker = make_app(redis.url)
    try:
        _announce_until_heard(worker, came, 1, 10)
        redis.stop()
        announce_end(worker, 2, "w1")  # the broker is down: no error for the worker
        redis.start()
        came.clear()
        _announce_until_heard(worker, came, 3, 30)
        assert 3 in heard
    finally:
        stop()
        client.close()
        worker.close()


def test_the_dispatcher_wakes_its_server_when_a_worker_announces(redis, tmp_path):
    from sauci.core.config import Settings
    from sauci.distributed import CeleryRunner
    from sauci.storage import open_store

    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    runner = CeleryRunner(
        store=store,
        settings=Settings(data_dir=tmp_path, broker=redis.url),
        broker=BrokerClient(redis.url),
        name="serve:test",
        sources=lambda repo: None,  # type: ignore[arg-type, return-value]
    )
    woken = threading.Event()

    def on_event(name: str, fields: dict) -> None:
        if name == "runner_slot_free" and fields["runner"] == "serve:test":
            woken.set()

    unsubscribe = subscribe(on_event)
    worker = make_app(redis.url)
    try:
        runner.start(lambda message: None)
        _announce_until_heard(worker, woken, 5, 10)
    finally:
        unsubscribe()
        runner.stop(reason="test", timeout=5)
        worker.close()
        store.close()


def test_an_announcer_returns_at_once_and_publishes_from_its_own_thread(monkeypatch):
    # The slot's thread must not wait for the broker: Celery acknowledges its
    # message, and hands it the next one, only once the task returns.
    from sauci.distributed import Announcer, _ended

    release = threading.Event()
    published: list[tuple[int, str, str]] = []

    def slow_announce(app, build_id, worker):
        release.wait(10)
        published.append((build_id, worker, threading.current_thread().name))

    monkeypatch.setattr(_ended, "announce_end", slow_announce)
    announcer = Announcer(object(), "w1")
    started = time.monotonic()
    announcer(7)
    announcer(8)
    assert time.monotonic() - started < 1.0
    assert [] == published
    release.set()
    announcer.close(timeout=10)
    assert [(7, "w1", "sauci-announce"), (8, "w1", "sauci-announce")] == published


def test_an_announcer_publishes_once_a_slot_took_its_next_build(monkeypatch):
    # Kombu's publish would compete for the interpreter lock with the freed
    # slot's hand-over of the message waiting ahead: it waits for the claim.
    from sauci.distributed import Announcer, _ended

    published: list[int] = []
    done = threading.Event()

    def announce(app, build_id, worker):
        published.append(build_id)
        done.set()

    monkeypatch.setattr(_ended, "announce_end", announce)
    announcer = Announcer(object(), "w1", grace=3600.0)
    announcer(7)
    time.sleep(0.2)  # the announcer's thread has its build id by now
    assert [] == published
    announcer.slot_taken()
    assert done.wait(10)
    assert [7] == published
    announcer.close(timeout=10)


def test_an_announcer_publishes_after_its_grace_when_no_slot_takes_a_build(monkeypatch):
    # A worker that had no build ahead: the server still hears of the end.
    from sauci.distributed import Announcer, _ended

    done = threading.Event()
    monkeypatch.setattr(_ended, "announce_end", lambda app, build_id, worker: done.set())
    announcer = Announcer(object(), "w1", grace=0.01)
    announcer(7)
    assert done.wait(10)
    announcer.close(timeout=10)


def test_an_announcer_publishes_at_once_an_end_no_slot_waits_behind(monkeypatch):
    # A worker with a slot free besides the one that ended has no build sent
    # ahead (sauci.distributed._ahead): the end is not held back for a claim
    # that will not come, and the server places the next build (a heavy one
    # on a drained worker) without waiting out the grace.
    from sauci.distributed import Announcer, _ended

    done = threading.Event()
    monkeypatch.setattr(_ended, "announce_end", lambda app, build_id, worker: done.set())
    announcer = Announcer(object(), "w1", grace=3600.0)
    announcer(7, wait=False)
    assert done.wait(10)
    announcer.close(timeout=10)
