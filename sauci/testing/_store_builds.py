"""Conformance tests of the BuildStore part: create and get, update (every
field, unknown fields), listing with every filter and keyset paging, the
repositories built and the statistics."""

from __future__ import annotations

import math
import time
from typing import Any, ClassVar

import attrs
import pytest

from sauci.core.models import BuildRequest, Status
from sauci.exceptions import NotFoundError, StoreError
from sauci.testing._store_support import MISSING_ID, StorePartConformance, build_request
from sauci.typing import BuildQuery, BuildStore, Store

__all__ = ["BuildStoreConformance"]


class BuildStoreConformance(StorePartConformance):
    """Creating, reading, updating and listing builds; their statistics."""

    parts: ClassVar[tuple[type, ...]] = (BuildStore,)

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
        ids = [store.create_build(build_request()).id for _ in range(5)]
        assert sorted(set(ids)) == ids

    def test_create_build_with_a_status(self, store: Store) -> None:
        build = store.create_build(build_request(), status=Status.SKIPPED)
        assert Status.SKIPPED == build.status
        assert Status.SKIPPED == store.get_build(build.id).status

    def test_get_build_returns_the_recorded_build(self, store: Store) -> None:
        build = store.create_build(build_request(params={"a": "1"}))
        assert build == store.get_build(build.id)
        assert isinstance(store.get_build(build.id).status, Status)

    def test_get_missing_build_raises_not_found(self, store: Store) -> None:
        with pytest.raises(NotFoundError, match=str(MISSING_ID)) as info:
            store.get_build(MISSING_ID)
        assert isinstance(info.value, StoreError)
        assert isinstance(info.value, LookupError)

    def test_create_build_keeps_reuse_from(self, store: Store) -> None:
        first = store.create_build(build_request())
        rerun = store.create_build(build_request(reuse_from=first.id, event="rerun"))
        assert (first.id, None) == (rerun.reuse_from, rerun.cancel_requested)
        assert rerun == store.get_build(rerun.id)
        assert first.reuse_from is None

    # update
    def test_update_build_changes_every_allowed_field(self, store: Store) -> None:
        build = store.create_build(build_request())
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
        build = store.create_build(build_request())
        assert Status.PASSED == store.update_build(build.id, status="passed").status

    def test_update_build_can_clear_fields(self, store: Store) -> None:
        build = store.create_build(build_request())
        store.update_build(build.id, reason="x", started_at=5.0, claimed_by="w")
        updated = store.update_build(build.id, reason=None, started_at=None, claimed_by=None)
        assert (None, None, None) == (updated.reason, updated.started_at, updated.claimed_by)

    def test_update_build_without_changes_returns_the_build(self, store: Store) -> None:
        build = store.create_build(build_request())
        assert build == store.update_build(build.id)

    def test_update_build_rejects_unknown_fields(self, store: Store) -> None:
        build = store.create_build(build_request())
        for field in ("repo", "params", "id", "queued_at", "nonsense"):
            with pytest.raises(TypeError, match=field):
                store.update_build(build.id, **{field: "x"})
        with pytest.raises(TypeError):
            store.update_build(build.id, status=Status.PASSED, bogus=1)
        assert build == store.get_build(build.id)

    def test_update_missing_build_raises_not_found(self, store: Store) -> None:
        with pytest.raises(NotFoundError):
            store.update_build(MISSING_ID, status=Status.PASSED)

    # list
    def test_list_builds_is_newest_first(self, store: Store) -> None:
        ids = [store.create_build(build_request()).id for _ in range(4)]
        assert ids[::-1] == [b.id for b in store.list_builds()]
        assert [] == store.list_builds(limit=0)
        assert ids[:1:-1] == [b.id for b in store.list_builds(limit=2)]

    def test_list_builds_of_an_empty_store(self, store: Store) -> None:
        assert [] == store.list_builds()
        assert [] == store.list_repos()

    def test_list_builds_filters(self, store: Store) -> None:
        a = store.create_build(
            build_request("a", ref="refs/heads/main", event="push", author="ada")
        )
        b = store.create_build(
            build_request("b", ref="refs/heads/main", event="cron", author="bob")
        )
        c = store.create_build(build_request("a", ref="refs/heads/dev", event="push", author="bob"))
        d = store.create_build(build_request("a", ref="refs/heads/main", event="manual"))
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

    def test_list_builds_takes_a_build_query_or_keywords_alike(self, store: Store) -> None:
        a = store.create_build(build_request("a", author="ada"))
        store.create_build(build_request("b", author="ada"))
        c = store.create_build(build_request("a", author="bob"))
        query = BuildQuery(repo="a", limit=10)
        assert [c.id, a.id] == [x.id for x in store.list_builds(query)]
        assert store.list_builds(query) == store.list_builds(repo="a", limit=10)
        # Keywords given with a query change it: here, the author filter.
        assert [a.id] == [x.id for x in store.list_builds(query, author="ada")]
        assert [a.id] == [x.id for x in store.list_builds(BuildQuery(before_id=c.id, repo="a"))]

    def test_list_builds_rejects_unknown_filters_and_negative_limits(self, store: Store) -> None:
        with pytest.raises(TypeError, match="colour"):
            store.list_builds(colour="red")
        with pytest.raises(ValueError, match="limit"):
            store.list_builds(limit=-1)

    def test_list_builds_pages_with_before_id(self, store: Store) -> None:
        for i in range(11):
            store.create_build(build_request("a" if i % 2 else "b"))
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

    def test_list_builds_finds_text_in_message_author_ref_and_sha(self, store: Store) -> None:
        a = store.create_build(build_request(message="Fix the Parser", author="ada"))
        b = store.create_build(build_request(ref="refs/heads/feature/PARSER-2", sha="ab12" * 10))
        c = store.create_build(build_request(author="Bob <bob@parser.example>", message="50%_off"))
        store.create_build(build_request(message="unrelated"))

        def ids(**kw: Any) -> list[int]:
            return [x.id for x in store.list_builds(**kw)]

        assert [c.id, b.id, a.id] == ids(text="parser")
        assert [b.id] == ids(text="B12AB")  # a piece of the sha, any case
        assert [c.id] == ids(text="0%_")  # % and _ are literal
        assert [] == ids(text="x%")
        assert [b.id] == ids(text="parser", ref="refs/heads/feature/PARSER-2")

    def test_list_builds_takes_search_text_literally(self, store: Store) -> None:
        """% _ quotes and FTS5 syntax are text to find, never an error or an operator."""
        odd = "say \"hi\" NEAR(a b) * OR x: -y ^z \\ 100%_ 'q' ab"
        a = store.create_build(build_request(message=odd))
        store.create_build(build_request(message="plain words"))
        texts = ['NEAR(', '"', '""', '"hi"', "'q'", "*", "OR x", "x:", "-y", "^z", "\\",
                 "100%_", "a b)", "%", "_", "(", "{", "message:", 'hi" OR "plain', "plain*",
                 "ab", "AB", "b", "NOT", "a\x00b", "\n"]  # fmt: skip
        for text in texts:
            expected = [a.id] if text.lower() in odd.lower() else []
            assert expected == [x.id for x in store.list_builds(text=text)], text
            assert len(expected) == store.build_stats(query=BuildQuery(text=text))["total"], text

    def test_list_builds_finds_a_build_by_its_changed_ref_and_sha(self, store: Store) -> None:
        a = store.create_build(build_request(ref="refs/heads/old-name", sha="0" * 40))
        store.update_build(a.id, ref="refs/heads/new-name", sha="f" * 40)
        assert [a.id] == [x.id for x in store.list_builds(text="new-name")]
        assert [a.id] == [x.id for x in store.list_builds(text="FFFF")]
        assert [] == store.list_builds(text="old-name")
        assert [] == store.list_builds(text="0000")

    def test_list_builds_pages_back_with_after_id(self, store: Store) -> None:
        made = [store.create_build(build_request("a" if i % 3 else "b")).id for i in range(10)]
        every = [x.id for x in store.list_builds(repo="a", limit=100)]
        older = store.list_builds(repo="a", before_id=every[2], limit=3)
        assert every[3:6] == [x.id for x in older]
        # The newer page from the older page's first build: the page before it.
        newer = store.list_builds(repo="a", after_id=older[0].id, limit=3)
        assert every[0:3] == [x.id for x in newer]
        assert every[1:3] == [x.id for x in store.list_builds(repo="a", after_id=every[3], limit=2)]
        assert [] == store.list_builds(after_id=made[-1])

    def test_build_stats_of_a_query_count_its_matches(self, store: Store) -> None:
        a = store.create_build(build_request("a", ref="refs/heads/main", message="fix x"))
        store.create_build(build_request("a", ref="refs/heads/dev", message="fix y"))
        store.create_build(build_request("b", ref="refs/heads/main", message="fix z"))
        store.update_build(a.id, status=Status.FAILED)
        stats = store.build_stats(query=BuildQuery(text="FIX", ref="refs/heads/main", limit=1))
        assert (2, {"failed": 1, "queued": 1}) == (stats["total"], dict(stats["by_status"]))
        stats = store.build_stats(repo="a", query=BuildQuery(text="fix", before_id=1))
        assert (2, {"failed": 1, "queued": 1}) == (stats["total"], dict(stats["by_status"]))
        assert 0 == store.build_stats(query=BuildQuery(text="nothing"))["total"]

    def test_list_repos_is_sorted_and_distinct(self, store: Store) -> None:
        for repo in ("zeta", "Alpha", "acme/app", "zeta", "acme/app", "b"):
            store.create_build(build_request(repo))
        assert ["Alpha", "acme/app", "b", "zeta"] == store.list_repos()

    def test_create_build_keeps_the_attempt_and_has_no_labels_or_heartbeat(
        self, store: Store
    ) -> None:
        first = store.create_build(build_request())
        again = store.create_build(build_request(attempt=3))
        assert (1, (), None) == (first.attempt, first.runs_on, first.heartbeat_at)
        assert (3, (), None) == (again.attempt, again.runs_on, again.heartbeat_at)
        assert [again, first] == store.list_builds()

    def test_update_build_sets_runs_on_and_heartbeat_at(self, store: Store) -> None:
        build = store.create_build(build_request())
        updated = store.update_build(build.id, runs_on=["linux", "gpu", "é"], heartbeat_at=12.5)
        assert attrs.evolve(build, runs_on=("linux", "gpu", "é"), heartbeat_at=12.5) == updated
        assert updated == store.get_build(build.id)
        cleared = store.update_build(build.id, runs_on=(), heartbeat_at=None)
        assert build == cleared == store.get_build(build.id)

    # analytics
    def test_build_stats(self, store: Store) -> None:
        assert {"total": 0, "by_status": {}, "mean_duration": None} == dict(store.build_stats())
        a1 = store.create_build(build_request("a"))
        a2 = store.create_build(build_request("a"))
        store.create_build(build_request("a"))
        b1 = store.create_build(build_request("b"))
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
        a = store.create_build(build_request())
        b = store.create_build(build_request())
        store.update_build(a.id, status=Status.ERRORED, finished_at=50.0)
        store.update_build(b.id, status=Status.RUNNING, started_at=50.0)
        assert store.build_stats()["mean_duration"] is None
