"""Reservations for the placement policy: backfilling with expected durations.

This is backfilling as Slurm's backfill scheduler does it, with the
expected durations every CI system keeps (Jenkins' estimated duration: a
repository's builds take about as long as its last ones did,
:mod:`sauci.core.durations`). The build waiting longest (the head) is
given a reservation: a worker and the time it is expected to start there,
from the expected ends of the builds running on it. Other builds start on
that worker only if they are expected to end by then or fit beside the
head; elsewhere they start as they fit. A backfilled build never delays
the head (while the durations hold).

One rule beyond backfilling keeps light builds from waiting behind heavy
ones (a heavy build that fills the last worker with room shuts every
light build out for its whole duration): a build heavier than the builds
of another repository starts, or is reserved, only where those lighter
builds, the waiting ones and those expected to come (each repository's
rate of builds), are expected to start within ``wait_bound`` of being
queued (:mod:`sauci.core.lighter_waits`). The head's reservation is the
time at or after the earliest such time that lets the next heavy build
start earliest (the queue's next reservation, as conservative backfilling
keeps): a heavy build that closes a worker early can leave a backlog of
light ones that holds the next heavy build back longer. With a duration
unknown the rule holds nothing back, and past ``starve_after`` the head
starts as soon as its worker has room.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import attrs

from sauci.core.resources import Resources

__all__ = ["EPS", "INF", "Lighter", "Outlook", "RunningBuild"]

INF = math.inf
EPS = 1e-6
OVERDUE = 1e-3  # how soon a build past its expected end is expected to end


@attrs.frozen(kw_only=True)
class RunningBuild:
    """A build holding room on a worker: running, or sent and not yet claimed."""

    id: int
    repo: str
    worker: str
    cost: Resources
    started_at: float
    queued_at: float | None = None


@attrs.frozen
class Lighter:
    """A build that may need room: waiting (``queued_at``) or running (``waiting`` False)."""

    repo: str
    cost: Resources
    needs: frozenset[str]
    queued_at: float | None
    waiting: bool


@attrs.frozen
class _Use:
    start: float
    end: float  # INF: not known
    cost: Resources
    planned: bool = False  # a reservation: holds room from start to end, not now


class Outlook:
    """The workers' expected room over time, for one call of ``place``."""

    def __init__(
        self,
        free: Mapping[str, tuple[float, int]],
        labels: Mapping[str, frozenset[str]],
        running: Iterable[RunningBuild],
        durations: Mapping[str, float],
        *,
        now: float,
        wait_bound: float,
        arrivals: Mapping[str, float] | None = None,
    ) -> None:
        self.free_now = dict(free)
        self.labels = labels
        self.durations = durations
        self.arrivals = arrivals or {}
        self.now = now
        self.wait_bound = wait_bound
        self.uses: dict[str, list[_Use]] = {name: [] for name in free}
        self.planned: list[tuple[str, _Use]] = []
        for run in running:
            if run.worker in self.uses:
                end = self._end(run.repo, run.started_at)
                self.uses[run.worker].append(_Use(now, end, run.cost))

    def _end(self, repo: str, started: float) -> float:
        seconds = self.durations.get(repo)
        # A build past its expected end is expected to end any moment (not now:
        # its room is not free yet).
        return INF if seconds is None else max(started + seconds, self.now + OVERDUE)

    def started(self, worker: str, repo: str, cost: Resources) -> None:
        """Note a build started on ``worker`` now."""
        self.uses[worker].append(_Use(self.now, self._end(repo, self.now), cost))
        cpus, memory = self.free_now[worker]
        self.free_now[worker] = (cpus - cost.cpus, memory - cost.memory)

    def unstart(self, worker: str, free: tuple[float, int]) -> None:
        self.uses[worker].pop()
        self.free_now[worker] = free

    def plan(self, worker: str, at: float, repo: str, cost: Resources) -> None:
        """Note a reservation."""
        seconds = self.durations.get(repo)
        end = INF if seconds is None else at + seconds
        self.planned.append((worker, _Use(at, end, cost, planned=True)))

    def unplan(self, keep: int = 0) -> None:
        del self.planned[keep:]

    # --- room over time -------------------------------------------------

    def workers(self, needs: frozenset[str]) -> list[str]:
        return [w for w in self.uses if needs <= self.labels.get(w, frozenset())]

    def uses_of(self, worker: str) -> list[_Use]:
        return self.uses[worker] + [use for name, use in self.planned if name == worker]

    def free_at(self, worker: str, t: float) -> tuple[float, int]:
        cpus, memory = self.free_now[worker]
        for use in self.uses_of(worker):
            if not use.planned and use.end <= t + EPS:
                cpus, memory = cpus + use.cost.cpus, memory + use.cost.memory
            elif use.planned and use.start <= t + EPS < use.end:
                cpus, memory = cpus - use.cost.cpus, memory - use.cost.memory
        return cpus, memory

    def fits(self, worker: str, cost: Resources, t: float) -> bool:
        cpus, memory = self.free_at(worker, t)
        return cost.cpus <= cpus + 1e-9 and cost.memory <= memory

    def fit_time(self, worker: str, cost: Resources) -> float:
        """The earliest time ``cost`` fits on ``worker`` for as long as the
        repository's builds take (INF: not known)."""
        uses = self.uses_of(worker)
        ends = sorted({u.end for u in uses if self.now < u.end < INF})
        for t in [self.now, *ends]:
            later = [u.start for u in uses if u.planned and t < u.start < INF]
            if self.fits(worker, cost, t) and all(self.fits(worker, cost, s) for s in later):
                return t
        return INF

    def overcommitted(self, worker: str) -> bool:
        """Whether a reservation on ``worker`` would find its room taken."""
        for name, use in self.planned:
            cpus, memory = self.free_at(worker, use.start)
            if name == worker and (cpus < -1e-9 or memory < 0):
                return True
        return False

    def known(self) -> bool:
        return all(u.end < INF for uses in self.uses.values() for u in uses)

    def horizon(self) -> float:
        """When every known use has ended."""
        ends = [u.end for w in self.uses for u in self.uses_of(w) if u.end < INF]
        return max(ends, default=self.now)
