"""The values the placement policy works on (:mod:`sauci.core.placement`):
waiting builds, workers' room, placements, and why a build waits."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from sauci.core.resources import Resources, memory_text

__all__ = ["Placement", "WaitingBuild", "WorkerRoom", "never_fits", "why_waits"]


@attrs.frozen(kw_only=True)
class WaitingBuild:
    """A queued build and what it declares it costs."""

    id: int
    repo: str
    cost: Resources
    queued_at: float
    priority: int = 0
    needs: frozenset[str] = frozenset()  # runs_on: labels its worker must have


@attrs.frozen(kw_only=True)
class WorkerRoom:
    """A worker's capacity and what its running builds have reserved of it."""

    name: str
    capacity: Resources
    used_cpus: float = 0.0
    used_memory: int = 0
    max_builds: int | None = None  # `--max-builds`, kept as a cap on the count
    running: int = 0
    labels: frozenset[str] = frozenset()

    def free(self) -> tuple[float, int]:
        return self.capacity.cpus - self.used_cpus, self.capacity.memory - self.used_memory

    def at_max_builds(self) -> bool:
        return self.max_builds is not None and self.running >= self.max_builds

    def full(self) -> bool:
        """No room for any build: no CPU, no memory or no slot left."""
        cpus, memory = self.free()
        return cpus <= 1e-9 or memory <= 0 or self.at_max_builds()

    def takes(self, cost: Resources) -> bool:
        cpus, memory = self.free()
        if self.at_max_builds():
            return False
        return cost.cpus <= cpus + 1e-9 and cost.memory <= memory

    def with_build(self, cost: Resources) -> WorkerRoom:
        return attrs.evolve(
            self,
            used_cpus=self.used_cpus + cost.cpus,
            used_memory=self.used_memory + cost.memory,
            running=self.running + 1,
        )


@attrs.frozen(kw_only=True)
class Placement:
    """What to start where, and why each build left waiting waits."""

    starts: tuple[tuple[int, str], ...]  # (build id, worker name), in start order
    waiting: Mapping[int, str]  # build id -> reason, for the page and `sauci queue`
    wake_at: float | None = None  # when a reservation is due: place again then
    # The head's reservation (build id -> worker, time): give it back as
    # ``reserved`` next round, so a reservation, once made, is kept.
    reserved: Mapping[int, tuple[str, float]] = attrs.field(factory=dict)
    # Workers drained for a heavy build (worker name -> that build's id): they
    # take nothing else that would delay it, a build sent ahead included.
    held: Mapping[str, int] = attrs.field(factory=dict)


def never_fits(cost: Resources, rooms: list[WorkerRoom], needs: frozenset[str]) -> str | None:
    if any(cost.fits(r.capacity) for r in rooms):
        return None
    if not rooms:
        labels = f" with labels: {', '.join(sorted(needs))}" if needs else ""
        return f"no worker{labels} is running"
    return f"no worker can ever hold {cost.describe()} (the largest has {_largest(rooms)})"


def _largest(rooms: list[WorkerRoom]) -> str:
    return max((r.capacity for r in rooms), key=lambda c: (c.cpus, c.memory)).describe()


def why_waits(cost: Resources, rooms: list[WorkerRoom]) -> str:
    if all(r.at_max_builds() for r in rooms):
        return "every worker runs its --max-builds"
    if not any(cost.cpus <= r.free()[0] + 1e-9 for r in rooms):
        return f"no worker with {cost.cpus:g} CPUs free"
    return f"no worker with {memory_text(cost.memory)} free"
