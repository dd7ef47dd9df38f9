"""The Store's protocols: small per-entity parts (builds, queue, steps, logs,
results, repositories, workers, events), each at most six methods, the
``Store`` that combines them, :class:`BuildQuery`, what ``list_builds``
answers, and :class:`TestQuery` / :class:`TestPage`, what ``page_test_results``
answers. Re-exported by :mod:`sauci.typing`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from sauci.core.models import Build, BuildRequest, Status, StepRun

if TYPE_CHECKING:
    from sauci.core.records import Artifact, Event, Repo, TestCase, Worker

__all__ = [
    "STORE_OPERATIONS",
    "STORE_PARTS",
    "BuildQuery",
    "BuildStore",
    "EventStore",
    "LogStore",
    "QueueStore",
    "RepoStore",
    "ResultStore",
    "StepStore",
    "Store",
    "TestPage",
    "TestQuery",
    "WorkerStore",
]


@attrs.frozen(kw_only=True)
class BuildQuery:
    """Which builds ``list_builds`` answers: filters (None: any), newest first,
    ``before_id`` the keyset cursor for the next (older) page, at most
    ``limit``. ``text`` is a substring of the commit message, author, ref or
    sha (ASCII case ignored). With ``after_id`` (the previous, newer page's
    cursor) the answer is the ``limit`` matching builds nearest above it,
    still newest first."""

    repo: str | None = None
    ref: str | None = None
    status: Status | None = attrs.field(default=None, converter=attrs.converters.optional(Status))
    event: str | None = None
    author: str | None = None
    before_id: int | None = None
    limit: int = attrs.field(default=50)
    text: str | None = None
    after_id: int | None = None

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
            and (self.after_id is None or build.id > self.after_id)
            and (not self.text or self._has_text(build))
        )

    def _has_text(self, build: Build) -> bool:
        needle = (self.text or "").lower()
        fields = (build.message, build.author, build.ref, build.sha)
        return any(needle in (value or "").lower() for value in fields)

    def select(self, builds: Iterable[Build]) -> list[Build]:
        """The answer over ``builds`` given newest first: the reference
        implementation for stores that filter in Python."""
        kept = (b for b in builds if self.matches(b))
        if self.after_id is None:
            return list(itertools.islice(kept, self.limit))
        return list(kept)[-self.limit :] if self.limit else []

    @property
    def filters(self) -> BuildQuery:
        """The same filters without the page's cursors."""
        return attrs.evolve(self, before_id=None, after_id=None)

    @classmethod
    def of(cls, query: BuildQuery | None = None, /, **filters: Any) -> BuildQuery:
        """The query ``list_builds`` was given: a BuildQuery, keywords, or both
        (keywords win). An unknown keyword is a TypeError, as for a function."""
        try:
            return attrs.evolve(query or _ANY_BUILD, **filters)
        except TypeError as exc:
            raise TypeError(f"list_builds() got an unexpected keyword: {exc}") from None


_ANY_BUILD = BuildQuery()

TEST_STATUS_ORDER = ("failed", "errored", "skipped", "passed")


def test_status_rank(status: str) -> int:
    """Where a test status sorts on a results page: failures first, unknown ones last."""
    try:
        return TEST_STATUS_ORDER.index(status)
    except ValueError:
        return len(TEST_STATUS_ORDER)


@attrs.frozen(kw_only=True)
class TestQuery:
    """Which of a build's test results ``page_test_results`` answers, failures first
    (failed, errored, skipped, passed, then any other status; insertion order
    within a status). Filters: ``status`` (None: any), ``text`` (a substring of
    the classname or the name, ASCII case ignored), ``name`` and ``classname``
    (exact; None: any); the page is ``limit`` rows after ``offset``."""

    __test__ = False  # not a pytest test class

    status: str | None = None
    text: str = ""
    name: str | None = None
    classname: str | None = None
    offset: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    limit: int = attrs.field(default=100, validator=attrs.validators.ge(0))

    def matches(self, case: TestCase) -> bool:
        """Whether ``case`` passes the filters."""
        text = self.text.lower()
        return (
            (self.status is None or case.status == self.status)
            and (self.name is None or case.name == self.name)
            and (self.classname is None or case.classname == self.classname)
            and (not text or text in case.name.lower() or text in case.classname.lower())
        )

    def page(self, results: Sequence[tuple[str, TestCase]]) -> TestPage:
        """The answer over a build's whole ``list_test_results``: the reference
        implementation, which stores without a query language use."""
        counts: dict[str, int] = {}
        for _step, case in results:
            counts[case.status] = counts.get(case.status, 0) + 1
        kept = [pair for pair in results if self.matches(pair[1])]
        kept.sort(key=lambda pair: test_status_rank(pair[1].status))  # stable: insertion order
        rows = tuple(kept[self.offset : self.offset + self.limit])
        return TestPage(rows=rows, matched=len(kept), counts=counts)


@attrs.frozen(kw_only=True)
class TestPage:
    """One page of a build's test results: the (step, test case) ``rows``, how
    many results match the query (``matched``) and how many of each status the
    whole build has (``counts``)."""

    __test__ = False  # not a pytest test class

    rows: tuple[tuple[str, TestCase], ...]
    matched: int
    counts: Mapping[str, int]


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

    def build_stats(
        self, *, repo: str | None = None, query: BuildQuery | None = None
    ) -> Mapping[str, Any]:
        """Aggregates: ``{"total": n, "by_status": {status: n}, "mean_duration": s | None}``,
        over the builds of ``repo``, or those ``query`` matches (its cursors and
        limit ignored)."""


@runtime_checkable
class QueueStore(Protocol):
    """The queue is the store: claims, heartbeats and verdicts, each atomic."""

    def claim_build(self, worker: str, *, build_id: int | None = None) -> Build | None:
        """Atomically move the best queued build (highest priority, then
        oldest) to running, owned by ``worker``, with ``heartbeat_at`` = now.
        None when the queue is empty. Two concurrent callers never get the
        same build. With ``build_id``, claim that build only, and only while
        it is queued (a worker handed a build id by a broker; None otherwise).
        The claim clears the build's ``reason`` (why it waited) in the same write."""

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
        """Record parsed JUnit test cases of one step, replacing any the step
        had: a write sent again (its answer lost) leaves one copy."""

    def list_test_results(self, build_id: int) -> list[tuple[str, TestCase]]:
        """(step name, test case) pairs of a build, in insertion order."""

    def page_test_results(self, build_id: int, query: TestQuery) -> TestPage:
        """One page of a build's test results, failures first (see TestQuery);
        an empty page for a missing build."""

    def add_artifacts(self, build_id: int, step: str, artifacts: Sequence[Artifact]) -> None:
        """Record metadata of files kept from a step, replacing any the step
        had: a write sent again (its answer lost) leaves one copy."""

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


# The parts Store is made of, in the order of its bases (Protocol comes last).
STORE_PARTS: tuple[type, ...] = Store.__bases__[:-1]
# The names of the parts' methods: the operations a store wrapper times or forwards.
STORE_OPERATIONS = frozenset(
    name
    for part in STORE_PARTS
    for name, value in vars(part).items()
    if callable(value) and not name.startswith("_")
)
