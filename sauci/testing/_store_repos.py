"""Conformance tests of the RepoStore part: registered repositories and
webhook deliveries (also under threads)."""

from __future__ import annotations

from typing import ClassVar

import attrs

from sauci.core.models import Repo
from sauci.testing._store_support import StorePartConformance, race
from sauci.typing import RepoStore, Store

__all__ = ["RepoStoreConformance"]


class RepoStoreConformance(StorePartConformance):
    """Registered repositories and webhook deliveries."""

    parts: ClassVar[tuple[type, ...]] = (RepoStore,)

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
        race(8, lambda i: seen.append(store.record_delivery("gh-race")))
        assert [False] + [True] * 7 == sorted(seen)
