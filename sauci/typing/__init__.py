"""The contracts a plugin implements: Source, Sandbox, Store (and its parts), LogWriter,
Runner, Trigger.

``typing.Protocol`` classes, so a plugin imports nothing from SauCI to satisfy
one; adapters are handed to each other as instances and declare what they can
do in ``capabilities`` (a frozenset of strings). A Store is the combination of
small per-entity parts (BuildStore, QueueStore, StepStore, LogStore,
ResultStore, RepoStore, WorkerStore, EventStore, in :mod:`sauci.typing.store`):
code asks for the one it needs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol, runtime_checkable

import attrs

from sauci.core.models import BuildRequest, Step, StepResult
from sauci.typing.store import (
    STORE_OPERATIONS,
    STORE_PARTS,
    BuildQuery,
    BuildStore,
    EventStore,
    LogStore,
    QueueStore,
    RepoStore,
    ResultStore,
    StepStore,
    Store,
    TestPage,
    TestQuery,
    WorkerStore,
)

__all__ = [
    "STORE_OPERATIONS",
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
    "TestPage",
    "TestQuery",
    "Trigger",
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


@runtime_checkable
class Trigger(Protocol):
    """Says which builds are due: a push in the spool, a poll that found a new
    commit, a cron tick. The server asks each one every round and queues what
    it returns through its Scheduler. (Webhooks are the push side of the same
    idea: the web layer queues a delivery's requests within its request.)"""

    last_error: str | None  # what went wrong in its last round, for the server's status
    actor: str  # who the builds it queues are recorded as coming from
    supersedes: bool  # whether its builds may cancel older builds of their branch

    def due(self, now: float) -> list[BuildRequest]:
        """The builds due at ``now`` (seconds since the epoch); [] when none."""
