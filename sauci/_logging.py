"""SauCI's own logging: stdlib ``logging`` in library code, rendered by structlog
in the processes SauCI starts.

Library modules do ``log = get_logger(__name__)`` at module level and log
events with keyword context, as structlog does
(``log.info("step_finished", build=3, step="test")``): the logger is a
stdlib :class:`logging.LoggerAdapter` that keeps the keywords on the record
(``record.sauci``), so an embedding program sees SauCI's logs through the
``logging`` configuration it already has, and SauCI never configures logging
by itself. Only the CLI and ``sauci serve`` call :func:`configure`: it puts
one handler on the ``sauci`` logger, rendered by structlog for JSON and for
the console of a person at a terminal, and by a plain formatter of the same
``key=value`` line for a command's warnings (so that ``sauci run`` need not
import structlog) and for a server or worker whose stderr is not a terminal,
and subscribes :func:`log_state_change` to the event hub: one event per state
change (a build queued, started, finished; a step started, finished; a
worker lost), with ``build``, ``repo`` and ``step`` bound.
"""

from __future__ import annotations

import functools
import logging
import sys
import time
from collections.abc import MutableMapping
from typing import Any

__all__ = ["Logger", "configure", "get_logger", "log_state_change"]

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
_ROOT = "sauci"


class Logger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A stdlib logger that takes structlog-style keyword context."""

    def __init__(self, logger: logging.Logger, context: dict[str, Any] | None = None) -> None:
        super().__init__(logger, context or {})

    def bind(self, **context: Any) -> Logger:
        """This logger with ``context`` added to every event."""
        return Logger(self.logger, {**(self.extra or {}), **context})

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        passed = {k: kwargs.pop(k) for k in ("exc_info", "stack_info", "stacklevel") if k in kwargs}
        fields = {**(self.extra or {}), **kwargs}
        return msg, {**passed, "extra": {"sauci": fields}}


def get_logger(name: str) -> Logger:
    """The logger of module ``name``."""
    return Logger(logging.getLogger(name))


# What a terminal acts on: C0 controls but tab and newline, DEL, C1 controls,
# and the bidi embeddings, overrides and isolates. Values come from pushes
# (a file, branch or group name): shown raw, an escape in one would set the
# title or the clipboard (OSC 52) of whoever watches the server's log.
_UNSHOWN = [*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F, *range(0x80, 0xA0)]
_UNSHOWN += [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_SHOWN = {code: f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" for code in _UNSHOWN}


def _shown(value: Any) -> str:
    """A field's value in a console line: quoted (``repr``) when it holds a
    space, or any character that is not printable (a newline would forge a line)."""
    text = value if isinstance(value, str) else str(value)
    if (isinstance(value, str) and " " in value) or not text.isprintable():
        return repr(text)
    return text


def _escape_fields(logger: Any, name: str, event: MutableMapping[str, Any]) -> Any:
    """The same for structlog's console renderer; a traceback keeps its lines."""
    for key, value in event.items():
        if isinstance(value, str) and not value.isprintable():
            event[key] = value.translate(_SHOWN) if key == "exception" else repr(value)
    return event


class _Plain(logging.Formatter):
    """``2026-12-06T02:24:15.118034Z [warning ] event key=value``, without structlog."""

    converter = time.gmtime  # type: ignore[assignment]  # typeshed: gmtime's secs is optional

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "sauci", {})
        text = " ".join(
            [
                f"{self.formatTime(record, '%Y-%m-%dT%H:%M:%S')}.{int(record.created % 1 * 1e6):06d}Z"
                f" [{record.levelname.lower():<8}]",
                record.getMessage().translate(_SHOWN),
                *(f"{k}={_shown(v)}" for k, v in fields.items()),
            ]
        )
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info).translate(_SHOWN)
        return text


class _Stderr(logging.Handler):
    """Writes to sys.stderr as it is when the event is logged (a test or an
    embedding program may replace sys.stderr after configure())."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


def _structlog_formatter(fmt: str) -> logging.Formatter:
    import structlog

    def add_fields(logger: Any, name: str, event: MutableMapping[str, Any]) -> Any:
        record = event.get("_record")
        event.update(getattr(record, "sauci", {}))
        return event

    renderer: Any
    escape: list[Any] = []
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()  # escapes control characters itself
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        escape = [_escape_fields]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            add_fields,
            structlog.stdlib.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            *escape,
            renderer,
        ],
    )


def _wants_structlog(fmt: str, level: str) -> bool:
    """structlog renders JSON, and the console for a person at a terminal (colours,
    its tracebacks). Elsewhere the console format is the same ``key=value`` line
    from the stdlib formatter: a command's warnings, and a long-running process
    whose stderr is a pipe or a file (a service manager, a container's log),
    where structlog's console renderer would add nothing but its import (about
    60 ms and 5-9 MB, more with rich installed, which structlog.dev imports)."""
    if fmt == "json":
        return True
    if _LEVELS[level] >= _LEVELS["warning"]:
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed
        return False


def configure(*, level: str = "warning", fmt: str = "console") -> None:
    """Configure SauCI's logging (the CLI and the server call this; library code never does)."""
    root = logging.getLogger(_ROOT)
    root.setLevel(_LEVELS[level])
    root.propagate = False
    for handler in [h for h in root.handlers if isinstance(h, _Stderr)]:
        root.removeHandler(handler)
    handler = _Stderr()
    handler.setFormatter(_structlog_formatter(fmt) if _wants_structlog(fmt, level) else _Plain())
    root.addHandler(handler)
    _log_state_changes()


@functools.cache
def _log_state_changes() -> None:
    """Subscribe the state-change log to the event hub, once per process."""
    # Imported here: sauci.core.events itself logs through this module.
    from sauci.core.events import subscribe

    subscribe(log_state_change)


_events_log = get_logger("sauci.events")
# Heartbeats are frequent signs of life, not state changes: debug only.
_EVENT_LEVELS = {
    "worker_heartbeat": "debug",
    "build_lost": "warning",
    "worker_launch_failed": "warning",
}


def log_state_change(name: str, fields: dict[str, Any]) -> None:
    """A hub listener: one event per state change, build/repo/step bound."""
    if not _events_log.isEnabledFor(_LEVELS[_EVENT_LEVELS.get(name, "info")]):
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
    if "launched" in fields:  # worker_launched, worker_launch_failed (latent workers)
        bound = {"worker": fields["launched"]}
        extra = {k: v for k, v in fields.items() if k != "launched"}
    elif worker is not None:
        bound = {"worker": worker.name}
        extra = {"state": worker.state, "slots_used": worker.slots_used, "slots": worker.slots}
    level = _EVENT_LEVELS.get(name, "info")
    getattr(_events_log.bind(**bound), level)(name, **extra)
