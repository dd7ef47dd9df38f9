"""What a repository's builds are expected to take, and how often they come:
learnt from the builds it has finished, for placement by reservation
(:mod:`sauci.core.reservation`).

A build takes about as long as its repository's last passed builds took
(Jenkins estimates a job's duration from its last successful builds; GitLab
and Buildkite show the same): the median of the last ``last`` (default 5),
which one slow or fast outlier does not move. A repository with no passed
build has no expected duration: placement then does without reservations,
as it did before durations were known. How often a repository's builds
come is its count of builds queued over a recent window, per second.

:class:`DurationHistory` reads them through the store's ``list_builds`` and
keeps them for ``refresh`` seconds, so a round of placement costs no query;
a repository one of whose builds ended (:meth:`DurationHistory.ended`) has
its expected duration read again at the next forecast: at once while it has
none (its first build's end is what a new repository's placement waits
for), at most every ``settle`` seconds once it has one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping

import attrs

from sauci.core.models import Build, Status
from sauci.typing import BuildQuery, Store

__all__ = ["DurationHistory", "Forecast", "arrival_rates", "expected_durations"]


@attrs.frozen
class Forecast:
    """Expected seconds per build and builds per second, by repository."""

    durations: Mapping[str, float] = attrs.field(factory=dict)
    arrivals: Mapping[str, float] = attrs.field(factory=dict)


def expected_durations(builds: Iterable[Build], *, last: int = 5) -> dict[str, float]:
    """Each repository's median duration over its ``last`` newest passed builds
    (of ``builds``); a repository with none has no entry."""
    # Imported here: statistics brings decimal and fractions, which the server's
    # start has no other use for (reservations are off by default).
    import statistics

    seen: dict[str, list[tuple[float, float]]] = {}
    for build in builds:
        seconds = build.duration
        if build.status is Status.PASSED and seconds is not None and seconds >= 0:
            seen.setdefault(build.repo, []).append((build.finished_at or 0.0, seconds))
    return {
        repo: statistics.median(s for _, s in sorted(found, reverse=True)[:last])
        for repo, found in seen.items()
    }


def arrival_rates(builds: Iterable[Build], *, since: float, until: float) -> dict[str, float]:
    """How often each repository's builds were queued in [``since``, ``until``]:
    builds per second between its first and last there."""
    span = until - since
    if span <= 0:
        return {}
    times: dict[str, list[float]] = {}
    for build in builds:
        if since <= build.queued_at <= until:
            times.setdefault(build.repo, []).append(build.queued_at)
    # Builds queued at once (a push of many) are one arrival, not a rate.
    return {
        repo: (len(found) - 1) / (max(found) - min(found))
        for repo, found in times.items()
        if len(found) > 1 and max(found) > min(found)
    }


@attrs.define(eq=False)
class DurationHistory:
    """A store's forecast for some repositories, read at most every ``refresh`` s."""

    store: Store
    refresh: float = attrs.field(default=30.0, kw_only=True)
    settle: float = attrs.field(default=1.0, kw_only=True)
    window: float = attrs.field(default=600.0, kw_only=True)
    last: int = attrs.field(default=5, kw_only=True)
    clock: Callable[[], float] = attrs.field(default=time.time, kw_only=True)
    # repo -> when, secs, rate
    _read: dict[str, tuple[float, float | None, float]] = attrs.field(factory=dict, init=False)
    _secs_at: dict[str, float] = attrs.field(factory=dict, init=False)  # repo -> secs read when
    # Repositories a build of which ended since they were read: set from the
    # thread that sees the end, read by the placing one (single set operations).
    _ended: set[str] = attrs.field(factory=set, init=False)

    def ended(self, repo: str) -> None:
        """A build of ``repo`` ended: read its expected duration again at the next forecast."""
        self._ended.add(repo)

    def forecast(self, repos: Iterable[str]) -> Forecast:
        """The expected durations and arrival rates of ``repos``' builds."""
        now = self.clock()
        for repo in set(repos):
            found = self._read.get(repo)
            if found is None or now - found[0] >= self.refresh:
                self._ended.discard(repo)
                self._read[repo] = (now, self._seconds(repo), self._rate(repo, now))
                self._secs_at[repo] = now
            elif self._news(repo, found[1], now):
                # Only the duration: its last passed builds, one small read (the
                # rate's 200 builds cost 4-14 ms on SQLite here, and ends do not
                # change how often builds come).
                self._ended.discard(repo)
                self._read[repo] = (found[0], self._seconds(repo), found[2])
                self._secs_at[repo] = now
        durations = {r: s for r, (_, s, _) in self._read.items() if s is not None}
        arrivals = {r: rate for r, (_, _, rate) in self._read.items() if rate}
        return Forecast(durations=durations, arrivals=arrivals)

    def _news(self, repo: str, seconds: float | None, now: float) -> bool:
        """Whether a build of ``repo`` ended since its duration was read, and
        that read is to be made again now (at most every ``settle`` s)."""
        if repo not in self._ended:
            return False
        return seconds is None or now - self._secs_at[repo] >= self.settle

    def _seconds(self, repo: str) -> float | None:
        passed = self.store.list_builds(
            BuildQuery(repo=repo, status=Status.PASSED, limit=self.last)
        )
        return expected_durations(passed, last=self.last).get(repo)

    def _rate(self, repo: str, now: float) -> float:
        recent = self.store.list_builds(BuildQuery(repo=repo, limit=200))
        return arrival_rates(recent, since=now - self.window, until=now).get(repo, 0.0)
