"""A hook between a server's runner and the queue: a gate that may hold queued builds back.

:class:`GatedRunner` lets the gate look at the queue before each round of
the runner it wraps (and act: cancel builds a newer one replaces), and
:class:`GatedStore` makes that runner's claims skip the builds the gate
holds. The gate itself is given (sauci.workflows' ConcurrencyGate for
GitHub's ``concurrency``); the runner and the store are unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import attrs

from sauci.core.models import Build, Status
from sauci.typing import Runner, Store

__all__ = ["ClaimGate", "GatedRunner", "GatedStore"]


class ClaimGate(Protocol):
    """Decides which queued builds may start now."""

    def refresh(self) -> None:
        """Look at the queued and running builds; cancel or hold what must be."""

    def may_claim(self, build_id: int) -> bool:
        """Whether the queued build ``build_id`` may start now."""

    def active(self) -> bool:
        """Whether the last look found any build the gate cares about (else claims go
        straight to the store, as without a gate)."""


@attrs.define(eq=False)
class GatedStore:
    """``store`` whose ``claim_build`` skips the builds ``gate`` holds; all else as is."""

    _store: Store
    _gate: ClaimGate

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def claim_build(self, worker: str, *, build_id: int | None = None) -> Build | None:
        if build_id is not None:
            if not self._gate.may_claim(build_id):
                return None
            return self._store.claim_build(worker, build_id=build_id)
        if not self._gate.active():
            return self._store.claim_build(worker)
        queued = self._store.list_builds(status=Status.QUEUED, limit=500)
        for build in sorted(queued, key=lambda b: (-b.priority, b.id)):
            if self._gate.may_claim(build.id):
                claimed = self._store.claim_build(worker, build_id=build.id)
                if claimed is not None:
                    return claimed
        return None


class GatedRunner:
    """``runner`` with ``gate.refresh()`` before each of its rounds."""

    def __init__(self, runner: Runner, gate: ClaimGate) -> None:
        self._runner = runner
        self._gate = gate
        self.name = runner.name
        self.mode = runner.mode

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runner, name)

    def start(self, report: Callable[[str], None]) -> None:
        self._runner.start(report)

    def tick(self) -> None:
        self._gate.refresh()
        self._runner.tick()

    def busy(self) -> bool:
        return self._runner.busy()

    def running(self) -> list[int]:
        return self._runner.running()

    def stop(self, *, reason: str, timeout: float) -> None:
        self._runner.stop(reason=reason, timeout=timeout)
