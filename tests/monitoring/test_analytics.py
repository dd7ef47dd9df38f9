"""Usage analytics: hashed ids, batched and well-formed Mixpanel requests, bounded
retries and queues, and builds that never wait for any of it."""

from __future__ import annotations

import logging
import os
import socket
import stat
import time

import pytest
from fake_mixpanel import FakeMixpanel
from monitoring_helpers import run_builds

from sauci.core.models import Status
from sauci.monitoring import install
from sauci.monitoring.analytics import (
    Analytics,
    AnalyticsEvent,
    BatchSender,
    LocalSink,
    MixpanelSink,
    load_salt,
    read_events,
)
from sauci.storage.memory import MemoryStore
from sauci.testing.logs import capture_logs

TOKEN = "test-token-123"


@pytest.fixture
def fake():
    server = FakeMixpanel()
    yield server
    server.close()


@pytest.fixture
def warnings_logged(monkeypatch):
    """SauCI's log events captured at warning level (the default)."""
    with capture_logs(logging.WARNING) as logs:
        yield logs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition did not come true in time"
        time.sleep(0.01)


def mixpanel_env(host: str) -> dict[str, str]:
    return {"SAUCI_MIXPANEL_TOKEN": TOKEN, "SAUCI_MIXPANEL_HOST": host}


# -- hashing -----------------------------------------------------------------------------


def test_the_salt_is_made_once_private_and_kept(tmp_path):
    first = load_salt(tmp_path)
    assert 32 == len(first)
    assert first == load_salt(tmp_path)
    mode = stat.S_IMODE(os.stat(tmp_path / "analytics_salt").st_mode)
    assert 0o600 == mode


def test_ids_are_salted_hashes_stable_per_installation(tmp_path):
    one = Analytics([], salt=load_salt(tmp_path / "one"))
    two = Analytics([], salt=load_salt(tmp_path / "two"))
    assert one.user_id("ann") == one.user_id("ann")
    assert one.user_id("ann") != two.user_id("ann")
    assert "ann" not in one.user_id("ann")
    assert one.repo_id("/srv/app.git").startswith("r_")


# -- Mixpanel ----------------------------------------------------------------------------


def test_build_events_reach_mixpanel_batched_and_well_formed(fake, tmp_path):
    store = MemoryStore()
    handle = install(
        store=store,
        component="serve",
        data_dir=tmp_path / "data",
        metrics=False,
        environ=mixpanel_env(fake.url),
    )
    fake.hold.clear()  # the first request waits: whatever comes meanwhile is batched
    try:
        outcomes = run_builds(store, tmp_path, names=("one", "fail"))
        fake.wait_for(lambda f: f.waiting >= 1)
        fake.hold.set()
    finally:
        handle.close(timeout=10)
    events = fake.events()
    names = [e["event"] for e in events]
    assert ["build_started", "build_finished", "build_started", "build_finished"] == names
    # Four events in fewer requests, one of them carrying several.
    from sauci.monitoring.analytics.mixpanel import decode_batch

    assert len(fake.requests) < len(events)
    assert max(len(decode_batch(body)) for _, body in fake.requests) > 1
    assert {"/track"} == {path.split("?")[0] for path, _ in fake.requests}
    finished = [e["properties"] for e in events if e["event"] == "build_finished"]
    assert ["passed", "failed"] == [p["status"] for p in finished]
    for props in (e["properties"] for e in events):
        assert TOKEN == props["token"]
        assert props["distinct_id"] == handle.analytics.installation
        assert props["repo"] == handle.analytics.repo_id("/srv/app.git")
        assert "$insert_id" in props and "time" in props
    assert outcomes[0].build.duration is not None
    assert all(isinstance(p["duration_seconds"], float) for p in finished)
    # No personal data and no content: repository path, author, commit message, log text.
    raw = b"".join(body for _, body in fake.requests).decode()
    from urllib.parse import unquote_plus

    raw = unquote_plus(raw)
    for secret in ("/srv/app.git", "SECRET-COMMIT-MESSAGE", "Ann Author", "echo no", "refs/heads"):
        assert secret not in raw


def test_a_slow_mixpanel_never_delays_a_build(fake, tmp_path):
    fake.hold.clear()  # every request waits until the test lets it go
    store = MemoryStore()
    sink = MixpanelSink(TOKEN, host=fake.url, flush_interval=0.0)
    analytics = Analytics([sink], salt=b"s" * 32)
    from sauci.core.events import subscribe

    unsubscribe = subscribe(analytics.on_event)
    try:
        run_builds(store, tmp_path, names=("one",))
        fake.wait_for(lambda f: f.waiting >= 1)
        # The build is over and recorded while its event is still in flight.
        (build,) = store.list_builds()
        assert Status.PASSED is build.status
        assert 0 == sink.sender.stats["sent"]
        run_builds(store, tmp_path, names=("two",))  # and the next build runs regardless
        assert 2 == len(store.list_builds())
    finally:
        unsubscribe()
        fake.hold.set()
        analytics.close(timeout=10)
    assert 4 == sink.sender.stats["sent"]


def test_with_mixpanel_down_builds_pass_and_events_are_dropped_after_the_bound(
    tmp_path, warnings_logged
):
    host = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    store = MemoryStore()
    sink = MixpanelSink(TOKEN, host=host, flush_interval=0.0, retries=2, backoff=0.01)
    analytics = Analytics([sink], salt=b"s" * 32)
    from sauci.core.events import subscribe

    unsubscribe = subscribe(analytics.on_event)
    try:
        outcomes = run_builds(store, tmp_path, names=("one", "two"))
        wait_until(lambda: sink.sender.stats["dropped"] == 4)  # retried while running
    finally:
        unsubscribe()
        analytics.close(timeout=10)
    assert [Status.PASSED, Status.PASSED] == [o.build.status for o in outcomes]
    stats = sink.sender.stats
    assert 4 == stats["dropped"]
    assert 0 == stats["sent"]
    # Each batch was tried 1 + retries times, then dropped with one log line.
    drops = [e for e in warnings_logged if e["event"] == "analytics_events_dropped"]
    assert drops and all(e["sink"] == "mixpanel" and e["attempts"] == 3 for e in drops)
    assert 4 == sum(e["events"] for e in drops)
    assert 3 * len(drops) == stats["failures"]


def test_server_errors_are_retried_then_succeed(fake, tmp_path):
    fake.fail_with = 503
    sink = MixpanelSink(TOKEN, host=fake.url, flush_interval=0.0, retries=5, backoff=0.01)
    sink.send(AnalyticsEvent(name="x", at=time.time(), distinct_id="i_1"))
    fake.wait_for(lambda f: len(f.requests) >= 2)
    fake.fail_with = None
    wait_until(lambda: sink.sender.stats["sent"] == 1)
    sink.close(timeout=10)
    assert 1 == sink.sender.stats["sent"]
    assert sink.sender.stats["failures"] >= 2


def test_a_full_queue_drops_new_events_with_one_log_line(warnings_logged):
    release = __import__("threading").Event()
    delivered: list[int] = []

    def deliver(batch):
        release.wait(30)
        delivered.append(len(batch))

    sender = BatchSender(deliver, name="t", batch_size=1, flush_interval=0.0, max_queue=2)
    event = AnalyticsEvent(name="x", at=0.0, distinct_id="i")
    sender.put(event)
    deadline = time.monotonic() + 10
    while sender._queue.qsize() and time.monotonic() < deadline:  # the thread took the first
        time.sleep(0.01)
    for _ in range(5):
        sender.put(event)  # two fit, three are dropped
    release.set()
    sender.close(timeout=10)
    assert 3 == sender.stats["dropped"]
    assert [1, 1, 1] == delivered
    full = [e for e in warnings_logged if e["event"] == "analytics_queue_full"]
    assert 1 == len(full)


def test_the_token_comes_only_from_the_environment(tmp_path):
    handle = install(
        store=MemoryStore(), component="run", data_dir=tmp_path, environ={"SAUCI_ANALYTICS": "on"}
    )
    try:
        assert ["local"] == [s.name for s in handle.analytics.sinks]
    finally:
        handle.close()


def test_analytics_are_opt_in(tmp_path):
    handle = install(store=MemoryStore(), component="serve", data_dir=tmp_path, environ={})
    try:
        assert None is handle.analytics
    finally:
        handle.close()
    # A Mixpanel token is a choice to send: the local sink records too.
    handle = install(
        store=MemoryStore(),
        component="serve",
        data_dir=tmp_path,
        metrics=False,
        environ={"SAUCI_MIXPANEL_TOKEN": TOKEN, "SAUCI_MIXPANEL_HOST": "http://127.0.0.1:9"},
    )
    try:
        assert ["local", "mixpanel"] == [s.name for s in handle.analytics.sinks]
    finally:
        handle.close(timeout=0.1)


def test_analytics_can_be_switched_off(tmp_path):
    handle = install(
        store=MemoryStore(),
        component="run",
        data_dir=tmp_path,
        environ={"SAUCI_ANALYTICS": "off", "SAUCI_MIXPANEL_TOKEN": TOKEN},
    )
    try:
        assert None is handle.analytics
    finally:
        handle.close()


# -- the local sink --------------------------------------------------------------------------


def test_the_local_sink_records_events_in_the_store(tmp_path):
    store = MemoryStore()
    handle = install(
        store=store,
        component="run",
        command="run",
        data_dir=tmp_path,
        metrics=False,
        environ={"SAUCI_ANALYTICS": "on"},
    )
    run_builds(store, tmp_path, names=("one",))
    handle.track("page_view", user="ann", page="overview")
    handle.close(timeout=10)
    events = read_events(store)
    assert ["cli_command", "build_started", "build_finished", "page_view"] == [
        e.name for e in events
    ]
    assert "run" == events[0].properties["command"]
    assert handle.analytics.user_id("ann") == events[-1].distinct_id
    assert "passed" == events[2].properties["status"]
    # Analytics events are not audit events of a build.
    build = store.list_builds()[0]
    assert all(e.kind != "analytics" for e in store.list_events(build_id=build.id))


def test_properties_are_scalars_and_short():
    sink = LocalSink(MemoryStore())
    analytics = Analytics([sink], salt=b"s" * 32)
    analytics.track("x", note="y" * 1000, obj=object(), n=3)
    sink.close(timeout=10)
    (event,) = read_events(sink.store)
    assert 64 == len(event.properties["note"])
    assert isinstance(event.properties["obj"], str)
    assert 3 == event.properties["n"]


# -- CLI commands ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["on", "off", ""])
def test_cli_commands_are_recorded_only_when_analytics_are_on(tmp_path, monkeypatch, mode):
    from sauci.cli import main
    from sauci.storage.sqlite import SQLiteStore

    monkeypatch.setenv("SAUCI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SAUCI_ANALYTICS", mode)
    monkeypatch.delenv("SAUCI_MIXPANEL_TOKEN", raising=False)
    assert 0 == main(["builds", "--repo", "/secret/path/of/a/repo"])
    store = SQLiteStore(tmp_path / "data" / "sauci.db")
    try:
        events = read_events(store)
    finally:
        store.close()
    if mode != "on":
        assert [] == events
        return
    (event,) = events
    assert ("cli_command", "builds", "cli") == (
        event.name,
        event.properties["command"],
        event.properties["component"],
    )
    assert "/secret/path" not in repr(event)  # the command, never its arguments
