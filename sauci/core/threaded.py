"""ThreadedRunner: the server's builds on threads of this process, each through a LocalRunner.

It claims queued builds while fewer than ``max_builds`` run, runs each on its
own thread, and passes the cancel requests the store holds for them on.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

from sauci._logging import get_logger
from sauci.core.capacity import CapacityClaims
from sauci.core.events import emit
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
    claims are recorded under, and its store is the queue.
    """

    mode = "in-process"

    def __init__(
        self, *, local: LocalRunner, max_builds: int, claims: CapacityClaims | None = None
    ) -> None:
        self.local = local
        # Claims by declared cost within a capacity (sauci.core.capacity);
        # None: any queued build while fewer than max_builds run.
        self.claims = claims
        self.name = local.name
        self.store = local.store
        self.max_builds = max_builds
        self._threads: dict[int, threading.Thread] = {}
        # Held while a build is claimed and its thread registered, so that
        # stop() sees every build started before it and none after.
        self._lock = threading.Lock()
        self._stopping = False
        self._report: Callable[[str], None] = _not_reported

    def start(self, report: Callable[[str], None]) -> None:
        self._report = report

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
        with self._lock:
            self._stopping = True
            threads = dict(self._threads)
        for build_id in threads:
            self.local.cancel(build_id, reason=reason)
        deadline = time.monotonic() + timeout
        for thread in threads.values():
            thread.join(max(0.0, deadline - time.monotonic()))

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
            for build_id, thread in list(self._threads.items()):
                if not thread.is_alive():
                    del self._threads[build_id]
        if self.claims is not None:
            with self._lock:
                if not self._stopping:
                    for claimed in self.claims.claim():
                        self._start(claimed)
            return
        while len(self._threads) < self.max_builds:
            with self._lock:
                if self._stopping:
                    return
                build = self.store.claim_build(self.name)
                if build is None:
                    return
                self._start(build)

    def _start(self, build: Build) -> None:
        thread = threading.Thread(
            target=self._run_build, args=(build,), name=f"sauci-build-{build.id}"
        )
        self._threads[build.id] = thread
        thread.start()

    def _run_build(self, build: Build) -> None:
        try:
            self._drive(build)
        finally:
            # The slot is free only now (build_finished came from inside the
            # build): the server claims the next build on this event.
            with self._lock:
                self._threads.pop(build.id, None)
            if self.claims is not None:
                self.claims.ended(build.id)
            emit("runner_slot_free", runner=self.name, build=build)

    def _drive(self, build: Build) -> None:
        try:
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
