"""What every command needs: settings from flags, logging, the store."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sauci.app.logs import configure_server_logging
from sauci.app.stores import settings_store as open_cli_store
from sauci.cli._render import Style
from sauci.core.config import Settings, load_settings

if TYPE_CHECKING:
    pass

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
