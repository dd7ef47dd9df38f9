"""Readiness: the store answering, the server's heartbeat, and a queue that moves."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time

import pytest
from redis_server import redis_server, redis_url  # noqa: F401

from sauci.core.models import BuildRequest
from sauci.monitoring.health import (
    check_broker,
    check_queue,
    check_scheduler,
    check_store,
    readiness,
)
from sauci.storage.memory import MemoryStore


def write_status(data_dir, heartbeat: float) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "server.json").write_text(json.dumps({"pid": 1, "heartbeat": heartbeat}))


def test_a_fresh_heartbeat_is_ready(tmp_path):
    write_status(tmp_path, time.time())
    assert None is check_scheduler(tmp_path)


def test_a_stale_heartbeat_is_not_ready_and_says_how_old(tmp_path):
    write_status(tmp_path, 1000.0)
    reason = check_scheduler(tmp_path, stale_after=30, now=1120.0)
    assert "last heartbeat is 120 s old (limit 30 s)" in reason


def test_no_server_json_is_not_ready(tmp_path):
    assert "no SauCI server heartbeat" in check_scheduler(tmp_path)


def test_a_store_that_raises_is_unreachable():
    class Down(MemoryStore):
        def list_builds(self, **kw):
            raise ConnectionError("refused")

    assert "store unreachable (ConnectionError)" == check_store(Down())


def test_a_store_that_hangs_is_reported_after_the_timeout():
    release = threading.Event()

    class Hung(MemoryStore):
        def list_builds(self, **kw):
            release.wait(30)
            return []

    try:
        assert "store did not answer within 0.2 s" == check_store(Hung(), timeout=0.2)
    finally:
        release.set()


def test_a_queue_without_progress_is_stuck():
    clock = [1000.0]
    store = MemoryStore(clock=lambda: clock[0])
    store.create_build(BuildRequest(repo="/a", event="push"))
    assert None is check_queue(store, stuck_after=600, now=1500.0)
    reason = check_queue(store, stuck_after=600, now=5000.0)
    assert "1 build(s) queued, the oldest for 67 min" in reason
    assert "no build started or ended in the last 10 min" in reason


def test_a_queue_behind_a_running_build_is_busy_not_stuck():
    clock = [1000.0]
    store = MemoryStore(clock=lambda: clock[0])
    store.create_build(BuildRequest(repo="/a", sha="a" * 40, event="push"))
    store.create_build(BuildRequest(repo="/a", sha="b" * 40, event="push"))
    clock[0] = 4900.0
    store.claim_build("w")  # started (and heartbeating) recently
    assert None is check_queue(store, stuck_after=600, now=5000.0)


def test_readiness_collects_every_reason(tmp_path):
    write_status(tmp_path, time.time() - 3600)
    result = readiness(MemoryStore(), tmp_path)
    assert not result.ready
    assert ["scheduler"] == [name for name, reason in result.checks.items() if reason]
    assert {"store": "ok", "queue": "ok"}.items() <= result.as_dict()["checks"].items()


def test_readiness_follows_a_real_redis_store_down_and_up(redis_server, redis_url, tmp_path):  # noqa: F811
    from sauci.storage import open_store

    write_status(tmp_path, time.time())
    store = open_store(redis_url)
    try:
        store.create_build(BuildRequest(repo="/a", event="push"))
        assert readiness(store, tmp_path).ready
        redis_server.stop()
        try:
            down = readiness(store, tmp_path, store_timeout=10)
            assert not down.ready
            assert down.checks["store"].startswith("store unreachable")
            assert "not checked: the store is unreachable" == down.checks["queue"]
        finally:
            redis_server.start()
        write_status(tmp_path, time.time())
        again = readiness(store, tmp_path, store_timeout=10)
        assert again.ready, again.reasons
    finally:
        store.close()


# -- the broker -----------------------------------------------------------------------------


def test_the_broker_is_checked_only_when_one_is_given(tmp_path, redis_url):  # noqa: F811
    pytest.importorskip("celery")
    write_status(tmp_path, time.time())
    assert "broker" not in readiness(MemoryStore(), tmp_path).checks
    assert {"broker": None}.items() <= readiness(
        MemoryStore(), tmp_path, broker=redis_url
    ).checks.items()
    only = readiness(MemoryStore(), tmp_path, checks=("store",), broker=redis_url)
    assert {"store": None} == only.checks


def test_readiness_follows_a_real_broker_down_and_up(redis_server, redis_url, tmp_path):  # noqa: F811
    pytest.importorskip("celery")
    write_status(tmp_path, time.time())
    assert None is check_broker(redis_url, timeout=5)
    redis_server.stop()
    try:
        down = readiness(MemoryStore(), tmp_path, broker=redis_url, broker_timeout=5)
        assert not down.ready
        assert ["broker: broker unreachable (OperationalError)"] == down.reasons
    finally:
        redis_server.start()
    assert None is check_broker(redis_url, timeout=5)


def test_a_broker_that_accepts_but_never_answers_is_reported_after_the_timeout():
    pytest.importorskip("celery")
    with socket.socket() as silent:  # the kernel completes the handshake; nobody answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(5)
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        assert "broker did not answer within 0.3 s" == check_broker(url, timeout=0.3)


def test_a_probe_that_times_out_by_itself_first_is_reported_as_not_answering(monkeypatch):
    """On a busy machine the probe's socket timeout can fire before the wait
    for it ends: that is still a broker that did not answer."""
    pytest.importorskip("celery")
    from kombu.exceptions import OperationalError

    import sauci.distributed
    from sauci.exceptions import SauCIError

    def times_out(app, *, timeout):
        try:
            try:
                raise TimeoutError("Timeout reading from socket")
            except TimeoutError as exc:
                raise OperationalError(str(exc)) from exc
        except OperationalError as exc:
            raise SauCIError("cannot reach the broker") from exc

    monkeypatch.setattr(sauci.distributed, "check_connection", times_out)
    assert "broker did not answer within 0.3 s" == check_broker(
        "redis://127.0.0.1:1/0", timeout=0.3
    )


def test_a_malformed_broker_url_is_said_without_echoing_it():
    pytest.importorskip("celery")
    assert "the broker URL is malformed" == check_broker("rdis://:secret@broker")


def test_a_broker_without_celery_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "celery", None)  # import celery fails
    reason = check_broker("redis://127.0.0.1:6379/0")
    assert "celery is not installed (pip install 'sauci[celery]')" == reason
