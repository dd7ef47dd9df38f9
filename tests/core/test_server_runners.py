"""The server's runners: ThreadedRunner claims and runs builds on threads here;
both it and CeleryRunner are what sauci.typing.Runner asks for."""

from __future__ import annotations

import inspect
import threading

import pytest
from polling import wait_for

from sauci.app import git_sources
from sauci.core.config import Settings
from sauci.core.events import subscribe
from sauci.core.models import Build, BuildRequest, Status
from sauci.core.threaded import ThreadedRunner
from sauci.distributed import CeleryRunner
from sauci.storage.memory import MemoryStore
from sauci.typing import Runner


class HeldRunner:
    """A LocalRunner stand-in: each build runs until cancelled (or ``fail`` is set)."""

    def __init__(self, store: MemoryStore, fail: Exception | None = None) -> None:
        self.name = "serve:test:1"
        self.store = store
        self.fail = fail
        self.cancelled: dict[int, str] = {}
        self.started: list[int] = []
        self._events: dict[int, threading.Event] = {}
        self._lock = threading.Lock()

    def run_build(self, build: Build) -> Build:
        if self.fail is not None:
            raise self.fail
        with self._lock:
            event = self._events.setdefault(build.id, threading.Event())
            self.started.append(build.id)
        event.wait(10)
        return self.store.update_build(build.id, status=Status.CANCELLED)

    def cancel(self, build_id: int, *, reason: str = "cancelled") -> None:
        with self._lock:
            self.cancelled.setdefault(build_id, reason)
            self._events.setdefault(build_id, threading.Event()).set()


def queued(store: MemoryStore, count: int) -> list[int]:
    return [
        store.create_build(BuildRequest(repo=f"/r{i}", ref="refs/heads/main")).id
        for i in range(count)
    ]


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


def test_both_runners_are_what_the_server_asks_for(store, tmp_path):
    settings = Settings(data_dir=tmp_path)
    threaded = ThreadedRunner(local=HeldRunner(store), max_builds=1)
    celery = CeleryRunner(
        store=store, settings=settings, broker=None, name="s", sources=git_sources(settings)
    )
    assert (True, True) == (isinstance(threaded, Runner), isinstance(celery, Runner))
    assert ("in-process", "dispatch to workers") == (threaded.mode, celery.mode)


def test_the_runner_protocol_has_at_most_six_methods():
    methods = [n for n, v in vars(Runner).items() if inspect.isfunction(v) and n[0] != "_"]
    assert len(methods) <= 6, methods


def test_a_round_claims_only_as_many_builds_as_max_builds(store):
    local = HeldRunner(store)
    runner = ThreadedRunner(local=local, max_builds=2)
    first, second, third = queued(store, 3)
    runner.tick()
    try:
        assert [first, second] == runner.running()
        assert runner.busy()
        assert Status.QUEUED is store.get_build(third).status
    finally:
        runner.stop(reason="test over", timeout=5.0)


def test_stop_cancels_the_builds_running_here_and_claims_no_more(store):
    local = HeldRunner(store)
    runner = ThreadedRunner(local=local, max_builds=1)
    first, second = queued(store, 2)
    runner.tick()
    wait_for(lambda: local.started == [first], "the first build to start")
    runner.stop(reason="SauCI server stopped", timeout=5.0)
    assert {first: "SauCI server stopped"} == local.cancelled
    assert Status.CANCELLED is store.get_build(first).status
    runner.tick()  # a round the loop was still in
    assert Status.QUEUED is store.get_build(second).status


def test_a_cancel_request_in_the_store_reaches_the_running_build(store):
    local = HeldRunner(store)
    runner = ThreadedRunner(local=local, max_builds=1)
    (build_id,) = queued(store, 1)
    freed: list[int] = []
    unsubscribe = subscribe(
        lambda name, f: freed.append(f["build"].id) if name == "runner_slot_free" else None
    )
    try:
        runner.tick()
        wait_for(lambda: local.started == [build_id], "the build to start")
        store.update_build(build_id, cancel_requested="cancelled by alice")
        runner.tick()
        # The build's thread records the end, then frees its slot and says so:
        # wait for both (a later test may listen for that).
        wait_for(lambda: store.get_build(build_id).status.done, "the build to end")
        wait_for(lambda: build_id in freed, "the build's slot to be freed")
        assert {build_id: "cancelled by alice"} == local.cancelled
        runner.tick()  # its thread is gone: nothing is running here any more
        assert (False, []) == (runner.busy(), runner.running())
    finally:
        unsubscribe()
        runner.stop(reason="test over", timeout=5.0)


def test_a_build_the_runner_crashes_on_is_recorded_errored_and_reported(store):
    reports: list[str] = []
    runner = ThreadedRunner(
        local=HeldRunner(store, fail=RuntimeError("boom")),
        max_builds=1,
    )
    runner.start(reports.append)
    (build_id,) = queued(store, 1)
    freed: list[int] = []
    unsubscribe = subscribe(
        lambda name, f: freed.append(f["build"].id) if name == "runner_slot_free" else None
    )
    try:
        runner.tick()
        wait_for(lambda: reports, "the failure to be reported")
        build = store.get_build(build_id)
        assert (Status.ERRORED, "SauCI failed: boom") == (build.status, build.reason)
        assert [f"build {build_id}: boom"] == reports
        # After its report the build's thread frees its slot and says so: wait
        # for that here, not in a later test that listens for it.
        wait_for(lambda: build_id in freed, "the build's slot to be freed")
    finally:
        unsubscribe()
        runner.stop(reason="test over", timeout=5.0)
