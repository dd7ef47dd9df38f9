"""TeeStore: a primary store plus secondaries that receive every write.

Reads and decisions (ids, claims, "was this delivery seen") come from the
primary; each secondary replays the primary's outcome: a claim becomes an
update to "running" there, and build ids are mapped, since a secondary may
number its builds differently. A secondary that fails does not fail the
caller: the error is logged, the write goes to that secondary's backlog, and
the backlog is replayed in order with a later write (after a back-off) or
by ``catch_up()``.
A build keeps the primary's ``queued_at`` where the secondary lends its clock
(see ``copy.create_at``).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from sauci._logging import get_logger
from sauci.core.models import (
    Artifact,
    Build,
    BuildRequest,
    Event,
    Repo,
    Status,
    StepRun,
    TestCase,
    Worker,
)
from sauci.exceptions import ConfigError
from sauci.storage.copy import create_at
from sauci.typing import Store

__all__ = ["TeeStore"]

log = get_logger(__name__)

# A write to replay on a secondary: called with (secondary, id map). A build
# the map does not know (created before the tee) keeps its id.
_Write = Callable[[Store, dict[int, int]], object]


class _Secondary:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.ids: dict[int, int] = {}  # primary build id -> this store's
        self.backlog: deque[tuple[str, _Write]] = deque()
        self.lock = threading.Lock()
        # After a failure, writes only queue until then (a dead server may
        # take a socket timeout per attempt): 1 s, doubling up to 60 s.
        self.retry_at = 0.0
        self.pause = 0.0

    def send(self, what: str, write: _Write) -> None:
        with self.lock:
            self.backlog.append((what, write))
            if time.monotonic() >= self.retry_at:
                self.drain()

    def drain(self) -> bool:
        """Replay the backlog in order; False when a write failed (it stays)."""
        while self.backlog:
            what, write = self.backlog[0]
            try:
                write(self.store, self.ids)
            except Exception as exc:
                log.warning(
                    "tee_secondary_failed",
                    store=type(self.store).__name__,
                    write=what,
                    backlog=len(self.backlog),
                    error=str(exc),
                )
                self.pause = min(60.0, max(1.0, self.pause * 2))
                self.retry_at = time.monotonic() + self.pause
                return False
            self.backlog.popleft()
        self.pause = 0.0
        return True


class TeeStore:
    """Reads from ``primary``; every write also goes to each of ``secondaries``."""

    def __init__(self, primary: Store, secondaries: Sequence[Store] = ()) -> None:
        self.primary = primary
        self._secondaries = [_Secondary(s) for s in secondaries]
        # Not "log_files": the secondaries need the log's bytes, so a tee takes chunks.
        self.capabilities: frozenset[str] = primary.capabilities - {"log_files"}

    @classmethod
    def from_url(cls, url: str) -> TeeStore:
        """``tee:PRIMARY_URL;SECONDARY_URL[;...]``."""
        from sauci.storage import open_store

        urls = [u.strip() for u in url.removeprefix("tee:").split(";") if u.strip()]
        if not urls:
            raise ConfigError(f"tee store {url!r} names no store: tee:PRIMARY;SECONDARY...")
        return cls(open_store(urls[0]), [open_store(u) for u in urls[1:]])

    @property
    def secondaries(self) -> list[Store]:
        return [s.store for s in self._secondaries]

    def backlog(self) -> list[int]:
        """Writes waiting for each secondary, in the order of ``secondaries``."""
        return [len(s.backlog) for s in self._secondaries]

    def catch_up(self) -> bool:
        """Replay every backlog now; True when all secondaries are current."""
        results = []
        for s in self._secondaries:
            with s.lock:
                results.append(s.drain())
        return all(results)

    def _tee(self, what: str, write: _Write) -> None:
        for s in self._secondaries:
            s.send(what, write)

    # builds

    def create_build(self, request: BuildRequest, *, status: Status = Status.QUEUED) -> Build:
        build = self.primary.create_build(request, status=status)

        def write(s: Store, ids: dict[int, int]) -> None:
            reuse = None if request.reuse_from is None else ids.get(request.reuse_from)
            again = attrs.evolve(request, reuse_from=reuse)
            ids[build.id] = create_at(s, again, status=status, queued_at=build.queued_at).id

        self._tee(f"create build {build.id}", write)
        return build

    def get_build(self, build_id: int) -> Build:
        return self.primary.get_build(build_id)

    def update_build(self, build_id: int, **changes: Any) -> Build:
        build = self.primary.update_build(build_id, **changes)
        self._tee(
            f"update build {build_id}",
            lambda s, ids: s.update_build(ids.get(build_id, build_id), **changes),
        )
        return build

    def _copy_fields(self, what: str, build: Build, *names: str) -> None:
        """Give the secondaries the primary's values of some fields of a build."""
        fields = {name: getattr(build, name) for name in names}
        self._tee(what, lambda s, ids: s.update_build(ids.get(build.id, build.id), **fields))

    # Compare-and-set operations are decided by the primary alone; the
    # secondaries receive their outcome as plain updates.

    def claim_build(self, worker: str, *, build_id: int | None = None) -> Build | None:
        build = self.primary.claim_build(worker, build_id=build_id)
        if build is not None:
            self._copy_fields(
                f"claim build {build.id}",
                build,
                "status",
                "claimed_by",
                "started_at",
                "heartbeat_at",
            )
        return build

    def heartbeat_build(self, build_id: int, worker: str) -> bool:
        if not self.primary.heartbeat_build(build_id, worker):
            return False
        if self._secondaries:  # the primary's time, read back: its clock decided it
            build = self.primary.get_build(build_id)
            self._copy_fields(f"heartbeat build {build_id}", build, "heartbeat_at")
        return True

    def finish_build(
        self,
        build_id: int,
        worker: str,
        *,
        status: Status,
        reason: str | None,
        finished_at: float,
    ) -> Build | None:
        build = self.primary.finish_build(
            build_id, worker, status=status, reason=reason, finished_at=finished_at
        )
        if build is not None:
            self._copy_fields(f"finish build {build_id}", build, "status", "reason", "finished_at")
        return build

    def list_builds(
        self,
        *,
        repo: str | None = None,
        ref: str | None = None,
        status: Status | None = None,
        event: str | None = None,
        author: str | None = None,
        before_id: int | None = None,
        limit: int = 50,
    ) -> list[Build]:
        return self.primary.list_builds(
            repo=repo,
            ref=ref,
            status=status,
            event=event,
            author=author,
            before_id=before_id,
            limit=limit,
        )

    def list_repos(self) -> list[str]:
        return self.primary.list_repos()

    # registered repositories and webhook deliveries

    def save_repo(self, repo: Repo) -> Repo:
        saved = self.primary.save_repo(repo)
        self._tee(f"save repo {repo.id}", lambda s, ids: s.save_repo(repo))
        return saved

    def list_registered_repos(self) -> list[Repo]:
        return self.primary.list_registered_repos()

    def delete_repo(self, repo_id: str) -> None:
        self.primary.delete_repo(repo_id)
        self._tee(f"delete repo {repo_id}", lambda s, ids: s.delete_repo(repo_id))

    def record_delivery(self, delivery_id: str) -> bool:
        seen = self.primary.record_delivery(delivery_id)
        if not seen:
            self._tee("record delivery", lambda s, ids: s.record_delivery(delivery_id))
        return seen

    # workers

    def save_worker(self, worker: Worker) -> Worker:
        saved = self.primary.save_worker(worker)
        self._tee(f"save worker {worker.name}", lambda s, ids: s.save_worker(worker))
        return saved

    def list_workers(self) -> list[Worker]:
        return self.primary.list_workers()

    def delete_worker(self, name: str) -> None:
        self.primary.delete_worker(name)
        self._tee(f"delete worker {name}", lambda s, ids: s.delete_worker(name))

    # steps, logs, results

    def save_step(self, step: StepRun) -> StepRun:
        saved = self.primary.save_step(step)
        self._tee(
            f"save step {step.name!r} of build {step.build_id}",
            lambda s, ids: s.save_step(
                attrs.evolve(step, build_id=ids.get(step.build_id, step.build_id))
            ),
        )
        return saved

    def list_steps(self, build_id: int) -> list[StepRun]:
        return self.primary.list_steps(build_id)

    def append_log(self, build_id: int, step: str, data: bytes) -> int:
        size = self.primary.append_log(build_id, step, data)
        data = bytes(data)
        self._tee(
            f"append log of {step!r} of build {build_id}",
            lambda s, ids: s.append_log(ids.get(build_id, build_id), step, data),
        )
        return size

    def read_log(
        self, build_id: int, step: str, offset: int = 0, limit: int | None = None
    ) -> bytes:
        return self.primary.read_log(build_id, step, offset, limit)

    def log_size(self, build_id: int, step: str) -> int:
        return self.primary.log_size(build_id, step)

    def add_test_results(self, build_id: int, step: str, cases: Sequence[TestCase]) -> None:
        self.primary.add_test_results(build_id, step, cases)
        cases = list(cases)
        self._tee(
            f"add test results of build {build_id}",
            lambda s, ids: s.add_test_results(ids.get(build_id, build_id), step, cases),
        )

    def list_test_results(self, build_id: int) -> list[tuple[str, TestCase]]:
        return self.primary.list_test_results(build_id)

    def add_artifacts(self, build_id: int, step: str, artifacts: Sequence[Artifact]) -> None:
        self.primary.add_artifacts(build_id, step, artifacts)
        artifacts = list(artifacts)
        self._tee(
            f"add artifacts of build {build_id}",
            lambda s, ids: s.add_artifacts(ids.get(build_id, build_id), step, artifacts),
        )

    def list_artifacts(self, build_id: int) -> list[tuple[str, Artifact]]:
        return self.primary.list_artifacts(build_id)

    def add_event(self, event: Event) -> None:
        self.primary.add_event(event)

        def write(s: Store, ids: dict[int, int]) -> None:
            bid = event.build_id
            s.add_event(event if bid is None else attrs.evolve(event, build_id=ids.get(bid, bid)))

        self._tee(f"add event {event.kind!r}", write)

    def list_events(self, *, build_id: int | None = None, limit: int = 100) -> list[Event]:
        return self.primary.list_events(build_id=build_id, limit=limit)

    def build_stats(self, *, repo: str | None = None) -> Mapping[str, Any]:
        return self.primary.build_stats(repo=repo)

    def close(self) -> None:
        """Close every store (a backlog not yet replayed is logged and dropped)."""
        for s in self._secondaries:
            if s.backlog:
                log.warning(
                    "tee_backlog_dropped", store=type(s.store).__name__, writes=len(s.backlog)
                )
            s.store.close()
        self.primary.close()

    def __enter__(self) -> TeeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
