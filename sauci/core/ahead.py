"""Checkouts ahead: the next queued builds made ready while every build slot is taken.

A slot that frees claims its next build and starts its first step; before
that step, the build's workspace must be its commit's tree and its pipeline
read (sauci.core.runner: the slot's reservation, the commit, the reset, the
pipeline file parsed). While every slot of a :class:`ThreadedRunner
<sauci.core.threaded.ThreadedRunner>` is taken, those can be done for the
builds that will start next, as the Celery workers take builds sent ahead:
:class:`CheckoutsAhead` does them on a thread of its own, for the oldest
queued builds (highest priority first), at most one per slot, once the
runner has been quiet for ``settle`` seconds (no build or step started or
ended: its passages from one build to the next are not slowed by it).

Nothing is written to the store for a build checked out ahead: it stays
queued, and any runner may claim it. The slot that claims it here takes its
checkout (:meth:`CheckoutsAhead.take`) and uses it when the build is still
what it was (the same commit: a branch that moved since is resolved and
checked out again at the claim, as without this). A checkout whose build
left the queue (cancelled, claimed elsewhere) is handed back at the next
look; one that fails (the commit is gone, the pipeline file is wrong) is
dropped, and the claim does it again and records why. A workspace is held
with its slot's lock, which goes with the process: a server killed with
checkouts ahead leaves slots without a tidy note, which the next build that
takes them resets (sauci.source.workspaces).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from sauci._logging import get_logger
from sauci.core.models import Build, Pipeline, Status

if TYPE_CHECKING:
    from sauci.typing import Commit, Store, Workspace

__all__ = ["Ahead", "CheckoutsAhead"]

log = get_logger(__name__)

# The events after which the runner is busy for a moment (a passage, a start).
_ACTIVITY = frozenset(
    {
        "build_queued",
        "build_cancel_requested",
        "build_started",
        "step_started",
        "step_finished",
        "build_finished",
        "runner_slot_free",
    }
)


@attrs.frozen(eq=False)
class Ahead:
    """A queued build's workspace, made its commit's tree, and its pipeline read there."""

    build: Build  # as it was queued
    commit: Commit
    lease: Workspace
    workspace: Path
    pipeline: Pipeline

    def fits(self, build: Build) -> bool:
        """Whether ``build`` (claimed) asks for what this was made for."""
        return _asks(build) == _asks(self.build)

    def release(self) -> None:
        """Hand the workspace back, tidied (unused: nothing of a build ran in it)."""
        self.lease.release(tidy=True)


def _asks(build: Build) -> tuple[Any, ...]:
    """What decides a build's checkout and pipeline, and does not change when it is claimed."""
    return (
        build.id,
        build.repo,
        build.ref,
        build.sha,
        build.event,
        build.old_sha,
        build.pusher,
        build.reuse_from,
        tuple(sorted(build.params.items())),
    )


class CheckoutsAhead:
    """Up to ``limit`` queued builds checked out ahead by ``check_out`` (see the module).

    ``check_out(build)`` makes one (None when it cannot: the claim tries
    again); ``full()`` says whether every slot is taken, and only then is
    anything checked out ahead.
    """

    def __init__(
        self,
        *,
        store: Store,
        check_out: Callable[[Build], Ahead | None],
        limit: int,
        full: Callable[[], bool],
        settle: float = 0.05,
    ) -> None:
        self.store = store
        self.check_out = check_out
        self.limit = limit
        self.full = full
        self.settle = settle
        self._ready: dict[int, Ahead] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._last = 0.0  # monotonic time of the runner's last activity
        self._failed: set[int] = set()  # queued builds whose checkout failed (their thread's)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sauci-ahead", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop checking out, and hand back every workspace held for a build
        (one being made when ``timeout`` passes is handed back when made)."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._lock:
            ready, self._ready = self._ready, {}
        for ahead in ready.values():
            ahead.release()

    def on_event(self, name: str, fields: Mapping[str, Any]) -> None:
        """The runner's events: after any activity, look again once it has settled."""
        if name in _ACTIVITY:
            self._last = time.monotonic()
            self._wake.set()

    def take(self, build: Build) -> Ahead | None:
        """The checkout made ahead for ``build`` (now claimed), if one was; it is the caller's."""
        with self._lock:
            return self._ready.pop(build.id, None)

    def held(self) -> list[int]:
        """The builds checked out ahead now."""
        with self._lock:
            return sorted(self._ready)

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait()
            self._wake.clear()
            while (left := self._last + self.settle - time.monotonic()) > 0:
                if self._stopping.wait(left):
                    return
            if self._stopping.is_set():
                return
            try:
                self.look()
            except Exception:  # never break the runner: its claims do without
                log.exception("checkout_ahead_failed")

    def look(self) -> None:
        """Hand back what left the queue; while every slot is taken, check out
        the next queued builds that have none, up to the limit."""
        # The oldest queued builds (the store's page above id 0), highest priority first.
        queued = sorted(
            self.store.list_builds(status=Status.QUEUED, after_id=0, limit=self.limit * 4),
            key=lambda b: (-b.priority, b.id),
        )
        # A build that could not be checked out is not tried again while it waits.
        self._failed &= {b.id for b in queued}
        candidates = [b for b in queued if b.id not in self._failed]
        wanted = {b.id for b in candidates[: self.limit]}
        with self._lock:
            gone = [i for i in self._ready if i not in wanted]
            dropped = [self._ready.pop(i) for i in gone]
        for ahead in dropped:
            ahead.release()
        for build in candidates:
            if self._stopping.is_set() or not self.full():
                return
            with self._lock:
                if len(self._ready) >= self.limit:
                    return
                if build.id in self._ready:
                    continue
            try:
                made = self.check_out(build)
            except Exception:  # a reader's bug: not tried again while it waits
                self._failed.add(build.id)
                raise
            if made is None:
                self._failed.add(build.id)
                continue
            with self._lock:
                if not self._stopping.is_set():
                    self._ready[build.id] = made
                    made = None
            if made is not None:
                made.release()
