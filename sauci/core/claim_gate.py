"""A hook between a server's runner and the queue: a gate that may hold queued builds back.

:class:`GatedRunner` lets the gate look at the queue before each round of
the runner it wraps (and act: cancel builds a newer one replaces), and
:class:`GatedStore` makes that runner's claims skip the builds the gate
holds. The gate itself is given (sauci.workflows' ConcurrencyGate for
GitHub's ``concurrency``); the runner and the store are unchanged.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

import attrs

from sauci.core.models import Build, Status
from sauci.core.wrapper import Wrapper
from sauci.typing import Runner, Store

__all__ = ["ClaimGate", "GatedRunner", "GatedStore", "SerialGate"]


class ClaimGate(Protocol):
    """Decides which queued builds may start now."""

    def refresh(self) -> None:
        """Look at the queued and running builds; cancel or hold what must be."""

    def may_claim(self, build_id: int) -> bool:
        """Whether the queued build ``build_id`` may start now."""

    def active(self) -> bool:
        """Whether the last look found any build the gate cares about (else claims go
        straight to the store, as without a gate)."""


class SerialGate:
    """``gate`` asked by one thread at a time: the server's round refreshes it
    while a build's thread claims the next build through it."""

    def __init__(self, gate: ClaimGate) -> None:
        self._gate = gate
        self._lock = threading.RLock()

    def refresh(self) -> None:
        with self._lock:
            self._gate.refresh()

    def may_claim(self, build_id: int) -> bool:
        with self._lock:
            return self._gate.may_claim(build_id)

    def active(self) -> bool:
        with self._lock:
            return self._gate.active()


@attrs.define(eq=False)
class GatedStore(Wrapper):
    """``wrapped`` (a store) whose ``claim_build`` skips the builds ``gate`` holds; all else as is."""

    wrapped: Store
    _gate: ClaimGate

    def claim_build(self, worker: str, *, build_id: int | None = None) -> Build | None:
        if build_id is not None:
            if not self._gate.may_claim(build_id):
                return None
            return self.wrapped.claim_build(worker, build_id=build_id)
        if not self._gate.active():
            return self.wrapped.claim_build(worker)
        queued = self.wrapped.list_builds(status=Status.QUEUED, limit=500)
        for build in sorted(queued, key=lambda b: (-b.priority, b.id)):
            if self._gate.may_claim(build.id):
                claimed = self.wrapped.claim_build(worker, build_id=build.id)
                if claimed is not None:
                    return claimed
        return None


class GatedRunner(Wrapper):
    """``runner`` with ``gate.refresh()`` before each of its rounds."""

    def __init__(self, runner: Runner, gate: ClaimGate) -> None:
        self.wrapped = runner
        self._gate = gate
        self.name = runner.name
        self.mode = runner.mode

    def start(self, report: Callable[[str], None]) -> None:
        self.wrapped.start(report)

    def tick(self) -> None:
        self._gate.refresh()
        self.wrapped.tick()

    def busy(self) -> bool:
        return self.wrapped.busy()

    def running(self) -> list[int]:
        return self.wrapped.running()

    def stop(self, *, reason: str, timeout: float) -> None:
        self.wrapped.stop(reason=reason, timeout=timeout)
