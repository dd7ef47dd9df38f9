"""SauCI's own logging: structlog, imported only when something is logged.

Library modules do ``log = get_logger(__name__)`` at module level, as
structlog's own docs advise; the proxy below defers ``import structlog``
(about 30 ms) until an event at or above the configured level is emitted, so
that a quiet ``sauci run`` does not pay for it. Only the CLI and
``sauci serve`` call :func:`configure`.
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
    global _min_level, _pending
    _min_level = _LEVELS[level]
    _pending = {"level": level, "fmt": fmt}


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
