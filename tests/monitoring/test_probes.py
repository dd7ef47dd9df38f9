"""The metrics port answers the orchestrator's probes: /healthz, /readyz (200 or
503 naming the failed check), and /metrics for anything else."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from sauci.monitoring import install
from sauci.monitoring.health import Readiness, check_heartbeat
from sauci.storage.memory import MemoryStore

pytest.importorskip("prometheus_client")


def get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture
def state():
    return {"checks": {"store": None, "broker": None}}


@pytest.fixture
def port(state, tmp_path):
    handle = install(
        store=MemoryStore(),
        component="worker",
        data_dir=tmp_path,
        metrics_port=0,
        analytics=False,
        ready=lambda: Readiness(checks=dict(state["checks"])),
    )
    yield handle.metrics_port
    handle.close()


def test_healthz_readyz_and_metrics_on_one_port(port, state):
    assert (200, {"alive": True}) == (lambda s, b: (s, json.loads(b)))(*get(port, "/healthz"))
    status, body = get(port, "/readyz")
    assert 200 == status
    assert {"ready": True, "checks": {"store": "ok", "broker": "ok"}} == json.loads(body)
    status, body = get(port, "/metrics")
    assert 200 == status and b"sauci_store_up" in body
    state["checks"]["broker"] = "broker unreachable (ConnectionRefusedError)"
    status, body = get(port, "/readyz")
    assert 503 == status
    assert "broker unreachable" in json.loads(body)["checks"]["broker"]
    assert 200 == get(port, "/healthz")[0]  # not ready is still alive


def test_a_readiness_check_that_raises_is_503_not_a_dead_port(tmp_path):
    def broken() -> Readiness:
        raise RuntimeError("bug")

    handle = install(
        store=MemoryStore(),
        component="worker",
        data_dir=tmp_path,
        metrics_port=0,
        analytics=False,
        ready=broken,
    )
    try:
        status, body = get(handle.metrics_port, "/readyz")
        assert 503 == status and {"ready": False, "error": "RuntimeError"} == json.loads(body)
        assert 200 == get(handle.metrics_port, "/healthz")[0]
    finally:
        handle.close()


def test_without_checks_readyz_says_so(tmp_path):
    handle = install(
        store=MemoryStore(), component="serve", data_dir=tmp_path, metrics_port=0, analytics=False
    )
    try:
        assert 404 == get(handle.metrics_port, "/readyz")[0]
    finally:
        handle.close()


def test_a_worker_is_ready_only_while_its_heartbeat_is_fresh():
    now = time.time()
    assert "no heartbeat" in (check_heartbeat(None, interval=5, now=now) or "")
    assert None is check_heartbeat(now - 10, interval=5, now=now)
    assert "16 s ago" in (check_heartbeat(now - 16, interval=5, now=now) or "")
