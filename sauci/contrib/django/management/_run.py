"""What both management commands share: SauCI's log flags and its errors as CommandErrors."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from django.core.management.base import CommandError

__all__ = ["add_log_options", "namespace", "sauci_errors", "writer"]


def add_log_options(parser: argparse.ArgumentParser) -> None:
    """SauCI's own log (``--verbosity`` is Django's); as ``sauci serve`` takes them."""
    parser.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        help="SauCI's log level (default info; SAUCI_LOG_LEVEL)",
    )
    parser.add_argument(
        "--log-format", choices=["console", "json"], help="SauCI's log format (SAUCI_LOG_FORMAT)"
    )


def namespace(options: dict[str, Any]) -> argparse.Namespace:
    """Django's parsed options as the namespace SauCI's command bodies take."""
    return argparse.Namespace(**options)


def writer(stream: Any) -> Callable[[str], None]:
    """A line printer on a command's stdout, flushed (the start line is waited for)."""

    def say(line: str) -> None:
        stream.write(line)
        stream.flush()

    return say


@contextlib.contextmanager
def sauci_errors() -> Iterator[None]:
    """SauCI's errors as CommandErrors with ``sauci``'s exit codes: 2 usage, 3 errored.

    As with ``sauci``, a known error is one line, not a traceback.
    """
    from sauci.exceptions import ConfigError, PluginError, SauCIError

    try:
        yield
    except (ConfigError, PluginError) as exc:
        raise CommandError(str(exc), returncode=2) from exc
    except SauCIError as exc:
        raise CommandError(str(exc), returncode=3) from exc
