"""Logging of the long-running processes SauCI starts (server, worker)."""

from __future__ import annotations

from sauci._logging import configure
from sauci.core.config import Settings

__all__ = ["configure_server_logging"]


def configure_server_logging(settings: Settings, level_given: bool) -> None:
    """A long-running process (server, worker) logs its state changes: info unless asked."""
    if settings.log_level == "warning" and not level_given:
        configure(level="info", fmt=settings.log_format)
    else:
        configure(level=settings.log_level, fmt=settings.log_format)
