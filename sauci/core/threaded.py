"""ThreadedRunner: the server's builds on threads of this process, each through a LocalRunner.

It claims queued builds while fewer than ``max_builds`` run, runs each on its
own thread, and passes the cancel requests the store holds for them on. A
slot that frees is filled by the thread that leaves it: the next build is
claimed and run there at once, without waiting for the server's round (or
for a thread to start).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from sauci._logging import get_logger
from sauci.core.ahead import CheckoutsAhead
from sauci.core.capacity import CapacityClaims
from sauci.core.events import emit, subscribe
from sauci.core.models import Build, Status
from sauci.core.runner import LocalRunner
from sauci.exceptions import SauCIError

__all__ = ["ThreadedRunner"]

log = get_logger(__name__)


def _not_reported(message: str) -> None:
    """Where failures go before :meth:`ThreadedRunner.start`: the log has them already."""


class ThreadedRunner:
    """A :class:`sauci.typing.Runner` that runs builds here, ``max_builds`` at a time.

    ``local`` drives each build to its end; its ``name`` is the owner the
    claims are recorded under, and its store is the queue. ``check_out_ahead``:
    while every slot is taken, the next queued builds are checked out
    (sauci.core.ahead), so that a slot that frees claims and starts the step.
    """

    mode = "in-process"

    def __init__(
        self,
        *,
        local: LocalRunner,
        max_builds: int,
        claims: CapacityClaims | None = None,
        check_out_ahead: bool = False,
    ) -> None:
        self.local = local
        # Claims by declared cost within a capacity (sauci.core.capacity);
        # None: any queued build while fewer than max_builds run.
        self.claims = claims
        self.name = local.name
        self.store = local.store
        self.max_builds = max_builds
        # Each running build's thread, as the future of its work on the pool's
        # thread (which goes on to the next build its slot claims).
        self._threads: dict[int, Future[None]] = {}
        # Threads kept between builds: a claim hands its build to an idle one
        # rather than start a thread (Thread.start waits for the new thread
        # to run: 2.7 ms median in the server's round while the first builds
        # of a burst start; docs/performance.md, issue 22 item 1, session 17).
        self._pool: ThreadPoolExecutor | None = None
        # Held while a build is claimed and its thread registered, so that
        # stop() sees every build started before it and none after.
        self._lock = threading.Lock()
        self._stopping = False
        self._report: Callable[[str], None] = _not_reported
        self._unsubscribe: Callable[[], None] | None = None
        self.ahead = (
            CheckoutsAhead(
                store=self.store,
                check_out=local.check_out_ahead,
                limit=max_builds,
                full=lambda: len(self._threads) >= self.max_builds and not self._stopping,
            )
            if check_out_ahead
            else None
        )

    def start(self, report: Callable[[str], None]) -> None:
        self._report = report
        if self.claims is not None or self.ahead is not None:
            # A build queued or cancelled here: a claim at a slot's end reads the queue
            # again rather than what the last round read (CapacityClaims.claim).
            self._unsubscribe = subscribe(self._on_event)
        if self.ahead is not None:
            self.ahead.start()

    def _on_event(self, name: str, fields: Mapping[str, Any]) -> None:
        if name in ("build_queued", "build_cancel_requested") and self.claims is not None:
            self.claims.stale()
        if self.ahead is not None:
            self.ahead.on_event(name, fields)

    def tick(self) -> None:
        """Pass cancel requests to the builds running here, then claim while there is room."""
        self._pass_cancels()
        self._claim()

    def room(self) -> dict[str, float] | None:
        """Capacity and use, for server.json and `sauci status`; None without claims by cost."""
        if self.claims is None:
            return None
        room = self.claims.room()
        return {
            "cpus": room.capacity.cpus,
            "memory": room.capacity.memory,
            "cpus_used": room.used_cpus,
            "memory_used": room.used_memory,
        }

    def busy(self) -> bool:
        return bool(self._threads)

    def running(self) -> list[int]:
        with self._lock:
            return sorted(self._threads)

    def stop(self, *, reason: str, timeout: float) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        with self._lock:
            self._stopping = True
            threads = dict(self._threads)
        deadline = time.monotonic() + timeout
        for build_id in threads:
            self.local.cancel(build_id, reason=reason)
        if threads:
            wait(threads.values(), timeout=timeout)
        if self.ahead is not None:  # after the cancels: a checkout under way may take long
            self.ahead.stop(max(0.0, deadline - time.monotonic()))  # its workspaces handed back
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False)  # its idle threads end; a build still running finishes

    def _pass_cancels(self) -> None:
        for build_id in list(self._threads):
            try:
                build = self.store.get_build(build_id)
            except SauCIError:
                continue
            if build.cancel_requested:
                self.local.cancel(build_id, reason=build.cancel_requested)

    def _claim(self) -> None:
        with self._lock:
            for build_id, work in list(self._threads.items()):
                if work.done():
                    del self._threads[build_id]
            if not self._stopping:
                self._take(self._start, fresh=True)

    def _take(self, start: Callable[[Build], None], *, fresh: bool) -> None:
        """Claim what may start now, each handed to ``start`` as soon as it is
        claimed; the caller holds the lock. ``fresh``: read the queue anew (a
        round), else the claims may plan from what the last round read."""
        if self.claims is not None:
            self.claims.claim(start=start, fresh=fresh)
            return
        while len(self._threads) < self.max_builds:
            build = self.store.claim_build(self.name)
            if build is None:
                return
            start(build)

    def _start(self, build: Build) -> None:
        """Run ``build`` on a thread of the pool (the caller holds the lock)."""
        if self._pool is None:
            # At most max_builds run; one more for a thread between two builds.
            self._pool = ThreadPoolExecutor(self.max_builds + 1, thread_name_prefix="sauci-build")
        self._threads[build.id] = self._pool.submit(self._run_build, build)

    def _run_build(self, build: Build | None) -> None:
        this = threading.current_thread()
        idle = this.name
        try:
            while build is not None:
                this.name = f"sauci-build-{build.id}"
                try:
                    self._drive(build)
                except BaseException:
                    self._refill(build, claim=False)
                    raise
                build = self._refill(build)
        finally:
            this.name = idle

    def _refill(self, ended: Build, *, claim: bool = True) -> Build | None:
        """The slot ``ended`` held is free only now (build_finished came from
        inside the build): claim the next build for this thread at once, and
        any other that fits on threads of their own. Returns the one to run here."""
        if self.claims is not None:
            self.claims.ended(ended.id)
        mine: list[Build] = []
        work: Future[None] | None = None  # this thread's, which goes on with the next build

        def start(build: Build) -> None:
            if mine or work is None:
                self._start(build)
                return
            mine.append(build)
            self._threads[build.id] = work

        with self._lock:
            work = self._threads.pop(ended.id, None)
            if claim and not self._stopping:
                try:
                    self._take(start, fresh=False)
                except SauCIError as exc:  # the server's next round claims instead
                    log.warning("claim_at_slot_end_failed", build=ended.id, error=str(exc))
        # ``refilled``: the server need not make a round for this slot (its
        # safety rounds still pass the gate's and the queue's news on).
        emit("runner_slot_free", runner=self.name, build=ended, refilled=bool(mine))
        return mine[0] if mine else None

    def _drive(self, build: Build) -> None:
        ahead = self.ahead.take(build) if self.ahead is not None else None
        try:
            if ahead is not None:
                self.local.run_build(build, ahead=ahead)
            else:
                self.local.run_build(build)
        except Exception as exc:  # record, never lose the build in "running"
            log.exception("build_crashed", build=build.id)
            with contextlib.suppress(SauCIError):
                self.store.update_build(
                    build.id,
                    status=Status.ERRORED,
                    reason=f"SauCI failed: {exc}",
                    finished_at=time.time(),
                )
            self._report(f"build {build.id}: {exc}")
