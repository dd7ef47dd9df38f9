"""Records kept beside builds: test results, artifacts, registered
repositories, audit events and workers.

Re-exported by :mod:`sauci.core.models`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from sauci.core._converters import as_tuple
from sauci.core._converters import frozen_map as _frozen_map
from sauci.core._converters import str_tuple as _str_tuple

__all__ = ["Artifact", "Event", "Repo", "TestCase", "Worker"]


@attrs.frozen(kw_only=True)
class TestCase:
    """One test result parsed from a JUnit report."""

    __test__ = False  # not a pytest test class

    name: str
    classname: str = ""
    status: str = "passed"  # passed, failed, errored, skipped
    duration: float = 0.0
    message: str = ""
    text: str = ""
    file: str = ""


@attrs.frozen(kw_only=True)
class Artifact:
    """A file kept after a build; ``path`` is relative to the build's artifact dir."""

    path: str
    size: int
    sha256: str = ""


@attrs.frozen(kw_only=True)
class Repo:
    """A repository registered with ``sauci repo add`` (kept in the store)."""

    id: str  # short, filesystem-safe, stable
    location: str  # absolute path or URL
    hook: str = "none"  # receive, commit, none
    poll_interval: float | None = None  # seconds; None: not polled
    added_at: float = 0.0


@attrs.frozen(kw_only=True)
class Event:
    """An audit event: who did what to which build, and when."""

    kind: str  # e.g. build_queued, build_cancelled, rerun_requested
    at: float
    build_id: int | None = None
    actor: str = ""
    data: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_map)


@attrs.frozen(kw_only=True)
class Worker:
    """A worker process (``sauci worker``) as it last reported itself."""

    name: str  # unique: host:pid or --name
    host: str = ""
    labels: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    slots: int = 1
    running: tuple[int, ...] = attrs.field(default=(), converter=as_tuple)  # build ids
    started_at: float = 0.0
    heartbeat_at: float = 0.0
    state: str = "online"  # online | stopping (warm shutdown) | offline
    # Capacity it declares (`sauci worker --cpus/--memory`, else its machine's);
    # 0: not declared (a worker of an older SauCI, placed by its slots alone).
    cpus: float = 0.0
    memory: int = 0

    @property
    def slots_used(self) -> int:
        return len(self.running)

    def state_at(self, now: float, *, stale_after: float) -> str:
        """The state to show: "lost" when a worker that did not say it went
        offline has been silent longer than ``stale_after`` seconds."""
        if self.state != "offline" and now - self.heartbeat_at > stale_after:
            return "lost"
        return self.state
