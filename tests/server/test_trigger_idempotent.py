"""A manual trigger repeated within the window (a double click, a resent form,
two requests at once) is the same request: one build."""

from __future__ import annotations

import threading

from sauci.core.models import Status
from sauci.core.scheduler import TRIGGER_WINDOW, Scheduler
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
