"""Kept only for the ``sauci`` console script that pyproject.toml still names
(``sauci.cli._console:console``); the entry point is :func:`sauci.cli.main`."""

from __future__ import annotations

import sys
from typing import NoReturn

from sauci.cli import main

__all__ = ["console"]


def console() -> NoReturn:
    sys.exit(main())
