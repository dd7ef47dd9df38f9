"""Capture SauCI's log events in tests, as ``structlog.testing.capture_logs`` does."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

__all__ = ["capture_logs"]


class _Capture(logging.Handler):
    def __init__(self, into: list[dict[str, Any]]) -> None:
        super().__init__(logging.DEBUG)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        event: dict[str, Any] = {
            "event": record.getMessage(),
            "log_level": record.levelname.lower(),
        }
        event.update(getattr(record, "sauci", {}))
        if record.exc_info:
            event["exc_info"] = record.exc_info[1]  # the exception, as structlog gives it
        self.into.append(event)


@contextlib.contextmanager
def capture_logs(level: int = logging.DEBUG) -> Iterator[list[dict[str, Any]]]:
    """Every event SauCI logs at ``level`` or above while in the block, as dicts:
    ``{"event": "step_finished", "log_level": "info", "build": 3, ...}``."""
    events: list[dict[str, Any]] = []
    logger = logging.getLogger("sauci")
    handler = _Capture(events)
    saved = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield events
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved)
