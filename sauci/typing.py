"""The contracts a plugin implements: Source, Sandbox, Store (and its parts), LogWriter, Runner.

``typing.Protocol`` classes, so a plugin imports nothing from SauCI to satisfy
one; adapters are handed to each other as instances and declare what they can
do in ``capabilities`` (a frozenset of strings). A Store is the combination of
small per-entity parts (BuildStore, QueueStore, StepStore, LogStore,
ResultStore, RepoStore, WorkerStore, EventStore): code asks for the one it needs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from sauci.core.models import (
    Build,
    BuildRequest,
    Status,
    Step,
    StepResult,
    StepRun,
)

if TYPE_CHECKING:
    from sauci.core.records import Artifact, Event, Repo, TestCase, Worker

__all__ = [
    "STORE_PARTS",
    "BuildQuery",
    "BuildStore",
    "Commit",
    "EventStore",
    "LogStore",
    "LogWriter",
    "QueueStore",
    "RepoStore",
    "ResultStore",
    "Runner",
    "Sandbox",
    "Source",
    "StepStore",
    "Store",
    "WorkerStore",
    "Workspace",
]


@attrs.frozen(kw_only=True)
class Commit:
    """A commit as a Source reads it: full ``sha``, ``ref`` read from ("" when none),
    ``author`` ("Name <email>"), ``message`` (from a pusher: show it escaped)."""

    sha: str
    ref: str
    author: str
    message: str


@runtime_checkable
class Workspace(Protocol):
    """A directory a :class:`Source` lends one build, made a commit's tree by :meth:`reset`."""

    @property
    def path(self) -> Path:
        """Where the workspace is (it may not exist before :meth:`reset`)."""

    def reset(self, sha: str) -> Path:
        """Make :attr:`path` exactly the tree of ``sha``, nothing else in it; returns it."""

    def release(self, *, tidy: bool = False) -> None:
        """Hand it back (twice is harmless); ``tidy``: nothing of the build runs any more."""


@runtime_checkable
class Source(Protocol):
    """Where a build's code comes from: one repository, local or known by URL.

    SourceError when the repository cannot answer. Revisions and paths come
    from pushes: one starting with "-" is never an option, and a pushed
    repository's hooks and configuration never run on the server.
    """

    def resolve(self, rev: str = "HEAD") -> str:
        """The full sha of the commit ``rev`` (a sha, a full ref or a branch) names now."""

    def resolve_commit(self, rev: str = "HEAD") -> Commit:
        """:meth:`resolve` with the commit's author and message (``ref`` is "")."""

    def read_file(self, sha: str, path: str) -> str | None:
        """Text of the plain file ``path`` at ``sha``, None if none; a symlink is a SourceError."""

    def reserve(self, root: Path) -> Workspace:
        """A workspace under ``root`` for one build (a kept slot or a new directory)."""


@runtime_checkable
class LogWriter(Protocol):
    """Where a sandbox sends a step's output, as raw bytes in large pieces."""

    def write(self, data: bytes) -> None:
        """Take the next piece of output. Never raises for bad bytes."""

    def flush(self) -> None:
        """Send what is buffered on (sandboxes call this when output goes quiet)."""

    @property
    def exceeded(self) -> bool:
        """True once the size cap was hit; later writes are dropped."""


@runtime_checkable
class Sandbox(Protocol):
    """Runs one step's command and owns its process lifetime.

    Capabilities a sandbox may declare: ``"limits.memory"``,
    ``"limits.processes"``, ``"limits.cpu"``, ``"isolates_filesystem"``,
    ``"isolates_network"``, ``"services"``, ``"image"``.
    """

    capabilities: frozenset[str]

    def run(
        self,
        step: Step,
        workspace: Path,
        log: LogWriter,
        *,
        env: Mapping[str, str],
        cancel: threading.Event,
        label: str,
    ) -> StepResult:
        """Run ``step`` in ``workspace`` with exactly ``env``; return its result.

        The step's command runs in ``workspace / step.workdir``. Output goes
        to ``log``. On ``step.timeout`` or when ``cancel`` is set, end the
        whole process tree (SIGTERM, a grace period, SIGKILL) and report
        ``ended_by``. ``label`` is unique per build and step (for cgroup or
        container names, so leftovers can be found after a crash). A failed
        command is a result; raise SandboxError only when the sandbox itself
        cannot work.
        """

    def close(self) -> None:
        """Release anything the sandbox holds."""


@attrs.frozen(kw_only=True)
class BuildQuery:
    """Which builds ``list_builds`` answers: filters (None: any), newest first,
    ``before_id`` the keyset cursor for the next page, at most ``limit``."""

    repo: str | None = None
    ref: str | None = None
    status: Status | None = attrs.field(default=None, converter=attrs.converters.optional(Status))
    event: str | None = None
    author: str | None = None
    before_id: int | None = None
    limit: int = attrs.field(default=50)

    @limit.validator
    def _check_limit(self, _attribute: object, value: int) -> None:
        if value < 0:
            raise ValueError(f"limit must be >= 0, not {value}")

    def matches(self, build: Build) -> bool:
        """Whether ``build`` passes the filters and lies before ``before_id``."""
        return (
            (self.repo is None or build.repo == self.repo)
            and (self.ref is None or build.ref == self.ref)
            and (self.status is None or build.status is self.status)
            and (self.event is None or build.event == self.event)
            and (self.author is None or build.author == self.author)
            and (self.before_id is None or build.id < self.before_id)
        )

    @classmethod
    def of(cls, query: BuildQuery | None = None, /, **filters: Any) -> BuildQuery:
        """The query ``list_builds`` was given: a BuildQuery, keywords, or both
        (keywords win). An unknown keyword is a TypeError, as for a function."""
        try:
            return attrs.evolve(query or _ANY_BUILD, **filters)
        except TypeError as exc:
            raise TypeError(f"list_builds() got an unexpected keyword: {exc}") from None


_ANY_BUILD = BuildQuery()


@runtime_checkable
class BuildStore(Protocol):
    """Builds: create, read, change, list, and the aggregates over them."""

    def create_build(self, request: BuildRequest, *, status: Status = Status.QUEUED) -> Build:
        """Record a new build with a fresh id and ``queued_at`` = now."""

    def get_build(self, build_id: int) -> Build:
        """One build; NotFoundError when there is none."""

    def update_build(self, build_id: int, **changes: Any) -> Build:
        """Change fields of a build (status, reason, started_at, finished_at,
        claimed_by, sha, ref, author, message, priority, cancel_requested,
        runs_on, heartbeat_at); returns the new record."""

    def list_builds(self, query: BuildQuery | None = None, /, **filters: Any) -> list[Build]:
        """Builds that match ``BuildQuery.of(query, **filters)``, newest first."""

    def list_repos(self) -> list[str]:
        """Every repository that has a build, sorted."""

    def build_stats(self, *, repo: str | None = None) -> Mapping[str, Any]:
        """Aggregates: ``{"total": n, "by_status": {status: n}, "mean_duration": s | None}``."""


@runtime_checkable
class QueueStore(Protocol):
    """The queue is the store: claims, heartbeats and verdicts, each atomic."""

    def claim_build(self, worker: str, *, build_id: int | None = None) -> Build | None:
        """Atomically move the best queued build (highest priority, then
        oldest) to running, owned by ``worker``, with ``heartbeat_at`` = now.
        None when the queue is empty. Two concurrent callers never get the
        same build. With ``build_id``, claim that build only, and only while
        it is queued (a worker handed a build id by a broker; None otherwise)."""

    def heartbeat_build(self, build_id: int, worker: str) -> bool:
        """Set ``heartbeat_at`` = now if ``worker`` still owns the running
        build; False (and no change) when it does not: the worker must stop."""

    def finish_build(
        self,
        build_id: int,
        worker: str,
        *,
        status: Status,
        reason: str | None,
        finished_at: float,
    ) -> Build | None:
        """Record the end of a running build owned by ``worker``, atomically
        (compare and set on status running and claimed_by). None, with no
        change, when the build is no longer that worker's: a result is never
        recorded twice, and a worker declared lost cannot overwrite the verdict."""


@runtime_checkable
class StepStore(Protocol):
    """The steps of a build as recorded."""

    def save_step(self, step: StepRun) -> StepRun:
        """Insert or replace the step (build_id, name)."""

    def list_steps(self, build_id: int) -> list[StepRun]:
        """The steps of a build in pipeline order (position)."""


@runtime_checkable
class LogStore(Protocol):
    """Each step's log, as bytes appended in chunks."""

    def append_log(self, build_id: int, step: str, data: bytes) -> int:
        """Append a chunk of a step's log; returns the log's new total size."""

    def read_log(
        self, build_id: int, step: str, offset: int = 0, limit: int | None = None
    ) -> bytes:
        """Bytes [offset, offset+limit) of a step's log (b"" past the end)."""

    def log_size(self, build_id: int, step: str) -> int:
        """Total bytes stored for a step's log (0 when none)."""


@runtime_checkable
class ResultStore(Protocol):
    """What steps leave behind: parsed test cases and artifacts' metadata."""

    def add_test_results(self, build_id: int, step: str, cases: Sequence[TestCase]) -> None:
        """Record parsed JUnit test cases of one step."""

    def list_test_results(self, build_id: int) -> list[tuple[str, TestCase]]:
        """(step name, test case) pairs of a build, in insertion order."""

    def add_artifacts(self, build_id: int, step: str, artifacts: Sequence[Artifact]) -> None:
        """Record metadata of files kept from a step."""

    def list_artifacts(self, build_id: int) -> list[tuple[str, Artifact]]:
        """(step name, artifact) pairs of a build, in insertion order."""


@runtime_checkable
class RepoStore(Protocol):
    """Registered repositories (``sauci repo add``) and webhook deliveries."""

    def save_repo(self, repo: Repo) -> Repo:
        """Insert or replace a registered repository (by id)."""

    def list_registered_repos(self) -> list[Repo]:
        """Registered repositories, sorted by id."""

    def delete_repo(self, repo_id: str) -> None:
        """Forget a registered repository (no error when there is none)."""

    def record_delivery(self, delivery_id: str) -> bool:
        """Record a webhook delivery id; True when it was already recorded."""


@runtime_checkable
class WorkerStore(Protocol):
    """Worker records (``sauci worker`` processes)."""

    def save_worker(self, worker: Worker) -> Worker:
        """Insert or replace a worker's record (by name)."""

    def list_workers(self) -> list[Worker]:
        """Every recorded worker, sorted by name."""

    def delete_worker(self, name: str) -> None:
        """Forget a worker (no error when there is none)."""


@runtime_checkable
class EventStore(Protocol):
    """The audit trail."""

    def add_event(self, event: Event) -> None:
        """Record an audit event."""

    def list_events(self, *, build_id: int | None = None, limit: int = 100) -> list[Event]:
        """Newest first."""


@runtime_checkable
class Store(
    BuildStore,
    QueueStore,
    StepStore,
    LogStore,
    ResultStore,
    RepoStore,
    WorkerStore,
    EventStore,
    Protocol,
):
    """Where builds, steps, logs, test results, artifacts and events live: every part.

    Every method may raise StoreError (and NotFoundError for a missing build).
    Implementations translate their back end's exceptions at this seam.
    Capabilities: ``"atomic_claim"``, ``"analytics"``, ``"durable"``.
    """

    capabilities: frozenset[str]

    def close(self) -> None:
        """Release connections."""


STORE_PARTS = (
    BuildStore,
    QueueStore,
    StepStore,
    LogStore,
    ResultStore,
    RepoStore,
    WorkerStore,
    EventStore,
)


@runtime_checkable
class Runner(Protocol):
    """Takes the builds queued in the store for ``sauci serve`` and has them run.

    The server's loop calls :meth:`start`, :meth:`tick` round after round, then
    :meth:`stop`; any thread may ask :meth:`busy` and :meth:`running`. SauCI has
    ThreadedRunner (threads of this process) and CeleryRunner (workers through
    a broker). What a runner claims, sends or ends is in the store, not memory.
    """

    name: str  # the owner its claims are recorded under ("serve:HOST:PID")
    mode: str  # where builds run, for the server's start line ("in-process")

    def start(self, report: Callable[[str], None]) -> None:
        """Check the way to what runs builds (SauCIError when it is down);
        ``report`` takes a failure that is no build's own result."""

    def tick(self) -> None:
        """Take the queued builds there is room for, pass cancel requests on,
        end the builds of lost runners."""

    def busy(self) -> bool:
        """Whether the next round is wanted at once; if not, the server backs off."""

    def running(self) -> list[int]:
        """The ids of the builds running in this process (for ``server.json``)."""

    def stop(self, *, reason: str, timeout: float) -> None:
        """Take no more builds, cancel those running here with ``reason``, wait up
        to ``timeout`` s for them to record their end, close the way to them."""
