"""Conformance tests of the ResultStore part: test results and artifacts."""

from __future__ import annotations

from typing import ClassVar

import pytest

from sauci.core.models import Artifact, TestCase
from sauci.exceptions import NotFoundError
from sauci.testing._store_support import MISSING_ID, StorePartConformance, build_request
from sauci.typing import ResultStore, Store, TestQuery

__all__ = ["ResultStoreConformance"]


class ResultStoreConformance(StorePartConformance):
    """Test results and artifacts, in insertion order."""

    parts: ClassVar[tuple[type, ...]] = (ResultStore,)

    # test results, artifacts
    def test_test_results_round_trip_in_insertion_order(self, store: Store) -> None:
        build = store.create_build(build_request())
        other = store.create_build(build_request())
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
        store.add_test_results(other.id, "unit", unit[:1])
        expected = [("unit", unit[0]), ("unit", unit[1]), ("integration", integration[0])]
        assert expected == store.list_test_results(build.id)
        assert [("unit", unit[0])] == store.list_test_results(other.id)
        assert [] == store.list_test_results(MISSING_ID)

    def test_a_page_of_test_results_is_filtered_failures_first(self, store: Store) -> None:
        build = store.create_build(build_request())
        other = store.create_build(build_request())
        cases = [
            TestCase(name=f"test_{i}", classname="pkg.Mod_x" if i % 2 else "pkg.Other", status=s)
            for i, s in enumerate(["passed", "failed", "skipped", "passed", "errored", "failed"])
        ]
        cases.append(TestCase(name="100%_done", status="xfail"))
        store.add_test_results(build.id, "unit", cases[:4])
        store.add_test_results(build.id, "e2e", cases[4:])
        store.add_test_results(other.id, "unit", [TestCase(name="test_1", status="failed")])
        page = store.page_test_results(build.id, TestQuery(limit=3))
        assert (("unit", cases[1]), ("e2e", cases[5]), ("e2e", cases[4])) == page.rows
        assert 7 == page.matched
        expected = {"passed": 2, "failed": 2, "skipped": 1, "errored": 1, "xfail": 1}
        assert expected == dict(page.counts)
        rest = store.page_test_results(build.id, TestQuery(offset=3, limit=10)).rows
        assert [cases[2], cases[0], cases[3], cases[6]] == [c for _, c in rest]
        failed = store.page_test_results(build.id, TestQuery(status="failed"))
        assert (2, [cases[1], cases[5]]) == (failed.matched, [c for _, c in failed.rows])
        # text: a substring of the name or classname, case ignored; % and _ are literal
        found = store.page_test_results(build.id, TestQuery(text="MOD_X"))
        assert [cases[1], cases[5], cases[3]] == [c for _, c in found.rows]
        assert [cases[6]] == [
            c for _, c in store.page_test_results(build.id, TestQuery(text="0%_")).rows
        ]
        assert () == store.page_test_results(build.id, TestQuery(text="x%")).rows
        exact = TestQuery(name="test_1", classname="pkg.Mod_x")
        assert [cases[1]] == [c for _, c in store.page_test_results(build.id, exact).rows]
        empty = store.page_test_results(MISSING_ID, TestQuery())
        assert ((), 0, {}) == (empty.rows, empty.matched, dict(empty.counts))

    def test_artifacts_round_trip_in_insertion_order(self, store: Store) -> None:
        build = store.create_build(build_request())
        first = [Artifact(path="dist/app.whl", size=2**33, sha256="ab" * 32)]
        second = [Artifact(path="report.html", size=0), Artifact(path="a/b/c.txt", size=3)]
        store.add_artifacts(build.id, "build", first)
        store.add_artifacts(build.id, "report", second)
        expected = [("build", first[0]), ("report", second[0]), ("report", second[1])]
        assert expected == store.list_artifacts(build.id)
        assert [] == store.list_artifacts(MISSING_ID)

    def test_a_step_results_written_again_are_stored_once(self, store: Store) -> None:
        # A write whose answer was lost is sent again: it must not duplicate.
        build = store.create_build(build_request())
        cases = [TestCase(name="test_a"), TestCase(name="test_b", status="failed")]
        items = [Artifact(path="dist/a.whl", size=3), Artifact(path="r.html", size=0)]
        for _ in range(2):
            store.add_test_results(build.id, "unit", cases)
            store.add_artifacts(build.id, "build", items)
        store.add_test_results(build.id, "lint", [TestCase(name="test_c")])
        assert [("unit", c) for c in cases] + [("lint", TestCase(name="test_c"))] == (
            store.list_test_results(build.id)
        )
        assert [("build", a) for a in items] == store.list_artifacts(build.id)
        # a step's later write replaces its earlier one (a retried step's results)
        store.add_test_results(build.id, "unit", cases[1:])
        store.add_artifacts(build.id, "build", [])
        assert [("lint", TestCase(name="test_c")), ("unit", cases[1])] == (
            store.list_test_results(build.id)
        )
        assert [] == store.list_artifacts(build.id)
        assert 2 == store.page_test_results(build.id, TestQuery()).matched

    def test_results_of_a_missing_build_raise_not_found(self, store: Store) -> None:
        with pytest.raises(NotFoundError):
            store.add_test_results(MISSING_ID, "unit", [TestCase(name="t")])
        with pytest.raises(NotFoundError):
            store.add_artifacts(MISSING_ID, "build", [Artifact(path="a", size=1)])
