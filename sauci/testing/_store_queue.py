"""Conformance tests of the QueueStore part: claims (priority order, by id,
atomic under threads), heartbeats and compare-and-set ends."""

from __future__ import annotations

import time
from typing import Any, ClassVar

import attrs
import pytest

from sauci.core.models import Status
from sauci.exceptions import NotFoundError
from sauci.testing._store_support import MISSING_ID, StorePartConformance, build_request, race
from sauci.typing import QueueStore, Store

__all__ = ["QueueStoreConformance"]


def _finish(store: Store, build_id: int, worker: str, **kw: Any) -> Any:
    kw.setdefault("status", Status.PASSED)
    kw.setdefault("reason", None)
    kw.setdefault("finished_at", 2_000_000_000.5)
    return store.finish_build(build_id, worker, **kw)


class QueueStoreConformance(StorePartConformance):
    """Claims, heartbeats and finish_build."""

    parts: ClassVar[tuple[type, ...]] = (QueueStore,)

    # claim
    def test_claim_from_an_empty_queue_returns_none(self, store: Store) -> None:
        assert store.claim_build("w") is None
        store.create_build(build_request(), status=Status.PASSED)
        assert store.claim_build("w") is None

    def test_claim_moves_the_build_to_running(self, store: Store) -> None:
        build = store.create_build(build_request())
        claimed = store.claim_build("worker-7")
        assert claimed is not None
        assert build.id == claimed.id
        assert (Status.RUNNING, "worker-7") == (claimed.status, claimed.claimed_by)
        assert claimed.started_at is not None
        assert claimed == store.get_build(build.id)
        assert store.claim_build("worker-7") is None

    def test_claim_clears_the_reason_the_build_waited_with(self, store: Store) -> None:
        # One write: the claim, not a claim and then an update (a freed slot's
        # passage to the next build's first step, issue 22 item 1).
        waited = store.update_build(store.create_build(build_request()).id, reason="waiting: x")
        by_id = store.update_build(store.create_build(build_request()).id, reason="waiting: y")
        claimed = store.claim_build("w", build_id=by_id.id)
        assert claimed is not None
        picked = store.claim_build("w")
        assert picked is not None
        assert [(waited.id, None), (by_id.id, None)] == sorted(
            [(picked.id, picked.reason), (claimed.id, claimed.reason)]
        )
        assert [None, None] == [store.get_build(b.id).reason for b in (waited, by_id)]

    def test_claim_takes_highest_priority_then_oldest(self, store: Store) -> None:
        low = store.create_build(build_request(priority=0))
        high_old = store.create_build(build_request(priority=5))
        store.create_build(build_request(priority=1), status=Status.PASSED)
        mid = store.create_build(build_request(priority=1))
        high_new = store.create_build(build_request(priority=5))
        low_new = store.create_build(build_request(priority=0))
        negative = store.create_build(build_request(priority=-1))
        order = [store.claim_build("w") for _ in range(7)]
        assert [high_old.id, high_new.id, mid.id, low.id, low_new.id, negative.id, None] == [
            b.id if b else None for b in order
        ]

    def test_claim_takes_a_requeued_build(self, store: Store) -> None:
        build = store.create_build(build_request())
        store.claim_build("w")
        store.update_build(build.id, status=Status.QUEUED, claimed_by=None)
        claimed = store.claim_build("w2")
        assert claimed is not None
        assert (build.id, "w2") == (claimed.id, claimed.claimed_by)

    def test_concurrent_claims_take_each_build_exactly_once(self, store: Store) -> None:
        created = {store.create_build(build_request(priority=i % 3)).id for i in range(50)}
        claimed: list[list[int]] = [[] for _ in range(8)]

        def claim_all(i: int) -> None:
            while (build := store.claim_build(f"worker-{i}")) is not None:
                assert f"worker-{i}" == build.claimed_by
                claimed[i].append(build.id)

        race(8, claim_all)
        everything = [b for per_thread in claimed for b in per_thread]
        assert sorted(created) == sorted(everything)  # none twice, none missed
        assert all(b.status is Status.RUNNING for b in store.list_builds(limit=100))

    # claims
    def test_claim_sets_heartbeat_at_to_the_claim_time(self, store: Store) -> None:
        build = store.create_build(build_request())
        claimed = store.claim_build("w")
        assert claimed is not None
        assert claimed.started_at is not None
        assert claimed.started_at == claimed.heartbeat_at
        assert claimed == store.get_build(build.id)

    def test_claim_by_id_takes_that_build_whatever_its_priority(self, store: Store) -> None:
        low = store.create_build(build_request(priority=0))
        high = store.create_build(build_request(priority=9))
        claimed = store.claim_build("worker-3", build_id=low.id)
        assert claimed is not None
        assert (low.id, Status.RUNNING, "worker-3") == (
            claimed.id,
            claimed.status,
            claimed.claimed_by,
        )
        assert claimed.started_at is not None
        assert claimed.started_at == claimed.heartbeat_at
        assert claimed == store.get_build(low.id)
        assert high == store.get_build(high.id)  # untouched, still first in the queue
        next_one = store.claim_build("worker-4")
        assert next_one is not None
        assert high.id == next_one.id

    def test_claim_by_id_only_while_queued(self, store: Store) -> None:
        done = store.create_build(build_request(), status=Status.PASSED)
        taken = store.create_build(build_request())
        assert store.claim_build("w1", build_id=taken.id) is not None
        running = store.get_build(taken.id)
        assert store.claim_build("w2", build_id=taken.id) is None
        assert store.claim_build("w2", build_id=done.id) is None
        assert store.claim_build("w2", build_id=MISSING_ID) is None
        assert (running, done) == (store.get_build(taken.id), store.get_build(done.id))

    def test_concurrent_claims_by_id_take_the_build_once(self, store: Store) -> None:
        build = store.create_build(build_request())
        results = race(8, lambda i: store.claim_build(f"worker-{i}", build_id=build.id))
        winners = [(i, b) for i, b in enumerate(results) if b is not None]
        assert 1 == len(winners)
        i, won = winners[0]
        assert (build.id, f"worker-{i}") == (won.id, won.claimed_by)
        assert won == store.get_build(build.id)

    # heartbeats
    def test_heartbeat_by_the_owner_moves_heartbeat_at(self, store: Store) -> None:
        build = store.create_build(build_request())
        claimed = store.claim_build("w", build_id=build.id)
        assert claimed is not None
        before = time.time()
        assert store.heartbeat_build(build.id, "w") is True
        after = time.time()
        beat = store.get_build(build.id)
        assert beat.heartbeat_at is not None
        assert before - 1 <= beat.heartbeat_at <= after + 1  # the store's clock is time.time
        assert attrs.evolve(claimed, heartbeat_at=beat.heartbeat_at) == beat

    def test_heartbeat_of_anyone_but_the_running_owner_is_false(self, store: Store) -> None:
        queued = store.create_build(build_request())
        assert store.heartbeat_build(queued.id, "w") is False
        assert queued == store.get_build(queued.id)
        running = store.claim_build("w", build_id=queued.id)
        assert store.heartbeat_build(queued.id, "other") is False
        assert running == store.get_build(queued.id)
        finished = _finish(store, queued.id, "w")
        assert store.heartbeat_build(queued.id, "w") is False
        assert finished == store.get_build(queued.id)

    def test_heartbeat_of_a_missing_build_raises_not_found(self, store: Store) -> None:
        with pytest.raises(NotFoundError):
            store.heartbeat_build(MISSING_ID, "w")

    # finish_build
    def test_finish_build_records_the_end(self, store: Store) -> None:
        build = store.create_build(build_request())
        claimed = store.claim_build("w")
        assert claimed is not None
        finished = _finish(
            store, build.id, "w", status=Status.FAILED, reason="step test failed", finished_at=9.5
        )
        expected = attrs.evolve(
            claimed, status=Status.FAILED, reason="step test failed", finished_at=9.5
        )
        assert expected == finished
        assert finished == store.get_build(build.id)

    def test_finish_build_is_recorded_once(self, store: Store) -> None:
        build = store.create_build(build_request())
        store.claim_build("w")
        first = _finish(store, build.id, "w", status=Status.PASSED)
        assert first is not None
        assert _finish(store, build.id, "w", status=Status.ERRORED, reason="again") is None
        assert first == store.get_build(build.id)

    def test_finish_build_of_a_non_owner_or_a_build_not_running_changes_nothing(
        self, store: Store
    ) -> None:
        queued = store.create_build(build_request())
        assert _finish(store, queued.id, "w") is None
        assert queued == store.get_build(queued.id)
        running = store.claim_build("w")
        assert _finish(store, queued.id, "other", status=Status.ERRORED, reason="lost") is None
        assert running == store.get_build(queued.id)
        # A worker declared lost: its build was handed back to the queue.
        requeued = store.update_build(queued.id, status=Status.QUEUED, claimed_by=None)
        assert _finish(store, queued.id, "w") is None
        assert requeued == store.get_build(queued.id)

    def test_finish_build_of_a_missing_build_raises_not_found(self, store: Store) -> None:
        with pytest.raises(NotFoundError):
            _finish(store, MISSING_ID, "w")

    def test_concurrent_finishes_record_one_verdict(self, store: Store) -> None:
        build = store.create_build(build_request())
        store.claim_build("w")
        statuses = [Status.PASSED, Status.FAILED, Status.ERRORED, Status.CANCELLED] * 2
        results = race(
            8,
            lambda i: _finish(store, build.id, "w", status=statuses[i], reason=f"verdict {i}"),
        )
        winners = [b for b in results if b is not None]
        assert 1 == len(winners)
        assert winners[0] == store.get_build(build.id)
        i = results.index(winners[0])
        assert (statuses[i], f"verdict {i}") == (winners[0].status, winners[0].reason)
