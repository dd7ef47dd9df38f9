"""Metrics: counters and histograms after real builds, scraped over HTTP and read by value."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request

import pytest
from monitoring_helpers import run_builds, samples, value

from sauci.core.events import emit
from sauci.core.models import BuildRequest, Status, Worker
from sauci.monitoring import install
from sauci.monitoring.metrics import OTHER, Metrics, backend_name
from sauci.storage.memory import MemoryStore

pytest.importorskip("prometheus_client")


@pytest.fixture
def monitored(tmp_path):
    """A MemoryStore behind install(), metrics served on a free port, analytics off."""
    store = MemoryStore()
    handle = install(
        store=store,
        component="serve",
        data_dir=tmp_path / "data",
        metrics_port=0,
        analytics=False,
    )
    yield handle
    handle.close()


def scrape(handle) -> str:
    url = f"http://127.0.0.1:{handle.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        assert 200 == response.status
        return response.read().decode()


def test_a_run_of_builds_is_counted_by_status_and_repository(monitored, tmp_path):
    outcomes = run_builds(monitored.store, tmp_path)
    assert [Status.PASSED, Status.PASSED, Status.PASSED, Status.FAILED] == [
        o.build.status for o in outcomes
    ]
    text = scrape(monitored)
    assert 3 == value(text, "sauci_builds_total", repo="/srv/app.git", status="passed")
    assert 1 == value(text, "sauci_builds_total", repo="/srv/app.git", status="failed")
    assert None is value(text, "sauci_builds_total", repo="/srv/app.git", status="errored")
    assert 4 == value(text, "sauci_build_duration_seconds_count")


def test_step_histogram_counts_every_step_that_ran(monitored, tmp_path):
    run_builds(monitored.store, tmp_path)
    text = scrape(monitored)
    # one + two + (slow, hello) + bad
    assert 6 == value(text, "sauci_step_duration_seconds_count")
    # The timed-out step ran at least its 0.5 s timeout.
    assert value(text, "sauci_step_duration_seconds_sum") >= 0.5
    assert 0 == value(text, "sauci_running_steps")
    assert 0 == value(text, "sauci_running_builds")


def test_steps_ended_by_sauci_are_counted_by_reason(monitored, tmp_path):
    run_builds(monitored.store, tmp_path)
    text = scrape(monitored)
    assert 1 == value(text, "sauci_steps_ended_total", reason="timeout")
    assert 0 == value(text, "sauci_steps_ended_total", reason="out_of_memory")
    assert 0 == value(text, "sauci_steps_ended_total", reason="process_limit")
    assert 0 == value(text, "sauci_steps_ended_total", reason="log_limit")


def test_log_bytes_are_the_sum_of_the_steps_logs(monitored, tmp_path):
    outcomes = run_builds(monitored.store, tmp_path)
    expected = sum(s.log_bytes for o in outcomes for s in o.steps)
    assert expected > 0
    assert expected == value(scrape(monitored), "sauci_log_bytes_total")


def test_store_latency_is_measured_by_backend_and_operation(monitored, tmp_path):
    run_builds(monitored.store, tmp_path)
    text = scrape(monitored)
    assert 4 == value(
        text, "sauci_store_operation_seconds_count", backend="memory", operation="create_build"
    )
    assert (
        value(text, "sauci_store_operation_seconds_count", backend="memory", operation="save_step")
        >= 6
    )


def test_queue_depth_and_wait_come_from_the_store(monitored):
    from sauci.core.scheduler import Scheduler

    scheduler = Scheduler(monitored.store)
    for sha in ("a", "b"):
        scheduler.enqueue(BuildRequest(repo="/srv/app.git", sha=sha * 40, event="push"))
    text = scrape(monitored)
    assert 2 == value(text, "sauci_queue_depth")
    assert value(text, "sauci_queue_oldest_age_seconds") >= 0
    assert 1 == value(text, "sauci_store_up")
    # A claimed build's wait is observed when it starts.
    claimed = monitored.store.claim_build("t")
    emit("build_started", build=claimed)
    text = scrape(monitored)
    assert 1 == value(text, "sauci_queue_depth")
    assert 1 == value(text, "sauci_queue_wait_seconds_count")
    assert 1 == value(text, "sauci_running_builds")


def test_a_failing_store_leaves_the_scrape_working(tmp_path):
    class Broken(MemoryStore):
        def build_stats(self, **kw):
            raise RuntimeError("down")

    found = Metrics(store=Broken())
    text = found.render()[0].decode()
    assert 0 == value(text, "sauci_store_up")
    assert None is value(text, "sauci_queue_depth")


def test_worker_heartbeats_are_counted_and_timestamped(monitored):
    worker = Worker(name="w1", host="h", heartbeat_at=1_700_000_000.0)
    emit("worker_heartbeat", worker=worker)
    emit("worker_heartbeat", worker=worker)
    text = scrape(monitored)
    assert 2 == value(text, "sauci_worker_heartbeats_total", worker="w1")
    assert 1_700_000_000.0 == value(
        text, "sauci_worker_last_heartbeat_timestamp_seconds", worker="w1"
    )


def test_workers_by_state_are_read_from_the_store(monitored):
    monitored.store.save_worker(Worker(name="a", state="online"))
    monitored.store.save_worker(Worker(name="b", state="offline"))
    text = scrape(monitored)
    assert 1 == value(text, "sauci_workers", state="online")
    assert 1 == value(text, "sauci_workers", state="offline")


def test_each_workers_heartbeat_age_is_what_the_server_reads_from_the_store(monitored):
    """The dead-worker alert reads this: it is scraped from the server, so it
    keeps growing after the worker (and its own /metrics) is gone."""
    now = time.time()
    monitored.store.save_worker(Worker(name="dead", state="online", heartbeat_at=now - 600))
    monitored.store.save_worker(Worker(name="live", state="online", heartbeat_at=now))
    monitored.store.save_worker(Worker(name="gone", state="offline", heartbeat_at=now - 600))
    text = scrape(monitored)
    assert value(text, "sauci_worker_heartbeat_age_seconds", worker="dead") >= 600
    assert value(text, "sauci_worker_heartbeat_age_seconds", worker="live") < 60
    assert None is value(text, "sauci_worker_heartbeat_age_seconds", worker="gone")


def test_repository_labels_are_capped():
    found = Metrics(max_labels=2)
    store = MemoryStore()
    for repo in ("/a", "/b", "/c", "/d"):
        build = store.create_build(BuildRequest(repo=repo, event="push"))
        build = store.update_build(
            build.id, status=Status.PASSED, started_at=time.time(), finished_at=time.time()
        )
        found.on_event("build_finished", {"build": build})
    got = samples(found.render()[0].decode())
    repos = {dict(labels)["repo"] for (name, labels) in got if name == "sauci_builds_total"}
    assert {"/a", "/b", OTHER} == repos
    assert 2 == got[("sauci_builds_total", (("repo", OTHER), ("status", "passed")))]


def test_a_build_that_never_started_does_not_make_running_negative():
    found = Metrics()
    store = MemoryStore()
    build = store.create_build(BuildRequest(repo="/a", event="push"))
    build = store.update_build(build.id, status=Status.ERRORED, finished_at=time.time())
    found.on_event("build_finished", {"build": build})
    assert 0 == value(found.render()[0].decode(), "sauci_running_builds")


def test_each_installation_has_its_own_registry(tmp_path):
    first = Metrics()
    second = Metrics()
    build = MemoryStore().create_build(BuildRequest(repo="/a", event="push"))
    first.on_event("build_finished", {"build": build})
    assert 1 == value(first.render()[0].decode(), "sauci_builds_total", repo="/a", status="queued")
    assert None is value(
        second.render()[0].decode(), "sauci_builds_total", repo="/a", status="queued"
    )


def test_close_unsubscribes_from_the_hub(tmp_path):
    handle = install(store=MemoryStore(), component="serve", data_dir=tmp_path, analytics=False)
    handle.close()
    emit("worker_heartbeat", worker=Worker(name="late"))
    text = handle.metrics.render()[0].decode()
    assert None is value(text, "sauci_worker_heartbeats_total", worker="late")


def test_backend_names_are_short_and_bounded(tmp_path):
    from sauci.storage.sqlite import SQLiteStore

    assert "memory" == backend_name(MemoryStore())
    store = SQLiteStore(tmp_path / "s.db")
    try:
        assert "sqlite" == backend_name(store)
    finally:
        store.close()


def test_sqlite_store_latency_through_the_proxy(tmp_path):
    from sauci.storage.sqlite import SQLiteStore

    handle = install(
        store=SQLiteStore(tmp_path / "s.db"), component="serve", data_dir=tmp_path, analytics=False
    )
    try:
        run_builds(handle.store, tmp_path, names=("one",))
        text = handle.metrics.render()[0].decode()
        assert 1 == value(
            text, "sauci_store_operation_seconds_count", backend="sqlite", operation="create_build"
        )
        assert 1 == value(text, "sauci_builds_total", repo="/srv/app.git", status="passed")
    finally:
        handle.close()
        handle.store.close()


def test_sauci_run_installs_without_heavy_imports(tmp_path):
    """`sauci run` wiring imports neither prometheus_client, mixpanel nor django."""
    code = (
        "import sys\n"
        "from sauci.monitoring import install\n"
        "from sauci.storage.memory import MemoryStore\n"
        f"h = install(store=MemoryStore(), component='run', command='run', data_dir={str(tmp_path)!r})\n"
        "h.close()\n"
        "print(sorted(m for m in ('prometheus_client', 'mixpanel', 'django', 'requests')"
        " if m in sys.modules))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SAUCI_MIXPANEL_TOKEN": ""}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout
    assert "[]" == out.strip()
