"""Conformance tests of the records a store keeps for the server beside
builds: the event log, build statistics, registered repositories and webhook
deliveries (also under threads).

A part of :class:`sauci.testing.StoreConformance`, kept in its own module.
"""

# Tests here write `expected == actual`, as STYLE.md asks (tests/** has the same ignore).

from __future__ import annotations

import math

import attrs

from sauci.core.models import Event, Repo, Status
from sauci.testing._store_support import MISSING_ID, _race, _request
from sauci.typing import Store

__all__ = ["ServerConformance"]


class ServerConformance:
    """Events, build statistics, registered repositories and webhook
    deliveries (part of StoreConformance)."""

    # events

    def test_events_are_listed_newest_first(self, store: Store) -> None:
        build = store.create_build(_request())
        events = [
            Event(kind="build_queued", at=10.0, build_id=build.id, actor="git"),
            Event(kind="server_started", at=11.0, data={"version": "1.0", "n": [1, 2]}),
            Event(kind="build_cancelled", at=12.5, build_id=build.id, actor="ada", data={"a": 1}),
        ]
        for e in events:
            store.add_event(e)
        assert events[::-1] == store.list_events()
        assert events[:0:-1] == store.list_events(limit=2)
        assert [] == store.list_events(limit=0)
        assert [events[2], events[0]] == store.list_events(build_id=build.id)
        assert [events[2]] == store.list_events(build_id=build.id, limit=1)
        assert [] == store.list_events(build_id=MISSING_ID)

    # analytics

    def test_build_stats(self, store: Store) -> None:
        assert {"total": 0, "by_status": {}, "mean_duration": None} == dict(store.build_stats())
        a1 = store.create_build(_request("a"))
        a2 = store.create_build(_request("a"))
        store.create_build(_request("a"))
        b1 = store.create_build(_request("b"))
        store.update_build(a1.id, status=Status.PASSED, started_at=100.0, finished_at=110.0)
        store.update_build(a2.id, status=Status.FAILED, started_at=100.0, finished_at=130.0)
        store.update_build(b1.id, status=Status.PASSED, started_at=100.0, finished_at=160.0)
        stats = store.build_stats()
        assert 4 == stats["total"]
        assert {"passed": 2, "failed": 1, "queued": 1} == dict(stats["by_status"])
        assert math.isclose(stats["mean_duration"], (10 + 30 + 60) / 3)
        stats_a = store.build_stats(repo="a")
        assert 3 == stats_a["total"]
        assert {"passed": 1, "failed": 1, "queued": 1} == dict(stats_a["by_status"])
        assert math.isclose(stats_a["mean_duration"], 20.0)
        assert {"total": 0, "by_status": {}, "mean_duration": None} == dict(
            store.build_stats(repo="nope")
        )

    def test_build_stats_ignores_builds_without_both_times(self, store: Store) -> None:
        a = store.create_build(_request())
        b = store.create_build(_request())
        store.update_build(a.id, status=Status.ERRORED, finished_at=50.0)
        store.update_build(b.id, status=Status.RUNNING, started_at=50.0)
        assert store.build_stats()["mean_duration"] is None

    def test_registered_repos_round_trip_replace_and_delete(self, store: Store) -> None:
        a = Repo(id="app-1", location="/srv/app.git", hook="receive", added_at=1.5)
        b = Repo(
            id="lib-2", location="https://example.com/lib.git", poll_interval=60.0, added_at=2.0
        )
        store.save_repo(b)
        store.save_repo(a)
        assert [a, b] == store.list_registered_repos()
        moved = attrs.evolve(a, hook="commit")
        store.save_repo(moved)
        assert [moved, b] == store.list_registered_repos()
        store.delete_repo("app-1")
        store.delete_repo("never-added")
        assert [b] == store.list_registered_repos()

    def test_record_delivery_says_whether_it_was_seen(self, store: Store) -> None:
        assert [False, True, False, True] == [
            store.record_delivery("gh-1"),
            store.record_delivery("gh-1"),
            store.record_delivery("gh-2"),
            store.record_delivery("gh-2"),
        ]

    def test_concurrent_deliveries_are_new_exactly_once(self, store: Store) -> None:
        seen: list[bool] = []
        _race(8, lambda i: seen.append(store.record_delivery("gh-race")))
        assert [False] + [True] * 7 == sorted(seen)
