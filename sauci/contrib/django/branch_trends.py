"""Per-branch trends for the analytics page: for the busiest branches of a
repository, the duration of their last finished builds and their failure
rate over a rolling window, as line-chart geometry (see svg.line_chart).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sauci.contrib.django.svg import line_chart
from sauci.core.models import Build, Status
from sauci.typing import BuildStore

__all__ = ["branch_trends"]

WINDOW = 10
FAILING = (Status.FAILED, Status.ERRORED)


def _failure_rates(builds: list[Build]) -> list[float | None]:
    """Percent of failed or errored builds among the last WINDOW at each build (oldest first)."""
    rates: list[float | None] = []
    for i in range(len(builds)):
        recent = [
            b for b in builds[max(0, i - WINDOW + 1) : i + 1] if b.status is not Status.SKIPPED
        ]
        failing = sum(1 for b in recent if b.status in FAILING)
        rates.append(100.0 * failing / len(recent) if recent else None)
    return rates


def branch_trends(
    store: BuildStore, repo: str, recent: list[Build], *, limit: int, top: int = 5
) -> list[dict[str, Any]]:
    """The ``top`` branches with most builds among ``recent``, each with its last
    ``limit`` finished builds' duration and rolling failure-rate charts."""
    counts = Counter(b.ref for b in recent if b.ref)
    out = []
    for ref, _n in counts.most_common(top):
        builds = [
            b for b in store.list_builds(repo=repo, ref=ref, limit=limit * 2) if b.status.done
        ]
        builds = builds[:limit][::-1]  # oldest first
        if not builds:
            continue
        durations = [b.duration for b in builds]
        known = [d for d in durations if d is not None]
        rated = [b for b in builds if b.status is not Status.SKIPPED]
        failing = sum(1 for b in rated if b.status in FAILING)
        out.append(
            {
                "branch": builds[-1].branch,
                "count": len(builds),
                "failure_rate": 100.0 * failing / len(rated) if rated else None,
                "mean_duration": sum(known) / len(known) if known else None,
                "duration_chart": line_chart(durations),
                "failure_chart": line_chart(_failure_rates(builds), unit="%"),
            }
        )
    return out
