"""The flakiest tests of a repository for the analytics page: tests that passed
and failed on the same commit, counted by commit. Only commits built more than
once can show it, and only tests that failed there are looked up, so a
62,000-test build costs a few indexed queries, not a read of every result.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sauci.core.models import Build
from sauci.typing import ResultStore, TestQuery

__all__ = ["flaky_counts"]

# Failing tests looked up per commit: bounds the page's queries.
MAX_CANDIDATES = 100


def flaky_counts(store: ResultStore, builds: Sequence[Build]) -> dict[str, int]:
    """``classname.name`` -> on how many commits it both passed and failed."""
    by_sha: dict[str, list[Build]] = defaultdict(list)
    for build in builds:
        if build.sha and build.status.done:
            by_sha[build.sha].append(build)
    counts: dict[str, int] = defaultdict(int)
    for group in by_sha.values():
        if len(group) < 2:
            continue
        failing: dict[tuple[str, str], None] = {}
        for build in group:
            for status in ("failed", "errored"):
                query = TestQuery(status=status, limit=MAX_CANDIDATES)
                for _step, case in store.page_test_results(build.id, query).rows:
                    failing.setdefault((case.classname, case.name))
        for classname, name in list(failing)[:MAX_CANDIDATES]:
            passed = TestQuery(status="passed", name=name, classname=classname, limit=1)
            if any(store.page_test_results(b.id, passed).rows for b in group):
                counts[f"{classname}.{name}" if classname else name] += 1
    return dict(counts)
