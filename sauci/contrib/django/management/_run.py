"""What both management commands share: SauCI's log flags and its errors as CommandErrors."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from sauci.core.config import Settings

__all__ = ["SauCICommand", "add_log_options", "namespace", "sauci_errors", "writer"]


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
    """SauCI's errors as CommandErrors with ``sauci``'s exit codes (the one table,
    ``sauci.exceptions.EXIT_CODES``): 2 a user or configuration error, 3 SauCI
    could not work.

    As with ``sauci``, a known error is one line, not a traceback.
    """
    from sauci.exceptions import SauCIError, exit_code

    try:
        yield
    except SauCIError as exc:
        raise CommandError(str(exc), returncode=exit_code(exc)) from exc


class SauCICommand(BaseCommand):
    """A command that runs one of SauCI's loops with this site's ``SAUCI`` settings.

    A subclass adds its own flags (:meth:`add_flags`), says which settings
    they override (:meth:`overrides`) and runs (:meth:`run`); SauCI's log
    flags, its errors as CommandErrors and a non-zero exit code are here.
    """

    def add_flags(self, parser: argparse.ArgumentParser) -> None:
        raise NotImplementedError

    def overrides(self, flags: argparse.Namespace) -> dict[str, Any]:
        raise NotImplementedError

    def run(self, settings: Settings, flags: argparse.Namespace) -> int:
        raise NotImplementedError

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        self.add_flags(parser)
        add_log_options(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        from sauci.contrib.django import conf

        flags = namespace(options)
        with sauci_errors():
            settings = conf.sauci_settings(
                **self.overrides(flags), log_level=flags.log_level, log_format=flags.log_format
            )
            code = self.run(settings, flags)
        if code:
            raise CommandError(f"{self.name} exited with {code}", returncode=code)

    @property
    def name(self) -> str:
        return type(self).__module__.rsplit(".", 1)[-1]
