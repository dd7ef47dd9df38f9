"""Conformance tests for Store adapters, and a state machine that checks a
store against MemoryStore.

Use them in a plugin's test suite::

    import pytest
    from sauci.testing import StoreConformance, make_store_state_machine

    class TestMyStore(StoreConformance):
        @pytest.fixture
        def store(self, tmp_path):
            s = MyStore(tmp_path / "db")
            yield s
            s.close()

    def test_my_store_behaves_like_memory_store(tmp_path):
        from hypothesis import settings
        from hypothesis.stateful import run_state_machine_as_test

        machine = make_store_state_machine(lambda clock: MyStore(..., clock=clock))
        run_state_machine_as_test(machine, settings=settings(max_examples=25))

The ``store`` fixture must give an empty store for each test.
"""

# Tests here write `expected == actual`, as STYLE.md asks (tests/** has the same ignore).

from __future__ import annotations

import functools
import math
import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import attrs
import pytest

from sauci.core.models import (
    Artifact,
    Build,
    BuildRequest,
    EndedBy,
    Event,
    Repo,
    Status,
    StepRun,
    TestCase,
    Worker,
)
from sauci.exceptions import NotFoundError, StoreError
from sauci.testing._store_runs import MISSING_ID, RunsConformance, _race
from sauci.typing import Store

__all__ = ["StoreConformance", "make_store_state_machine"]


def _request(repo: str = "acme/app", **kw: Any) -> BuildRequest:
    return BuildRequest(repo=repo, **kw)


class StoreConformance(RunsConformance):
    """Tests every Store must pass. Subclass it and provide a ``store`` fixture
    that yields a new, empty store (and closes it afterwards)."""

    # protocol and capabilities

    def test_store_satisfies_the_protocol(self, store: Store) -> None:
        assert isinstance(store, Store)
        assert isinstance(store.capabilities, frozenset)
        assert all(isinstance(c, str) for c in store.capabilities)
        # The suite checks claims under threads, so every store must claim atomically.
        assert "atomic_claim" in store.capabilities

    def test_close_twice_is_harmless(self, store: Store) -> None:
        store.close()
        store.close()

    # create / get

    def test_create_build_records_the_request(self, store: Store) -> None:
        request = BuildRequest(
            repo="acme/app",
            ref="refs/heads/main",
            sha="a" * 40,
            event="push",
            priority=3,
            params={"PY": "3.11", "é": "☃"},
            author="Ada",
            message="Fix it\n\nLonger text",
            pusher="ada",
            old_sha="b" * 40,
        )
        before = time.time()
        build = store.create_build(request)
        after = time.time()
        assert build.id >= 1
        assert (request.repo, request.ref, request.sha, request.event) == (
            build.repo,
            build.ref,
            build.sha,
            build.event,
        )
        assert (request.priority, dict(request.params), request.author) == (
            build.priority,
            dict(build.params),
            build.author,
        )
        assert (request.message, request.pusher, request.old_sha) == (
            build.message,
            build.pusher,
            build.old_sha,
        )
        assert Status.QUEUED == build.status
        assert (None, None, None, None) == (
            build.reason,
            build.started_at,
            build.finished_at,
            build.claimed_by,
        )
        assert isinstance(build.queued_at, float)
        # Stores may take a clock; with the real one, queued_at is "now".
        assert build.queued_at > 0
        if before - 60 <= build.queued_at <= after + 60:
            assert before - 1 <= build.queued_at <= after + 1

    def test_create_build_gives_fresh_increasing_ids(self, store: Store) -> None:
        ids = [store.create_build(_request()).id for _ in range(5)]
        assert sorted(set(ids)) == ids

    def test_create_build_with_a_status(self, store: Store) -> None:
        build = store.create_build(_request(), status=Status.SKIPPED)
        assert Status.SKIPPED == build.status
        assert Status.SKIPPED == store.get_build(build.id).status

    def test_get_build_returns_the_recorded_build(self, store: Store) -> None:
        build = store.create_build(_request(params={"a": "1"}))
        assert build == store.get_build(build.id)
        assert isinstance(store.get_build(build.id).status, Status)

    def test_get_missing_build_raises_not_found(self, store: Store) -> None:
        with pytest.raises(NotFoundError, match=str(MISSING_ID)) as info:
            store.get_build(MISSING_ID)
        assert isinstance(info.value, StoreError)
        assert isinstance(info.value, LookupError)

    # update

    def test_update_build_changes_every_allowed_field(self, store: Store) -> None:
        build = store.create_build(_request())
        changes: dict[str, Any] = {
            "status": Status.FAILED,
            "reason": "step test failed",
            "started_at": 1000.5,
            "finished_at": 1010.25,
            "claimed_by": "worker-1",
            "sha": "c" * 40,
            "ref": "refs/heads/dev",
            "author": "Grace",
            "message": "Other",
            "priority": -2,
            "cancel_requested": "cancelled by ada",
            "runs_on": ("linux", "arm64"),
            "heartbeat_at": 1009.75,
        }
        updated = store.update_build(build.id, **changes)
        assert attrs.evolve(build, **changes) == updated
        assert updated == store.get_build(build.id)

    def test_update_build_accepts_a_status_string(self, store: Store) -> None:
        build = store.create_build(_request())
        assert Status.PASSED == store.update_build(build.id, status="passed").status

    def test_update_build_can_clear_fields(self, store: Store) -> None:
        build = store.create_build(_request())
        store.update_build(build.id, reason="x", started_at=5.0, claimed_by="w")
        updated = store.update_build(build.id, reason=None, started_at=None, claimed_by=None)
        assert (None, None, None) == (updated.reason, updated.started_at, updated.claimed_by)

    def test_update_build_without_changes_returns_the_build(self, store: Store) -> None:
        build = store.create_build(_request())
        assert build == store.update_build(build.id)

    def test_update_build_rejects_unknown_fields(self, store: Store) -> None:
        build = store.create_build(_request())
        for field in ("repo", "params", "id", "queued_at", "nonsense"):
            with pytest.raises(TypeError, match=field):
                store.update_build(build.id, **{field: "x"})
        with pytest.raises(TypeError):
            store.update_build(build.id, status=Status.PASSED, bogus=1)
        assert build == store.get_build(build.id)

    def test_update_missing_build_raises_not_found(self, store: Store) -> None:
        with pytest.raises(NotFoundError):
            store.update_build(MISSING_ID, status=Status.PASSED)

    # claim

    def test_claim_from_an_empty_queue_returns_none(self, store: Store) -> None:
        assert store.claim_build("w") is None
        store.create_build(_request(), status=Status.PASSED)
        assert store.claim_build("w") is None

    def test_claim_moves_the_build_to_running(self, store: Store) -> None:
        build = store.create_build(_request())
        claimed = store.claim_build("worker-7")
        assert claimed is not None
        assert build.id == claimed.id
        assert (Status.RUNNING, "worker-7") == (claimed.status, claimed.claimed_by)
        assert claimed.started_at is not None
        assert claimed == store.get_build(build.id)
        assert store.claim_build("worker-7") is None

    def test_claim_takes_highest_priority_then_oldest(self, store: Store) -> None:
        low = store.create_build(_request(priority=0))
        high_old = store.create_build(_request(priority=5))
        store.create_build(_request(priority=1), status=Status.PASSED)
        mid = store.create_build(_request(priority=1))
        high_new = store.create_build(_request(priority=5))
        low_new = store.create_build(_request(priority=0))
        negative = store.create_build(_request(priority=-1))
        order = [store.claim_build("w") for _ in range(7)]
        assert [high_old.id, high_new.id, mid.id, low.id, low_new.id, negative.id, None] == [
            b.id if b else None for b in order
        ]

    def test_claim_takes_a_requeued_build(self, store: Store) -> None:
        build = store.create_build(_request())
        store.claim_build("w")
        store.update_build(build.id, status=Status.QUEUED, claimed_by=None)
        claimed = store.claim_build("w2")
        assert claimed is not None
        assert (build.id, "w2") == (claimed.id, claimed.claimed_by)

    def test_concurrent_claims_take_each_build_exactly_once(self, store: Store) -> None:
        created = {store.create_build(_request(priority=i % 3)).id for i in range(50)}
        claimed: list[list[int]] = [[] for _ in range(8)]

        def claim_all(i: int) -> None:
            while (build := store.claim_build(f"worker-{i}")) is not None:
                assert f"worker-{i}" == build.claimed_by
                claimed[i].append(build.id)

        _race(8, claim_all)
        everything = [b for per_thread in claimed for b in per_thread]
        assert sorted(created) == sorted(everything)  # none twice, none missed
        assert all(b.status is Status.RUNNING for b in store.list_builds(limit=100))

    # list

    def test_list_builds_is_newest_first(self, store: Store) -> None:
        ids = [store.create_build(_request()).id for _ in range(4)]
        assert ids[::-1] == [b.id for b in store.list_builds()]
        assert [] == store.list_builds(limit=0)
        assert ids[:1:-1] == [b.id for b in store.list_builds(limit=2)]

    def test_list_builds_of_an_empty_store(self, store: Store) -> None:
        assert [] == store.list_builds()
        assert [] == store.list_repos()

    def test_list_builds_filters(self, store: Store) -> None:
        a = store.create_build(_request("a", ref="refs/heads/main", event="push", author="ada"))
        b = store.create_build(_request("b", ref="refs/heads/main", event="cron", author="bob"))
        c = store.create_build(_request("a", ref="refs/heads/dev", event="push", author="bob"))
        d = store.create_build(_request("a", ref="refs/heads/main", event="manual"))
        store.update_build(c.id, status=Status.FAILED)

        def ids(**kw: Any) -> list[int]:
            return [x.id for x in store.list_builds(**kw)]

        assert [d.id, c.id, a.id] == ids(repo="a")
        assert [d.id, b.id, a.id] == ids(ref="refs/heads/main")
        assert [c.id] == ids(status=Status.FAILED)
        assert [d.id, b.id, a.id] == ids(status=Status.QUEUED)
        assert [c.id, a.id] == ids(event="push")
        assert [c.id, b.id] == ids(author="bob")
        assert [d.id, a.id] == ids(repo="a", ref="refs/heads/main")
        assert [a.id] == ids(repo="a", ref="refs/heads/main", event="push", author="ada")
        assert [] == ids(repo="a", status=Status.PASSED)
        assert [] == ids(repo="nope")

    def test_list_builds_pages_with_before_id(self, store: Store) -> None:
        for i in range(11):
            store.create_build(_request("a" if i % 2 else "b"))
        cases: list[dict[str, Any]] = [{}, {"repo": "a"}]
        for filters in cases:
            every = [x.id for x in store.list_builds(limit=100, **filters)]
            pages: list[int] = []
            before = None
            while page := store.list_builds(before_id=before, limit=3, **filters):
                assert len(page) <= 3
                pages.extend(x.id for x in page)
                before = page[-1].id
            assert every == pages
        assert [] == store.list_builds(before_id=1)

    def test_list_repos_is_sorted_and_distinct(self, store: Store) -> None:
        for repo in ("zeta", "Alpha", "acme/app", "zeta", "acme/app", "b"):
            store.create_build(_request(repo))
        assert ["Alpha", "acme/app", "b", "zeta"] == store.list_repos()

    # steps

    def test_save_step_round_trips_every_field(self, store: Store) -> None:
        build = store.create_build(_request())
        step = StepRun(
            build_id=build.id,
            name="test (py3.11)",
            position=2,
            status=Status.ERRORED,
            reason="killed after 600 s timeout",
            ended_by=EndedBy.TIMEOUT,
            exit_code=None,
            signal=9,
            attempt=2,
            allow_failure=True,
            needs=("lint", "build"),
            started_at=100.0,
            finished_at=700.5,
            log_bytes=12345,
            log_path="/var/lib/sauci/logs/1/test.log",
        )
        assert step == store.save_step(step)
        assert [step] == store.list_steps(build.id)
        stored = store.list_steps(build.id)[0]
        assert isinstance(stored.status, Status)
        assert isinstance(stored.ended_by, EndedBy)
        assert isinstance(stored.needs, tuple)

    def test_save_step_replaces_the_step_of_the_same_name(self, store: Store) -> None:
        build = store.create_build(_request())
        store.save_step(StepRun(build_id=build.id, name="test", position=1))
        done = StepRun(
            build_id=build.id,
            name="test",
            position=1,
            status=Status.PASSED,
            exit_code=0,
            attempt=1,
            started_at=1.0,
            finished_at=2.0,
        )
        store.save_step(done)
        assert [done] == store.list_steps(build.id)
        back = attrs.evolve(done, status=Status.RUNNING, exit_code=None, finished_at=None)
        store.save_step(back)
        assert [back] == store.list_steps(build.id)

    def test_list_steps_is_in_position_order(self, store: Store) -> None:
        build = store.create_build(_request())
        for name, position in (("deploy", 3), ("lint", 0), ("test", 2), ("build", 1), ("b", 2)):
            store.save_step(StepRun(build_id=build.id, name=name, position=position))
        names = [s.name for s in store.list_steps(build.id)]
        assert ["lint", "build", "b", "test", "deploy"] == names

    def test_steps_belong_to_their_build(self, store: Store) -> None:
        one = store.create_build(_request())
        two = store.create_build(_request())
        store.save_step(StepRun(build_id=one.id, name="test"))
        assert [] == store.list_steps(two.id)
        assert [] == store.list_steps(MISSING_ID)
        assert ["test"] == [s.name for s in store.list_steps(one.id)]

    def test_save_step_of_a_missing_build_raises_not_found(self, store: Store) -> None:
        with pytest.raises(NotFoundError):
            store.save_step(StepRun(build_id=MISSING_ID, name="test"))

    # logs

    def test_append_log_returns_the_new_size(self, store: Store) -> None:
        build = store.create_build(_request())
        assert 0 == store.log_size(build.id, "test")
        assert 6 == store.append_log(build.id, "test", b"hello ")
        assert 6 == store.append_log(build.id, "test", b"")
        assert 11 == store.append_log(build.id, "test", b"world")
        assert 11 == store.log_size(build.id, "test")
        assert b"hello world" == store.read_log(build.id, "test")

    def test_read_log_of_random_ranges(self, store: Store) -> None:
        rng = random.Random(1234)
        build = store.create_build(_request())
        expected = b""
        for _ in range(40):
            chunk = rng.randbytes(rng.choice([1, 2, 7, 100, 1000, 4096]))
            expected += chunk
            assert len(expected) == store.append_log(build.id, "test", chunk)
        size = len(expected)
        assert size == store.log_size(build.id, "test")
        assert expected == store.read_log(build.id, "test")
        for _ in range(200):
            offset = rng.randint(0, size + 10)
            limit = rng.choice([None, 0, 1, rng.randint(0, 100), rng.randint(0, size + 10)])
            end = size if limit is None else offset + limit
            assert expected[offset:end] == store.read_log(build.id, "test", offset, limit)
        assert b"" == store.read_log(build.id, "test", size)
        assert b"" == store.read_log(build.id, "test", size + 100, 5)

    def test_log_is_binary_safe(self, store: Store) -> None:
        build = store.create_build(_request())
        data = bytes(range(256)) + b"\xff\xfe\x00\xc3\x28\xa0\xa1\xe2\x28\xa1\x00"
        store.append_log(build.id, "test", data[:100])
        store.append_log(build.id, "test", data[100:])
        assert data == store.read_log(build.id, "test")
        assert data[95:110] == store.read_log(build.id, "test", 95, 15)

    def test_large_log_in_64_kib_chunks(self, store: Store) -> None:
        build = store.create_build(_request())
        data = random.Random(7).randbytes(1024 * 1024 + 17)
        for i in range(0, len(data), 65536):
            store.append_log(build.id, "big", data[i : i + 65536])
        assert len(data) == store.log_size(build.id, "big")
        assert data == store.read_log(build.id, "big")
        for offset, limit in ((65530, 20), (0, 65536), (65536, 65536), (len(data) - 5, 100)):
            assert data[offset : offset + limit] == store.read_log(build.id, "big", offset, limit)

    def test_logs_belong_to_their_build_and_step(self, store: Store) -> None:
        one = store.create_build(_request())
        two = store.create_build(_request())
        store.append_log(one.id, "lint", b"lint output")
        store.append_log(one.id, "test", b"test output")
        store.append_log(two.id, "lint", b"other")
        assert b"lint output" == store.read_log(one.id, "lint")
        assert b"test output" == store.read_log(one.id, "test")
        assert b"other" == store.read_log(two.id, "lint")
        assert b"" == store.read_log(two.id, "test")
        assert 0 == store.log_size(two.id, "test")
        assert b"" == store.read_log(MISSING_ID, "lint")
        assert 0 == store.log_size(MISSING_ID, "lint")

    def test_append_log_of_a_missing_build_raises_not_found(self, store: Store) -> None:
        with pytest.raises(NotFoundError):
            store.append_log(MISSING_ID, "test", b"data")
        with pytest.raises(NotFoundError):
            store.append_log(MISSING_ID, "test", b"")

    def test_read_log_rejects_negative_ranges(self, store: Store) -> None:
        build = store.create_build(_request())
        with pytest.raises(ValueError):
            store.read_log(build.id, "test", -1)
        with pytest.raises(ValueError):
            store.read_log(build.id, "test", 0, -1)

    def test_concurrent_appends_keep_every_chunk(self, store: Store) -> None:
        build = store.create_build(_request())
        sizes: list[int] = []

        def append(i: int) -> None:
            for j in range(10):
                sizes.append(store.append_log(build.id, "shared", bytes([i * 10 + j]) * 100))
                store.append_log(build.id, f"own-{i}", bytes([j]) * 10)

        _race(4, append)
        assert list(range(100, 4001, 100)) == sorted(sizes)
        log = store.read_log(build.id, "shared")
        assert Counter(bytes([n]) * 100 for n in range(40)) == Counter(
            log[i : i + 100] for i in range(0, len(log), 100)
        )
        for i in range(4):
            assert b"".join(bytes([j]) * 10 for j in range(10)) == store.read_log(
                build.id, f"own-{i}"
            )

    # test results, artifacts

    def test_test_results_round_trip_in_insertion_order(self, store: Store) -> None:
        build = store.create_build(_request())
        other = store.create_build(_request())
        unit = [
            TestCase(name="test_a", classname="pkg.TestX", duration=0.25, file="t.py"),
            TestCase(
                name="test_b",
                classname="pkg.TestX",
                status="failed",
                duration=1.5,
                message="assert 1 == 2",
                text="Traceback ...\n  é ☃",
            ),
        ]
        integration = [TestCase(name="test_c", status="skipped")]
        store.add_test_results(build.id, "unit", unit)
        store.add_test_results(build.id, "integration", integration)
        store.add_test_results(build.id, "unit", [])
        store.add_test_results(other.id, "unit", unit[:1])
        expected = [("unit", unit[0]), ("unit", unit[1]), ("integration", integration[0])]
        assert expected == store.list_test_results(build.id)
        assert [("unit", unit[0])] == store.list_test_results(other.id)
        assert [] == store.list_test_results(MISSING_ID)

    def test_artifacts_round_trip_in_insertion_order(self, store: Store) -> None:
        build = store.create_build(_request())
        first = [Artifact(path="dist/app.whl", size=2**33, sha256="ab" * 32)]
        second = [Artifact(path="report.html", size=0), Artifact(path="a/b/c.txt", size=3)]
        store.add_artifacts(build.id, "build", first)
        store.add_artifacts(build.id, "report", second)
        expected = [("build", first[0]), ("report", second[0]), ("report", second[1])]
        assert expected == store.list_artifacts(build.id)
        assert [] == store.list_artifacts(MISSING_ID)

    def test_results_of_a_missing_build_raise_not_found(self, store: Store) -> None:
        with pytest.raises(NotFoundError):
            store.add_test_results(MISSING_ID, "unit", [TestCase(name="t")])
        with pytest.raises(NotFoundError):
            store.add_artifacts(MISSING_ID, "build", [Artifact(path="a", size=1)])

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

    def test_create_build_keeps_reuse_from(self, store: Store) -> None:
        first = store.create_build(_request())
        rerun = store.create_build(_request(reuse_from=first.id, event="rerun"))
        assert (first.id, None) == (rerun.reuse_from, rerun.cancel_requested)
        assert rerun == store.get_build(rerun.id)
        assert first.reuse_from is None

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


# The state machine


_TEXT = "abcé☃ /-_\n"
_REPOS = ("a", "b", "acme/app")
_REFS = ("", "refs/heads/main", "refs/heads/dev")
_EVENTS = ("manual", "push", "cron")
_STEPS = ("build", "test", "lint")
_LABELS = ("linux", "gpu", "é")
_WORKERS = ("a", "b", "Z", "é")


def make_store_state_machine(
    factory: Callable[[Callable[[], float]], Store], *, compare_times: bool = True
) -> type[Any]:
    """A Hypothesis RuleBasedStateMachine class that runs random operations
    on ``factory(clock)`` and on a MemoryStore and asserts equal results.

    ``factory`` gets the machine's clock (a callable returning float epoch
    seconds) and must return a new, empty store that uses it for the times it
    records. A store that cannot take a clock is compared with timestamps
    dropped: pass ``compare_times=False``. Builds are matched by creation
    order, so a store's ids need only be increasing.
    """
    from hypothesis import strategies as st
    from hypothesis.stateful import (
        Bundle,
        RuleBasedStateMachine,
        initialize,
        multiple,
        precondition,
        rule,
    )

    from sauci.storage.memory import MemoryStore

    text = st.text(alphabet=_TEXT, max_size=8)
    opt_text = st.none() | text
    times = st.none() | st.floats(min_value=0, max_value=2e9, allow_nan=False).map(
        lambda f: round(f, 3)
    )
    statuses = st.sampled_from(list(Status))
    # Mostly queued, so that claims have something to choose from.
    new_statuses = st.sampled_from([Status.QUEUED] * 6 + list(Status))
    requests = st.builds(
        BuildRequest,
        repo=st.sampled_from(_REPOS),
        ref=st.sampled_from(_REFS),
        sha=st.sampled_from(("", "a" * 40, "b" * 40)),
        event=st.sampled_from(_EVENTS),
        priority=st.integers(-3, 3),
        params=st.dictionaries(st.sampled_from(("X", "Y", "é")), text, max_size=2),
        author=st.sampled_from(("", "ada", "bob")),
        message=text,
        pusher=text,
        old_sha=st.sampled_from(("", "c" * 40)),
        reuse_from=st.none() | st.integers(1, 4),  # a model build id
        attempt=st.integers(1, 3),
    )
    repos = st.builds(
        Repo,
        id=st.sampled_from(("app", "lib", "é")),
        location=text,
        hook=st.sampled_from(("none", "receive", "commit")),
        poll_interval=st.none() | st.sampled_from((30.0, 60.5)),
        added_at=st.floats(0, 2e9, allow_nan=False).map(lambda f: round(f, 3)),
    )
    update_fields = st.fixed_dictionaries(
        {},
        optional={
            "status": statuses | statuses.map(lambda s: s.value),
            "reason": opt_text,
            "started_at": times,
            "finished_at": times,
            "claimed_by": opt_text,
            "sha": text,
            "ref": st.sampled_from(_REFS),
            "author": st.sampled_from(("", "ada", "bob")),
            "message": text,
            "priority": st.integers(-3, 3),
            "cancel_requested": opt_text,
            "runs_on": st.lists(st.sampled_from(_LABELS), max_size=2),
            "heartbeat_at": times,
            "bogus": text,
        },
    )
    test_cases = st.lists(
        st.builds(
            TestCase,
            name=text,
            classname=text,
            status=st.sampled_from(("passed", "failed", "errored", "skipped")),
            duration=st.floats(0, 1000, allow_nan=False).map(lambda f: round(f, 3)),
            message=text,
            text=text,
            file=text,
        ),
        max_size=3,
    )
    workers = st.builds(
        Worker,
        name=st.sampled_from(_WORKERS),
        host=text,
        labels=st.lists(st.sampled_from(_LABELS), max_size=3).map(tuple),
        slots=st.integers(1, 4),
        running=st.lists(st.integers(1, 9), max_size=3).map(tuple),
        started_at=st.floats(0, 2e9, allow_nan=False).map(lambda f: round(f, 3)),
        heartbeat_at=st.floats(0, 2e9, allow_nan=False).map(lambda f: round(f, 3)),
        state=st.sampled_from(("online", "stopping", "offline")),
    )
    artifacts = st.lists(
        st.builds(
            Artifact, path=text, size=st.integers(0, 2**40), sha256=st.sampled_from(("", "ab"))
        ),
        max_size=3,
    )

    class StoreStateMachine(RuleBasedStateMachine):
        """Few rules, each checking much: more state per example finds more."""

        builds = Bundle("builds")

        def __init__(self) -> None:
            super().__init__()
            self.now = 1_700_000_000.0
            self.model = MemoryStore(clock=self._clock)
            self.store = factory(self._clock)
            self.to_model: dict[int, int] = {}  # store id -> model id
            self.to_store: dict[int, int] = {}  # model id -> store id
            self.logs: set[tuple[int, str]] = set()  # (model build id, step) with data

        def _clock(self) -> float:
            return self.now

        def teardown(self) -> None:
            try:
                self._compare_everything()
            finally:
                self.store.close()

        # comparing

        def _sid(self, model_id: int) -> int:
            return self.to_store.get(model_id, model_id)

        def _mid(self, store_id: int) -> int:
            return self.to_model.get(store_id, store_id)

        def _norm(self, value: Any) -> Any:
            if isinstance(value, Build):
                reuse = None if value.reuse_from is None else self._mid(value.reuse_from)
                value = attrs.evolve(value, id=self._mid(value.id), reuse_from=reuse)
                if not compare_times:
                    value = attrs.evolve(
                        value, queued_at=0.0, started_at=None, finished_at=None, heartbeat_at=None
                    )
            elif isinstance(value, StepRun | Event) and value.build_id is not None:
                value = attrs.evolve(value, build_id=self._mid(value.build_id))
            elif isinstance(value, list | tuple):
                value = type(value)(self._norm(v) for v in value)
            return value

        def _both(self, call: Callable[[Store, Callable[[int], int]], Any]) -> Any:
            """Run ``call`` on the model and on the store (``sid`` maps a model
            build id to the store's); both must return equal results or raise
            the same kind of exception. Returns the model's result."""
            try:
                expected: Any = call(self.model, lambda i: i)
            except (NotFoundError, TypeError, ValueError) as exc:
                with pytest.raises(type(exc)):
                    call(self.store, self._sid)
                return None
            actual = call(self.store, self._sid)
            assert self._norm(expected) == self._norm(actual)
            if isinstance(expected, Build):
                self.to_model[actual.id] = expected.id
                self.to_store[expected.id] = actual.id
            return expected

        def _compare_stats(self, repo: str | None) -> None:
            expected = dict(self.model.build_stats(repo=repo))
            actual = dict(self.store.build_stats(repo=repo))
            mean_expected = expected.pop("mean_duration")
            mean_actual = actual.pop("mean_duration")
            assert expected == actual
            if not compare_times:
                return
            if mean_expected is None:
                assert mean_actual is None
            else:
                assert math.isclose(mean_expected, mean_actual, rel_tol=1e-9, abs_tol=1e-6)

        def _compare_everything(self) -> None:
            every = 10**6
            self._both(lambda s, _: s.list_builds(limit=every))
            self._both(lambda s, _: s.list_repos())
            self._both(lambda s, _: s.list_events(limit=every))
            self._both(lambda s, _: s.list_registered_repos())
            self._both(lambda s, _: s.list_workers())
            self._compare_stats(None)
            for build in self.model.list_builds(limit=every):
                self._on_build("list_steps", build.id)
                self._on_build("list_test_results", build.id)
                self._on_build("list_artifacts", build.id)
            for build_id, step in sorted(self.logs):
                self._on_build("read_log", build_id, step)
                self._on_build("log_size", build_id, step)

        def _on_build(self, method: str, build_id: int, *args: Any) -> Any:
            """``_both`` for a method whose first argument is a build id."""
            return self._both(lambda s, sid: getattr(s, method)(sid(build_id), *args))

        build_ids = st.one_of(builds, builds, builds, st.just(MISSING_ID))

        # writes

        @initialize(target=builds, batch=st.lists(requests, min_size=1, max_size=4))
        def create_queue(self, batch: list[BuildRequest]) -> Any:
            return multiple(*(self.create_build(request, Status.QUEUED) for request in batch))

        @rule(target=builds, request=requests, status=new_statuses)
        def create_build(self, request: BuildRequest, status: Status) -> int:
            self.now += 1.0

            def create(s: Store, sid: Callable[[int], int]) -> Build:
                reuse = None if request.reuse_from is None else sid(request.reuse_from)
                return s.create_build(attrs.evolve(request, reuse_from=reuse), status=status)

            return int(self._both(create).id)

        @rule(build_id=build_ids, changes=update_fields)
        def update_build(self, build_id: int, changes: dict[str, Any]) -> None:
            self._both(lambda s, sid: s.update_build(sid(build_id), **changes))

        @rule(worker=st.sampled_from(("w1", "w2")), build_id=st.none() | build_ids)
        def claim_build(self, worker: str, build_id: int | None) -> None:
            self.now += 0.5
            if build_id is None:
                self._both(lambda s, _: s.claim_build(worker))
            else:
                self._both(lambda s, sid: s.claim_build(worker, build_id=sid(build_id)))

        @rule(build_id=build_ids, worker=st.sampled_from(("w1", "w2")))
        def heartbeat_build(self, build_id: int, worker: str) -> None:
            self.now += 0.5
            self._on_build("heartbeat_build", build_id, worker)
            self._on_build("get_build", build_id)

        @rule(
            build_id=build_ids,
            worker=st.sampled_from(("w1", "w2")),
            status=statuses,
            reason=opt_text,
            finished_at=st.floats(0, 2e9, allow_nan=False).map(lambda f: round(f, 3)),
        )
        def finish_build(self, build_id: int, worker: str, **fields: Any) -> None:
            self._both(lambda s, sid: s.finish_build(sid(build_id), worker, **fields))
            self._on_build("get_build", build_id)

        @rule(worker=workers)
        def save_worker(self, worker: Worker) -> None:
            self._both(lambda s, _: s.save_worker(worker))
            self._both(lambda s, _: s.list_workers())

        @rule(name=st.sampled_from((*_WORKERS, "never")))
        def delete_worker(self, name: str) -> None:
            self._both(lambda s, _: s.delete_worker(name))
            self._both(lambda s, _: s.list_workers())

        @rule(
            build_id=build_ids,
            name=st.sampled_from(_STEPS),
            position=st.integers(0, 3),
            status=statuses,
            reason=opt_text,
            ended_by=st.none() | st.sampled_from(list(EndedBy)),
            exit_code=st.none() | st.integers(-1, 255),
            signal=st.none() | st.integers(1, 31),
            attempt=st.integers(0, 3),
            allow_failure=st.booleans(),
            needs=st.lists(st.sampled_from(_STEPS), max_size=2).map(tuple),
            started_at=times,
            finished_at=times,
            log_bytes=st.integers(0, 2**40),
            log_path=opt_text,
        )
        def save_step(self, build_id: int, **fields: Any) -> None:
            self._both(lambda s, sid: s.save_step(StepRun(build_id=sid(build_id), **fields)))
            self._both(lambda s, sid: s.list_steps(sid(build_id)))

        @rule(
            build_id=build_ids,
            step=st.sampled_from(_STEPS),
            chunks=st.lists(st.binary(max_size=200), min_size=1, max_size=4),
        )
        def append_log(self, build_id: int, step: str, chunks: list[bytes]) -> None:
            for chunk in chunks:
                if self._on_build("append_log", build_id, step, chunk):
                    self.logs.add((build_id, step))

        @rule(build_id=build_ids, step=st.sampled_from(_STEPS), cases=test_cases)
        def add_test_results(self, build_id: int, step: str, cases: list[TestCase]) -> None:
            self._both(lambda s, sid: s.add_test_results(sid(build_id), step, cases))
            self._both(lambda s, sid: s.list_test_results(sid(build_id)))

        @rule(build_id=build_ids, step=st.sampled_from(_STEPS), items=artifacts)
        def add_artifacts(self, build_id: int, step: str, items: list[Artifact]) -> None:
            self._both(lambda s, sid: s.add_artifacts(sid(build_id), step, items))
            self._both(lambda s, sid: s.list_artifacts(sid(build_id)))

        @rule(
            kind=st.sampled_from(("build_queued", "build_cancelled")),
            build_id=st.none() | build_ids,
            actor=text,
            data=st.dictionaries(text, st.none() | st.integers(-5, 5) | text, max_size=2),
        )
        def add_event(self, build_id: int | None, **fields: Any) -> None:
            self.now += 0.25

            def add(s: Store, sid: Callable[[int], int]) -> None:
                store_id = None if build_id is None else sid(build_id)
                s.add_event(Event(at=self.now, build_id=store_id, **fields))

            self._both(add)

        @rule(repo=repos)
        def save_repo(self, repo: Repo) -> None:
            self._both(lambda s, _: s.save_repo(repo))
            self._both(lambda s, _: s.list_registered_repos())

        @rule(repo_id=st.sampled_from(("app", "lib", "é", "never")))
        def delete_repo(self, repo_id: str) -> None:
            self._both(lambda s, _: s.delete_repo(repo_id))
            self._both(lambda s, _: s.list_registered_repos())

        @rule(delivery_id=st.sampled_from(("gh-1", "gh-2", "gl-1")))
        def record_delivery(self, delivery_id: str) -> None:
            self._both(lambda s, _: s.record_delivery(delivery_id))

        # reads

        @rule(build_id=build_ids)
        def get_build(self, build_id: int) -> None:
            self._both(lambda s, sid: s.get_build(sid(build_id)))

        @rule(
            repo=st.none() | st.sampled_from(_REPOS),
            ref=st.none() | st.sampled_from(_REFS),
            status=st.none() | statuses,
            event=st.none() | st.sampled_from(_EVENTS),
            author=st.none() | st.sampled_from(("ada", "bob")),
            before=st.none() | builds,
            limit=st.integers(0, 6),
        )
        def list_builds(self, before: int | None, limit: int, **filters: Any) -> None:
            def page(s: Store, sid: Callable[[int], int], **only: Any) -> list[Build]:
                cursor = None if before is None else sid(before)
                return s.list_builds(before_id=cursor, limit=limit, **only)

            self._both(lambda s, sid: page(s, sid, **filters))
            for name, value in filters.items():  # each filter alone too
                if value is not None:
                    self._both(functools.partial(page, **{name: value}))

        @rule(build_id=st.none() | build_ids, limit=st.integers(0, 5), repo=st.sampled_from(_REPOS))
        def list_the_rest(self, build_id: int | None, limit: int, repo: str) -> None:
            self._both(lambda s, _: s.list_repos())
            self._both(
                lambda s, sid: s.list_events(
                    build_id=None if build_id is None else sid(build_id), limit=limit
                )
            )
            self._compare_stats(None)
            self._compare_stats(repo)

        @precondition(lambda self: self.logs)
        @rule(data=st.data())
        def read_log(self, data: st.DataObject) -> None:
            build_id, step = data.draw(st.sampled_from(sorted(self.logs)))
            size = self.model.log_size(build_id, step)
            for _ in range(3):
                offset = data.draw(st.integers(0, size + 2))
                limit = data.draw(st.none() | st.integers(0, size + 2))
                self._on_build("read_log", build_id, step, offset, limit)
            self._on_build("log_size", build_id, step)

    StoreStateMachine.__name__ = StoreStateMachine.__qualname__ = "StoreStateMachine"
    return StoreStateMachine
