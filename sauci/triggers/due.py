"""The server's triggers: each says which builds are due now.

Every trigger has ``due(now) -> list[BuildRequest]`` (``now`` in seconds
since the epoch), ``last_error`` (what went wrong in its last round, for the
server's status, or None), ``actor`` (who the queued builds are recorded as
coming from) and ``supersedes`` (whether its builds may cancel older builds
of their branch); the server queues what they return through its Scheduler. The spool also has ``acknowledge()``: its files are deleted
only once their requests are in the store, so a crash loses no push.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from sauci._logging import get_logger
from sauci.core.cron import CronSchedule
from sauci.core.models import BuildRequest
from sauci.exceptions import SauCIError
from sauci.triggers.hooks import hook_installed
from sauci.triggers.poller import Poller
from sauci.triggers.spool import ack, read_requests
from sauci.triggers.wake import WakeReader

__all__ = ["CronTrigger", "PollTrigger", "SpoolTrigger"]

log = get_logger(__name__)

Schedule = tuple[str, str, str]  # (repo, cron expression, branch)


class SpoolTrigger:
    """Pushes that git hooks wrote to the spool directory (and pushes made while
    the server was down: the spool is read at start)."""

    def __init__(self, spool_dir: Path) -> None:
        self.spool_dir = spool_dir
        self.last_error: str | None = None
        self._read: list[Path] = []

    def due(self, now: float) -> list[BuildRequest]:
        found = read_requests(self.spool_dir)
        self._read = list(dict.fromkeys(path for path, _ in found))
        return [request for _, request in found]

    def acknowledge(self) -> None:
        """Delete the spool files read by the last :meth:`due`: their requests are stored."""
        for path in self._read:
            ack(path)
        self._read = []

    def watch(self, on_wake: Callable[[], None]) -> Callable[[], None]:
        """Call ``on_wake`` whenever a hook or a command pokes the spool's wake pipe
        (:mod:`sauci.triggers.wake`); returns the function that stops watching."""
        reader = WakeReader(self.spool_dir, on_wake)
        reader.start()
        return reader.close


def _hooked(repo: str) -> bool:
    path = Path(repo)
    return path.exists() and hook_installed(path)


class PollTrigger:
    """New commits of the repositories that have no SauCI hook: each polled every
    ``intervals[repo]`` seconds (``sauci repo add --poll N``), else every ``interval``."""

    actor = "poller"
    supersedes = True

    def __init__(
        self,
        poller: Poller,
        repos: Callable[[], Sequence[str]],
        *,
        interval: float,
        intervals: Mapping[str, float] | None = None,
        hooked: Callable[[str], bool] = _hooked,
    ) -> None:
        self.poller = poller
        self.repos = repos
        self.interval = interval
        self.intervals = dict(intervals or {})
        self.hooked = hooked
        self.last_error: str | None = None
        self.next_polls: dict[str, float] = {}  # repo -> when it is polled next

    def interval_of(self, repo: str) -> float:
        """Seconds between two polls of ``repo``."""
        return self.intervals.get(repo, self.interval)

    def due(self, now: float) -> list[BuildRequest]:
        out: list[BuildRequest] = []
        due = [repo for repo in self.repos() if now >= self.next_polls.get(repo, 0.0)]
        if due:  # a round: its errors, if any, replace the last round's
            self.last_error = None
        for repo in due:
            self.next_polls[repo] = now + self.interval_of(repo)
            if self.hooked(repo):
                continue
            try:
                out.extend(self.poller.poll(repo))
            except SauCIError as exc:
                self.last_error = f"polling {repo}: {exc}"
                log.warning("poll_failed", repo=repo, error=str(exc))
        return out


class CronTrigger:
    """Builds on a schedule: ``schedules()`` lists (repo, cron, branch), read
    again every ``refresh`` seconds (a push may change a repository's schedule)."""

    actor = "cron"
    supersedes = False

    def __init__(self, schedules: Callable[[], list[Schedule]], *, refresh: float) -> None:
        self.schedules = schedules
        self.refresh = refresh
        self.last_error: str | None = None
        self.next_times: dict[Schedule, datetime] = {}
        self._next_refresh = 0.0

    def due(self, now: float) -> list[BuildRequest]:
        when = datetime.fromtimestamp(now, UTC)
        if time.monotonic() >= self._next_refresh:
            self._next_refresh = time.monotonic() + self.refresh
            self.next_times = {
                key: self.next_times.get(key) or CronSchedule.parse(key[1]).next_after(when)
                for key in set(self.schedules())
            }
        out = []
        for key, at in list(self.next_times.items()):
            if at > when:
                continue
            repo, cron, branch = key
            self.next_times[key] = CronSchedule.parse(cron).next_after(when)
            out.append(
                BuildRequest(repo=repo, ref=f"refs/heads/{branch}", event="cron", pusher="cron")
            )
            log.info("cron_triggered", repo=repo, cron=cron, branch=branch)
        return out
