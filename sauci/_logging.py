"""SauCI's own logging: structlog, configured only by the processes SauCI starts.

Library modules do ``log = get_logger(__name__)`` at module level, as
structlog's own docs advise (its logger is a proxy that reads the
configuration when first used). Only the CLI and ``sauci serve`` call
:func:`configure`, which also subscribes :func:`log_state_change` to the
event hub: one event per state change (a build queued, started, finished; a
step started, finished; a worker lost), with ``build``, ``repo`` and
``step`` bound.
"""

from __future__ import annotations

import sys
from typing import Any

import structlog

__all__ = ["configure", "get_logger", "log_state_change"]

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
_min_level = 30  # warnings only, until configure() says otherwise
_pending = None  # always None: read and restored by tests/conftest.py (compatibility)


def get_logger(name: str) -> Any:
    """structlog's logger for ``name`` (``structlog.get_logger(name)``)."""
    return structlog.get_logger(name)


def configure(*, level: str = "warning", fmt: str = "console") -> None:
    """Configure SauCI's logging (the CLI and the server call this; library code never does)."""
    global _min_level, _subscribed
    _min_level = _LEVELS[level]
    _apply(level=level, fmt=fmt)
    if not _subscribed:
        # Imported here: sauci.core.events itself logs through this module.
        from sauci.core.events import subscribe

        subscribe(log_state_change)
        _subscribed = True


_subscribed = False
_events_log = get_logger("sauci.events")
# Heartbeats are frequent signs of life, not state changes: debug only.
_EVENT_LEVELS = {"worker_heartbeat": "debug", "build_lost": "warning"}


def log_state_change(name: str, fields: dict[str, Any]) -> None:
    """A hub listener: one structlog event per state change, build/repo/step bound."""
    if _LEVELS[_EVENT_LEVELS.get(name, "info")] < _min_level:
        return  # the common case (sauci run at warning level): no work at all
    try:
        _log_state_change(name, fields)
    except Exception:  # logging must never reach the build that emitted the event
        _events_log.exception("state_change_log_failed", hub_event=name)


def _log_state_change(name: str, fields: dict[str, Any]) -> None:
    build = fields.get("build")
    step = fields.get("step")
    worker = fields.get("worker")
    bound: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    if build is not None:
        bound = {"build": build.id, "repo": build.repo}
        if name == "build_queued":
            extra = {"ref": build.ref, "sha": build.sha, "trigger": build.event}
        elif name == "build_started":
            extra = {"worker": build.claimed_by}
        elif name in ("build_finished", "build_lost") and step is None:
            extra = {"status": str(build.status), "reason": build.reason}
            if build.duration is not None:
                extra["seconds"] = round(build.duration, 3)
    if step is not None:
        bound["step"] = step.name
        if name == "step_finished":
            extra = {
                "status": str(step.status),
                "reason": step.reason,
                "exit_code": step.exit_code,
                "ended_by": str(step.ended_by) if step.ended_by else None,
                "log_bytes": step.log_bytes,
            }
            if step.duration is not None:
                extra["seconds"] = round(step.duration, 3)
    if worker is not None:
        bound = {"worker": worker.name}
        extra = {"state": worker.state, "slots_used": worker.slots_used, "slots": worker.slots}
    level = _EVENT_LEVELS.get(name, "info")
    getattr(_events_log.bind(**bound), level)(name, **extra)


def _apply(*, level: str, fmt: str) -> None:
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )


def _stderr_logger(*args: Any) -> structlog.PrintLogger:
    """A PrintLogger on sys.stderr as it is when the event is logged (a test or
    an embedding program may replace sys.stderr after configure())."""
    return structlog.PrintLogger(file=sys.stderr)
