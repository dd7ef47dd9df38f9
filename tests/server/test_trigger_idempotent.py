"""A manual trigger repeated within the window (a double click, a resent form,
two requests at once) is the same request: one build."""

from __future__ import annotations

import threading

from sauci.core.models import BuildRequest, Status
from sauci.core.scheduler import TRIGGER_WINDOW, Scheduler
from sauci.core.trigger_once import asked_first
from sauci.storage.memory import MemoryStore


def test_the_same_trigger_twice_is_one_build():
    store = MemoryStore()
    scheduler = Scheduler(store)
    first = scheduler.trigger("/srv/app.git", ref="refs/heads/main", params={"A": "1"}, actor="ann")
    again = scheduler.trigger("/srv/app.git", ref="refs/heads/main", params={"A": "1"}, actor="ann")
    assert first.id == again.id
    assert 1 == len(store.list_builds())


def test_a_different_person_ref_or_parameters_is_another_build():
    store = MemoryStore()
    scheduler = Scheduler(store)
    base = {"ref": "refs/heads/main", "params": {"A": "1"}, "actor": "ann"}
    ids = {
        scheduler.trigger("/srv/app.git", **base).id,
        scheduler.trigger("/srv/app.git", **{**base, "actor": "bob"}).id,
        scheduler.trigger("/srv/app.git", **{**base, "ref": "refs/heads/dev"}).id,
        scheduler.trigger("/srv/app.git", **{**base, "params": {"A": "2"}}).id,
        scheduler.trigger("/srv/other.git", **base).id,
    }
    assert 5 == len(ids)


def test_after_the_window_or_once_the_build_ended_it_builds_again():
    store = MemoryStore()
    scheduler = Scheduler(store)
    first = scheduler.trigger("/srv/app.git", ref="refs/heads/main", actor="ann")
    later = Scheduler(store, clock=lambda: first.queued_at + TRIGGER_WINDOW + 1)
    assert later.trigger("/srv/app.git", ref="refs/heads/main", actor="ann").id != first.id
    store.update_build(first.id, status=Status.CANCELLED, finished_at=first.queued_at)
    third = scheduler.trigger("/srv/app.git", ref="refs/heads/dev", actor="ann")
    store.update_build(third.id, status=Status.PASSED, finished_at=third.queued_at)
    assert scheduler.trigger("/srv/app.git", ref="refs/heads/dev", actor="ann").id != third.id


def test_two_requests_at_once_make_one_build():
    store = MemoryStore()
    got: list[int] = []
    start = threading.Barrier(8)

    def click() -> None:
        start.wait()
        got.append(Scheduler(store).trigger("/srv/app.git", ref="refs/heads/main", actor="ann").id)

    threads = [threading.Thread(target=click) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 1 == len(set(got)) == len(store.list_builds())


class _AskedElsewhere(MemoryStore):
    """Another process asked first (its record is in the store); its build is
    committed while this one looks for it, right after this process's read of
    the queued and running builds."""

    def __init__(self) -> None:
        super().__init__()
        self.theirs: int | None = None

    def record_delivery(self, delivery_id: str) -> bool:
        super().record_delivery(delivery_id)
        return True  # seen: the other process recorded it first

    def list_builds(self, query=None, /, **filters):  # type: ignore[no-untyped-def]
        if self.theirs is None and filters.get("status") is None and query is None:
            # The other process's create_build lands now.
            request = BuildRequest(
                repo="/srv/app.git", ref="refs/heads/main", event="manual", pusher="ann"
            )
            self.theirs = super().create_build(request).id
        return super().list_builds(query, **filters)


def test_a_build_another_process_queues_while_this_one_looks_is_the_answer():
    # CI (loaded): four processes triggering at once made two builds. A process
    # that was not first read the queued and running builds, then all builds
    # to learn whether the first one's had ended: a build committed between the
    # two reads was taken for an ended one, and a second build was queued.
    store = _AskedElsewhere()
    build = Scheduler(store).trigger("/srv/app.git", ref="refs/heads/main", actor="ann")
    assert store.theirs is not None
    assert [store.theirs] == [b.id for b in store.list_builds()]
    assert store.theirs == build.id


def test_two_processes_at_a_window_s_edge_one_of_them_is_first():
    # In the first second of a window a request records its own window and the
    # previous one: B's two records between A's two must not leave both saying
    # "another asked first" (each would wait, then queue its own build).
    store = MemoryStore()
    now = 10 * TRIGGER_WINDOW + 0.5
    ask = {
        "repo": "/srv/app.git",
        "ref": "refs/heads/main",
        "sha": "",
        "actor": "ann",
        "params": {},
        "now": now,
        "window": TRIGGER_WINDOW,
    }
    b_first: list[bool] = []

    class BetweenAsTwoRecords(MemoryStore):
        def record_delivery(self, delivery_id: str) -> bool:
            seen = store.record_delivery(delivery_id)
            if not b_first:  # after A's first record: B asks, all of it
                b_first.append(asked_first(store, **ask))  # type: ignore[arg-type]
            return seen

    a_first = asked_first(BetweenAsTwoRecords(), **ask)  # type: ignore[arg-type]
    assert 1 == [a_first, *b_first].count(True), (a_first, b_first)
