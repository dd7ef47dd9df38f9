"""SauCI's own logging: structlog, imported only when something is logged.

Library modules do ``log = get_logger(__name__)`` at module level, as
structlog's own docs advise; the proxy below defers ``import structlog``
(about 30 ms) until an event at or above the configured level is emitted, so
that a quiet ``sauci run`` does not pay for it. Only the CLI and
``sauci serve`` call :func:`configure`, which also subscribes
:func:`log_state_change` to the event hub: one event per state change (a
build queued, started, finished; a step started, finished; a worker lost),
with ``build``, ``repo`` and ``step`` bound.
"""

from __future__ import annotations

import sys
from typing import Any

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
_min_level = 30  # warnings only, until configure() says otherwise
_pending: dict[str, str] | None = None  # a configure() not yet applied to structlog


class LazyLogger:
    """A structlog bound logger that imports structlog on first real use."""

    __slots__ = ("_context", "_name", "_real")

    def __init__(self, name: str, context: dict[str, Any] | None = None) -> None:
        self._name = name
        self._context = context or {}
        self._real: Any = None

    def bind(self, **kw: Any) -> LazyLogger:
        return LazyLogger(self._name, {**self._context, **kw})

    def _emit(self, level: str, event: str, kw: dict[str, Any]) -> None:
        if _LEVELS[level] < _min_level:
            return
        if self._real is None:
            import structlog

            if _pending is not None:
                _apply(**_pending)
            self._real = structlog.get_logger(self._name).bind(**self._context)
        getattr(self._real, level)(event, **kw)

    def debug(self, event: str, **kw: Any) -> None:
        self._emit("debug", event, kw)

    def info(self, event: str, **kw: Any) -> None:
        self._emit("info", event, kw)

    def warning(self, event: str, **kw: Any) -> None:
        self._emit("warning", event, kw)

    def error(self, event: str, **kw: Any) -> None:
        self._emit("error", event, kw)

    def exception(self, event: str, **kw: Any) -> None:
        kw.setdefault("exc_info", True)
        self._emit("error", event, kw)


def get_logger(name: str) -> LazyLogger:
    return LazyLogger(name)


def configure(*, level: str = "warning", fmt: str = "console") -> None:
    """Configure SauCI's logging (the CLI and the server call this; library code never does).

    structlog itself is configured when the first event at ``level`` or above
    is emitted, so a quiet command never imports it.
    """
    global _min_level, _pending, _subscribed
    _min_level = _LEVELS[level]
    _pending = {"level": level, "fmt": fmt}
    if not _subscribed:
        # Imported here: sauci.core.events itself logs through this module.
        from sauci.core.events import subscribe

        subscribe(log_state_change)
        _subscribed = True


_subscribed = False
_events_log = LazyLogger("sauci.events")
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
    global _pending
    _pending = None
    import structlog

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
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
