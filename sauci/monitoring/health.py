"""Readiness: can this SauCI installation build right now, and if not, why.

Four checks, each answering ``ok`` or a reason a person can act on:

- ``store``: the store answers a small query within a few seconds;
- ``scheduler``: the server loop's heartbeat in ``<data dir>/server.json``
  (written every second by ``sauci serve``) is recent;
- ``queue``: builds are not left waiting while nothing starts or ends;
- ``broker``: with a Celery broker set, it accepts a connection within a
  few seconds (without one there is nothing to check, and no entry).

Liveness needs no check: a process that can answer is alive.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from sauci.core.models import Status

__all__ = [
    "ALL_CHECKS",
    "Readiness",
    "check_broker",
    "check_heartbeat",
    "check_queue",
    "check_scheduler",
    "check_store",
    "readiness",
]

ALL_CHECKS = ("store", "scheduler", "queue", "broker")


@attrs.frozen(kw_only=True)
class Readiness:
    """The outcome: ``ready`` and, per check, None (fine) or the reason it is not."""

    checks: dict[str, str | None]

    @property
    def ready(self) -> bool:
        return all(reason is None for reason in self.checks.values())

    @property
    def reasons(self) -> list[str]:
        return [f"{name}: {reason}" for name, reason in self.checks.items() if reason]

    def as_dict(self) -> dict[str, Any]:
        return {
            "ready": self.ready,
            "checks": {name: reason or "ok" for name, reason in self.checks.items()},
        }


def _with_timeout(func: Any, timeout: float) -> tuple[bool, Any]:
    """Run ``func`` on a daemon thread; (False, None) when it takes longer than ``timeout``."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = func()
        except BaseException as exc:  # reported to the caller, not raised on a stray thread
            box["error"] = exc

    thread = threading.Thread(target=run, name="sauci-health", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        return False, None
    if "error" in box:
        raise box["error"]
    return True, box.get("value")


def _timed_out(exc: BaseException) -> bool:
    """Whether ``exc`` or an exception it was raised from is a timeout (the
    built-in one, or a client library's own class of that name)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, TimeoutError) or type(current).__name__ == "TimeoutError":
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def check_store(store: Any, *, timeout: float = 5.0) -> str | None:
    """None when the store answers ``list_builds(limit=1)`` within ``timeout`` seconds."""
    try:
        done, _ = _with_timeout(lambda: store.list_builds(limit=1), timeout)
    except Exception as exc:
        return f"store unreachable ({type(exc).__name__})"
    if not done:
        return f"store did not answer within {timeout:g} s"
    return None


def check_broker(url: str, *, timeout: float = 3.0) -> str | None:
    """None when the Celery broker at ``url`` accepts a connection within ``timeout`` seconds.

    The same connection check ``sauci worker`` makes at start. Reasons name
    the failure's kind only: readyz is public, and a broker URL holds a
    host name and often a password.
    """
    from sauci.exceptions import ConfigError, MissingDependencyError

    def probe() -> None:
        from sauci.distributed import check_connection, make_app

        app = make_app(url)
        # Bounded reads too, so that a broker that accepts and never answers
        # does not keep this probe's thread long after the answer was given
        # up on; longer than the wait, so that the wait decides.
        linger = 2 * timeout
        app.conf.broker_connection_timeout = linger
        app.conf.broker_transport_options = {
            **app.conf.broker_transport_options,
            "socket_timeout": linger,
            "socket_connect_timeout": linger,
        }
        try:
            check_connection(app, timeout=linger)
        finally:
            app.close()

    try:
        done, _ = _with_timeout(probe, timeout)
    except MissingDependencyError:
        return "celery is not installed (pip install 'sauci[celery]')"
    except ConfigError:
        return "the broker URL is malformed"
    except Exception as exc:
        if _timed_out(exc):  # the probe's own socket timeout came first (a busy machine)
            return f"broker did not answer within {timeout:g} s"
        cause = exc.__cause__ if exc.__cause__ is not None else exc
        return f"broker unreachable ({type(cause).__name__})"
    if not done:
        return f"broker did not answer within {timeout:g} s"
    return None


def check_scheduler(
    data_dir: Path, *, stale_after: float = 30.0, now: float | None = None
) -> str | None:
    """None when ``server.json`` in ``data_dir`` has a heartbeat newer than ``stale_after`` s."""
    from sauci.core.server import read_status

    status = read_status(Path(data_dir))
    if status is None:
        return "no SauCI server heartbeat (server.json) in the data directory"
    heartbeat = status.get("heartbeat")
    if not isinstance(heartbeat, int | float):
        return "server.json has no heartbeat"
    age = (time.time() if now is None else now) - heartbeat
    if age > stale_after:
        return f"the server's last heartbeat is {age:.0f} s old (limit {stale_after:g} s)"
    return None


def check_heartbeat(
    last_beat: float | None, *, interval: float, now: float | None = None
) -> str | None:
    """None when a worker wrote its heartbeat within three ``interval`` s (a
    worker whose heartbeat thread stopped or whose store writes fail is not ready)."""
    if last_beat is None:
        return "no heartbeat written yet"
    age = (time.time() if now is None else now) - last_beat
    if age > 3 * interval:
        return f"the last heartbeat was written {age:.0f} s ago (every {interval:g} s expected)"
    return None


def check_queue(store: Any, *, stuck_after: float = 1800.0, now: float | None = None) -> str | None:
    """None unless builds have waited over ``stuck_after`` s while none started or ended meanwhile.

    A queue behind long builds is busy, not stuck: only a queue with no
    progress at all for that long is reported.
    """
    now = time.time() if now is None else now
    try:
        queued = store.list_builds(status=Status.QUEUED, limit=1000)
    except Exception as exc:
        return f"cannot read the queue ({type(exc).__name__})"
    oldest = min((b.queued_at for b in queued if b.queued_at), default=None)
    if oldest is None or now - oldest <= stuck_after:
        return None
    since = now - stuck_after
    try:
        recent = store.list_builds(limit=200)
        running = store.list_builds(status=Status.RUNNING, limit=200)
    except Exception as exc:
        return f"cannot read the queue ({type(exc).__name__})"
    for build in [*recent, *running]:
        moments = (build.started_at, build.finished_at, build.heartbeat_at)
        if any(m is not None and m >= since for m in moments):
            return None
    return (
        f"{len(queued)} build(s) queued, the oldest for {(now - oldest) / 60:.0f} min, "
        f"and no build started or ended in the last {stuck_after / 60:.0f} min"
    )


def readiness(
    store: Any,
    data_dir: Path | None = None,
    *,
    checks: Sequence[str] = ALL_CHECKS,
    store_timeout: float = 5.0,
    stale_after: float = 30.0,
    stuck_after: float = 1800.0,
    broker: str | None = None,
    broker_timeout: float = 3.0,
) -> Readiness:
    """Run ``checks`` (a subset of :data:`ALL_CHECKS`); the queue is skipped when the store is down.

    ``broker`` is checked only when a broker URL is given: without one,
    builds run in-process and there is no ``broker`` entry.
    """
    results: dict[str, str | None] = {}
    if "store" in checks:
        results["store"] = check_store(store, timeout=store_timeout)
        if results["store"] and data_dir is not None:
            from sauci.core.journal import pending_journals
            from sauci.core.undelivered import pending_notes

            # Builds noted undelivered, and builds whose journal owes the store.
            owing = pending_notes(data_dir) + pending_journals(data_dir)
            waiting = len({path.stem for path in owing})
            if waiting:  # what the outage holds back, delivered when the store is back
                results["store"] += f"; the data of {waiting} build(s) waits on disk"
    if "scheduler" in checks:
        if data_dir is None:
            results["scheduler"] = "no data directory to find server.json in"
        else:
            results["scheduler"] = check_scheduler(data_dir, stale_after=stale_after)
    if "queue" in checks:
        if results.get("store"):
            results["queue"] = "not checked: the store is unreachable"
        else:
            results["queue"] = check_queue(store, stuck_after=stuck_after)
    if "broker" in checks and broker:
        results["broker"] = check_broker(broker, timeout=broker_timeout)
    return Readiness(checks=results)
