"""A slot that frees is filled at once by the thread that leaves it: the next
build is claimed there, without a server round, from what the last round
read of the queue unless a build was queued or cancelled here since; and the
store's claim is still the check for a build that left the queue meanwhile."""

from __future__ import annotations

import threading
from typing import Any

from polling import wait_for

from sauci.core.capacity import CapacityClaims
from sauci.core.events import subscribe
from sauci.core.models import Build, BuildRequest, Status
from sauci.core.resources import Resources
from sauci.core.scheduler import Scheduler
from sauci.core.threaded import ThreadedRunner
from sauci.storage.memory import MemoryStore

GIB = 2**30


class Held:
    """A LocalRunner stand-in whose builds run until released."""

    def __init__(self, store: MemoryStore) -> None:
        self.name = "serve:refill:1"  # its own: the events of other tests' runners are not its
        self.store = store
        self.release: dict[int, threading.Event] = {}
        self.started: list[int] = []
        self.threads: dict[int, int] = {}

    def run_build(self, build: Build) -> Build:
        self.started.append(build.id)
        self.threads[build.id] = threading.get_ident()
        self.release.setdefault(build.id, threading.Event()).wait(10)
        return self.store.update_build(build.id, status=Status.PASSED)

    def cancel(self, build_id: int, *, reason: str = "cancelled") -> None:
        self.release.setdefault(build_id, threading.Event()).set()


def one_slot(store: MemoryStore, local: Held) -> ThreadedRunner:
    claims = CapacityClaims(
        store=store,
        name=local.name,
        capacity=Resources(cpus=1, memory=GIB),
        max_builds=1,
        cost_of=lambda builds: [Resources(cpus=1, memory=GIB) for _ in builds],
    )
    return ThreadedRunner(local=local, max_builds=1, claims=claims)  # type: ignore[arg-type]


def queue(store: MemoryStore, *refs: str, event: str = "push") -> list[int]:
    scheduler = Scheduler(store)
    return [
        scheduler.enqueue(BuildRequest(repo="/r", ref=f"refs/heads/{ref}", event=event)).id
        for ref in refs
    ]


def test_the_next_build_starts_on_the_freed_slot_without_a_round() -> None:
    store = MemoryStore()
    local = Held(store)
    runner = one_slot(store, local)
    freed: list[dict[str, Any]] = []
    unsubscribe = subscribe(
        # The hub is the process's: a runner another test left may still end a build.
        lambda name, f: (
            freed.append(dict(f))
            if name == "runner_slot_free" and f["runner"] == local.name
            else None
        )
    )
    first, second = queue(store, "a", "b")
    try:
        runner.tick()
        wait_for(lambda: local.started == [first], "the first build to start")
        local.cancel(first)
        wait_for(lambda: local.started == [first, second], "the second build to start")
        assert [second] == runner.running()
        assert local.threads[first] == local.threads[second]  # the same thread, no round
        assert [(first, True)] == [(f["build"].id, f["refilled"]) for f in freed]
        assert store.get_build(second).reason is None  # its waiting reason went
        local.cancel(second)
        wait_for(lambda: not runner.busy(), "the slot to be free")
        assert (second, False) == (freed[-1]["build"].id, freed[-1]["refilled"])
    finally:
        unsubscribe()
        runner.stop(reason="test over", timeout=5)


def test_a_build_cancelled_since_the_last_round_is_not_claimed_and_keeps_its_reason() -> None:
    store = MemoryStore()
    local = Held(store)
    runner = one_slot(store, local)
    first, second = queue(store, "a", "b")
    try:
        runner.tick()
        wait_for(lambda: local.started == [first], "the first build to start")
        # Another process cancels it: nothing in this process hears of it.
        store.update_build(second, status=Status.CANCELLED, reason="cancelled by bob")
        local.cancel(first)
        wait_for(lambda: not runner.busy(), "the first build's slot to be free")
        assert [first] == local.started
        cancelled = store.get_build(second)
        assert (Status.CANCELLED, "cancelled by bob") == (cancelled.status, cancelled.reason)
    finally:
        runner.stop(reason="test over", timeout=5)


def test_a_build_queued_here_since_the_last_round_is_seen_at_the_slot_end() -> None:
    store = MemoryStore()
    local = Held(store)
    runner = one_slot(store, local)
    runner.start(lambda message: None)  # hears of builds queued in this process
    first, older = queue(store, "a", "b")
    try:
        runner.tick()
        wait_for(lambda: local.started == [first], "the first build to start")
        (manual,) = queue(store, "c", event="manual")  # a person's build goes first
        local.cancel(first)
        wait_for(lambda: len(local.started) == 2, "the next build to start")
        assert [first, manual] == local.started
        assert Status.QUEUED is store.get_build(older).status
    finally:
        runner.stop(reason="test over", timeout=5)


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def list_builds(self, *args: Any, **kwargs: Any) -> list[Build]:
        self.reads += 1
        return super().list_builds(*args, **kwargs)


def test_while_every_slot_is_taken_rounds_do_not_read_the_queue_each_time() -> None:
    store = CountingStore()
    local = Held(store)
    runner = one_slot(store, local)
    assert runner.claims is not None
    runner.claims.note_every = 2.0
    first, second = queue(store, "a", "b")
    try:
        runner.tick()
        wait_for(lambda: local.started == [first], "the first build to start")
        reads = store.reads
        (third,) = queue(store, "c")  # a burst goes on while the slot is taken
        runner.tick()
        runner.tick()
        assert (reads, None) == (store.reads, store.get_build(third).reason)
        local.cancel(first)  # a freed slot is filled all the same
        wait_for(lambda: local.started == [first, second], "the second build to start")
        reason = wait_for(  # a round after note_every says why it waits
            lambda: runner.tick() or store.get_build(third).reason,
            "the waiting reason to be written",
        )
        assert reason.startswith("waiting: every worker runs its --max-builds")
    finally:
        runner.stop(reason="test over", timeout=5)


def test_a_round_hands_its_build_to_a_kept_thread_rather_than_start_one() -> None:
    """The builds a round claims run on threads kept from earlier builds
    (starting a thread waits for it to run, in the server's round): four
    builds one after another run on the pool's threads (at most two for one
    slot: a thread that has just ended its build may not be idle yet when
    the next round claims), not on four threads."""
    store = MemoryStore()
    local = Held(store)
    seen: list[threading.Thread] = []
    run_build = local.run_build

    def recording(build: Build) -> Build:
        seen.append(threading.current_thread())
        return run_build(build)

    local.run_build = recording  # type: ignore[method-assign]
    runner = one_slot(store, local)
    try:
        for ref in ("a", "b", "c", "d"):  # one after the other: the slot is free between them
            (build,) = queue(store, ref)
            runner.tick()
            wait_for(lambda build=build: build in local.started, f"build {build} to start")
            assert [f"sauci-build-{build}"] == [seen[-1].name]
            local.cancel(build)
            wait_for(lambda: not runner.busy(), "the slot to be free")
        assert len(set(seen)) <= 2
    finally:
        runner.stop(reason="test over", timeout=5)
