"""What every command needs: settings from flags, logging, the store."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sauci.cli._render import Style
from sauci.core.config import Settings, load_settings

if TYPE_CHECKING:
    from sauci.typing import Store

__all__ = ["configure_server_logging", "open_cli_store", "settings_from", "style_from"]


def settings_from(args: argparse.Namespace, cwd: Path | None = None, **extra: Any) -> Settings:
    overrides = {
        "data_dir": getattr(args, "data_dir", None),
        "store": getattr(args, "store", None),
        "log_level": getattr(args, "log_level", None),
        "log_format": getattr(args, "log_format", None),
        **extra,
    }
    settings = load_settings(overrides, cwd=cwd)
    from sauci._logging import configure

    configure(level=settings.log_level, fmt=settings.log_format)
    return settings


def style_from(args: argparse.Namespace) -> Style:
    return Style(color=getattr(args, "color", "auto"))


def open_cli_store(settings: Settings) -> Store:
    from sauci.storage import open_store

    if not settings.store:
        from sauci.core.paths import make_private_dir

        # 0700 (a server's 0711 stays): the store, logs and artifacts are in it.
        make_private_dir(settings.data_dir, traversable=None)
    return open_store(settings.store_url)


def configure_server_logging(settings: Settings, level_given: bool) -> None:
    """A long-running process (server, worker) logs its state changes: info unless asked."""
    from sauci._logging import configure

    if settings.log_level == "warning" and not level_given:
        configure(level="info", fmt=settings.log_format)
    else:
        configure(level=settings.log_level, fmt=settings.log_format)
