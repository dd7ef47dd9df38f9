"""``manage.py sauci_serve``: SauCI's server loop for this site's ``SAUCI`` settings.

The same loop as ``sauci serve`` (:func:`sauci.app.serve.run_server`) on
the site's store, data directory, artifacts directory and broker, without
SauCI's own pages: the site mounts those itself.
"""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand

from sauci.app.flags import add_serve_options, policy_overrides, server_loop_args
from sauci.app.logs import configure_server_logging
from sauci.app.serve import run_server
from sauci.contrib.django.management._run import (
    add_log_options,
    namespace,
    sauci_errors,
    writer,
)


class Command(BaseCommand):
    help = (
        "Build every push to the registered repositories, as `sauci serve` does, with this "
        "site's SAUCI settings (STORE, DATA_DIR, ARTIFACTS_DIR, BROKER); the site serves the "
        "pages. SIGTERM or Ctrl-C stops it."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        server_loop_args(parser)  # --repo, --hook, --poll, --max-builds, ...
        add_serve_options(parser)  # --broker (over SAUCI['BROKER']), --lost-timeout, --attempts
        add_log_options(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        from sauci.contrib.django import conf

        flags = namespace(options)
        with sauci_errors():
            settings = conf.sauci_settings(
                broker=flags.broker,
                lost_timeout=flags.lost_timeout,
                attempts=flags.attempts,
                **policy_overrides(flags),  # --sandbox, --allow-sandbox, --secrets-file
                log_level=flags.log_level,
                log_format=flags.log_format,
            )
            configure_server_logging(settings, level_given=flags.log_level is not None)
            run_server(
                conf.get_store(),
                settings,
                flags,
                prog="sauci_serve",
                command="sauci_serve",
                analytics=conf.config()["ANALYTICS"],
                out=writer(self.stdout),
            )
