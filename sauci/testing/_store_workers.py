"""Conformance tests of the WorkerStore part: worker records."""

from __future__ import annotations

from typing import ClassVar

import attrs

from sauci.core.models import Worker
from sauci.testing._store_support import StorePartConformance
from sauci.typing import Store, WorkerStore

__all__ = ["WorkerStoreConformance"]


class WorkerStoreConformance(StorePartConformance):
    """Worker records: every field, replaced, listed by name, deleted."""

    parts: ClassVar[tuple[type, ...]] = (WorkerStore,)

    # workers
    def test_workers_round_trip_every_field(self, store: Store) -> None:
        worker = Worker(
            name="host-1:4242",
            host="host-1",
            labels=("linux", "gpu", "é"),
            slots=4,
            running=(3, 1, 2),
            started_at=1000.25,
            heartbeat_at=1010.5,
            state="stopping",
            cpus=3.5,
            memory=6 * 1024**3 + 1,  # over 32 bits
        )
        assert worker == store.save_worker(worker)
        assert [worker] == store.list_workers()

    def test_workers_are_replaced_by_name_listed_by_name_and_deleted(self, store: Store) -> None:
        assert [] == store.list_workers()
        b = Worker(name="b", running=(1,))
        a = Worker(name="a")
        upper = Worker(name="Z")  # code-point order: "Z" < "a"
        for w in (b, a, upper):
            store.save_worker(w)
        assert [upper, a, b] == store.list_workers()
        b2 = attrs.evolve(b, running=(), state="offline", heartbeat_at=5.0)
        store.save_worker(b2)
        assert [upper, a, b2] == store.list_workers()
        store.delete_worker("a")
        store.delete_worker("never-seen")
        assert [upper, b2] == store.list_workers()
