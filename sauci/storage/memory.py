"""MemoryStore: the reference Store, in memory and thread-safe.

Tests use it by default, and the Hypothesis state machine in
``sauci.testing`` checks every other store against it, so its behaviour is
the specification: where a durable store would turn a value into JSON, this
one does too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from sauci.core.models import Build, BuildRequest, EndedBy, Status, StepRun
from sauci.core.records import Artifact, Event, Repo, TestCase, Worker
from sauci.exceptions import NotFoundError
from sauci.storage._closing import Closing
from sauci.storage._fields import check_update_fields, json_copy, new_build
from sauci.storage._log_reads import LogReads
from sauci.typing import BuildQuery, TestPage, TestQuery

__all__ = ["MemoryStore"]


def _copy(value: Build | Event) -> Any:
    # A fresh object with fresh params/data dicts (attrs converters copy
    # them), so callers never share mutable state with the store.
    return attrs.evolve(value)


class MemoryStore(LogReads, Closing):
    """A Store that keeps everything in dicts under one lock; nothing is durable."""

    capabilities: frozenset[str] = frozenset({"atomic_claim", "analytics"})

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        self._next_id = 1
        self._builds: dict[int, Build] = {}
        self._steps: dict[int, dict[str, StepRun]] = {}
        self._logs: dict[tuple[int, str], bytearray] = {}
        self._tests: dict[int, list[tuple[str, TestCase]]] = {}
        self._artifacts: dict[int, list[tuple[str, Artifact]]] = {}
        self._events: list[Event] = []
        self._repos: dict[str, Repo] = {}
        self._workers: dict[str, Worker] = {}
        self._deliveries: set[str] = set()

    @classmethod
    def from_url(cls, url: str) -> MemoryStore:
        """``memory://``: a new, empty store."""
        return cls()

    def _require_build(self, build_id: int) -> Build:
        try:
            return self._builds[build_id]
        except KeyError:
            raise NotFoundError(f"build {build_id} not found") from None

    # builds

    def create_build(self, request: BuildRequest, *, status: Status = Status.QUEUED) -> Build:
        with self._lock:
            build = new_build(self._next_id, request, status=status, queued_at=self._clock())
            self._next_id += 1
            self._builds[build.id] = build
            return _copy(build)

    def get_build(self, build_id: int) -> Build:
        with self._lock:
            return _copy(self._require_build(build_id))

    def update_build(self, build_id: int, **changes: Any) -> Build:
        values = check_update_fields(changes)
        with self._lock:
            build = attrs.evolve(self._require_build(build_id), **values)
            self._builds[build_id] = build
            return _copy(build)

    def claim_build(self, worker: str, *, build_id: int | None = None) -> Build | None:
        with self._lock:
            queued = [
                b
                for b in self._builds.values()
                if b.status is Status.QUEUED and (build_id is None or b.id == build_id)
            ]
            if not queued:
                return None
            best = max(queued, key=lambda b: (b.priority, -b.id))
            now = self._clock()
            build = attrs.evolve(
                best,
                status=Status.RUNNING,
                claimed_by=worker,
                started_at=now,
                heartbeat_at=now,
                reason=None,  # why it waited: over once it runs
            )
            self._builds[build.id] = build
            return _copy(build)

    def heartbeat_build(self, build_id: int, worker: str) -> bool:
        with self._lock:
            build = self._require_build(build_id)
            if build.status is not Status.RUNNING or build.claimed_by != worker:
                return False
            self._builds[build_id] = attrs.evolve(build, heartbeat_at=self._clock())
            return True

    def finish_build(
        self, build_id: int, worker: str, *, status: Status, reason: str | None, finished_at: float
    ) -> Build | None:
        with self._lock:
            build = self._require_build(build_id)
            if build.status is not Status.RUNNING or build.claimed_by != worker:
                return None
            build = attrs.evolve(
                build, status=Status(status), reason=reason, finished_at=finished_at
            )
            self._builds[build_id] = build
            return _copy(build)

    def list_builds(self, query: BuildQuery | None = None, /, **filters: Any) -> list[Build]:
        q = BuildQuery.of(query, **filters)
        with self._lock:
            newest = (self._builds[i] for i in sorted(self._builds, reverse=True))
            return [_copy(b) for b in q.select(newest)]

    # registered repositories and webhook deliveries

    def save_worker(self, worker: Worker) -> Worker:
        with self._lock:
            self._workers[worker.name] = worker
        return worker

    def list_workers(self) -> list[Worker]:
        with self._lock:
            return sorted(self._workers.values(), key=lambda w: w.name)

    def delete_worker(self, name: str) -> None:
        with self._lock:
            self._workers.pop(name, None)

    def save_repo(self, repo: Repo) -> Repo:
        with self._lock:
            self._repos[repo.id] = repo
        return repo

    def list_registered_repos(self) -> list[Repo]:
        with self._lock:
            return sorted(self._repos.values(), key=lambda r: r.id)

    def delete_repo(self, repo_id: str) -> None:
        with self._lock:
            self._repos.pop(repo_id, None)

    def record_delivery(self, delivery_id: str) -> bool:
        with self._lock:
            if delivery_id in self._deliveries:
                return True
            self._deliveries.add(delivery_id)
            return False

    def list_repos(self) -> list[str]:
        with self._lock:
            return sorted({b.repo for b in self._builds.values()})

    # steps

    def save_step(self, step: StepRun) -> StepRun:
        # Normalized as a round trip through a database would: enums from
        # their values, needs a tuple of str.
        stored = attrs.evolve(
            step,
            status=Status(step.status),
            ended_by=None if step.ended_by is None else EndedBy(step.ended_by),
            allow_failure=bool(step.allow_failure),
        )
        with self._lock:
            self._require_build(step.build_id)
            self._steps.setdefault(step.build_id, {})[step.name] = stored
        return step

    def list_steps(self, build_id: int) -> list[StepRun]:
        with self._lock:
            steps = list(self._steps.get(build_id, {}).values())
        return sorted(steps, key=lambda s: (s.position, s.name))

    # logs

    def append_log(self, build_id: int, step: str, data: bytes) -> int:
        with self._lock:
            self._require_build(build_id)
            log = self._logs.setdefault((build_id, step), bytearray())
            log += data
            return len(log)

    def _read_log(self, build_id: int, step: str, offset: int, limit: int | None) -> bytes:
        with self._lock:
            log = self._logs.get((build_id, step), b"")
            end = len(log) if limit is None else offset + limit
            return bytes(log[offset:end])

    def log_size(self, build_id: int, step: str) -> int:
        with self._lock:
            return len(self._logs.get((build_id, step), b""))

    # test results, artifacts, events

    def add_test_results(self, build_id: int, step: str, cases: Sequence[TestCase]) -> None:
        with self._lock:
            self._require_build(build_id)
            # The step's rows are replaced: a write repeated = a write once.
            rows = [r for r in self._tests.get(build_id, ()) if r[0] != step]
            rows.extend((step, attrs.evolve(c, duration=float(c.duration))) for c in cases)
            self._tests[build_id] = rows

    def list_test_results(self, build_id: int) -> list[tuple[str, TestCase]]:
        with self._lock:
            return list(self._tests.get(build_id, ()))

    def page_test_results(self, build_id: int, query: TestQuery) -> TestPage:
        return query.page(self.list_test_results(build_id))

    def add_artifacts(self, build_id: int, step: str, artifacts: Sequence[Artifact]) -> None:
        with self._lock:
            self._require_build(build_id)
            rows = [r for r in self._artifacts.get(build_id, ()) if r[0] != step]
            self._artifacts[build_id] = rows + [(step, a) for a in artifacts]

    def list_artifacts(self, build_id: int) -> list[tuple[str, Artifact]]:
        with self._lock:
            return list(self._artifacts.get(build_id, ()))

    def add_event(self, event: Event) -> None:
        stored = attrs.evolve(event, at=float(event.at), data=json_copy(dict(event.data)))
        with self._lock:
            self._events.append(stored)

    def list_events(self, *, build_id: int | None = None, limit: int = 100) -> list[Event]:
        if limit < 0:
            raise ValueError(f"limit must be >= 0, not {limit}")
        out: list[Event] = []
        with self._lock:
            for event in reversed(self._events):
                if len(out) >= limit:
                    break
                if build_id is None or event.build_id == build_id:
                    out.append(_copy(event))
        return out

    # analytics

    def build_stats(
        self, *, repo: str | None = None, query: BuildQuery | None = None
    ) -> Mapping[str, Any]:
        match = (query or BuildQuery()).filters.matches
        with self._lock:
            builds = [
                b for b in self._builds.values() if (repo is None or b.repo == repo) and match(b)
            ]
        by_status: dict[str, int] = {}
        for b in builds:
            by_status[b.status.value] = by_status.get(b.status.value, 0) + 1
        durations = [b.duration for b in builds if b.duration is not None]
        return {
            "total": len(builds),
            "by_status": dict(sorted(by_status.items())),
            "mean_duration": sum(durations) / len(durations) if durations else None,
        }

    def close(self) -> None:
        """Nothing to release; the data stays readable."""
