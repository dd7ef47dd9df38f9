"""``manage.py sauci_serve``: SauCI's server loop for this site's ``SAUCI`` settings.

The same loop as ``sauci serve`` (:func:`sauci.app.serve.run_server`) on
the site's store, data directory, artifacts directory and broker, without
SauCI's own pages: the site mounts those itself.
"""

from __future__ import annotations

import argparse
from typing import Any

from sauci.app.flags import add_serve_options, policy_overrides, server_loop_args
from sauci.app.logs import configure_server_logging
from sauci.app.serve import run_server
from sauci.contrib.django.management._run import SauCICommand, writer
from sauci.core.config import Settings


class Command(SauCICommand):
    help = (
        "Build every push to the registered repositories, as `sauci serve` does, with this "
        "site's SAUCI settings (STORE, DATA_DIR, ARTIFACTS_DIR, BROKER); the site serves the "
        "pages. SIGTERM or Ctrl-C stops it."
    )

    def add_flags(self, parser: argparse.ArgumentParser) -> None:
        server_loop_args(parser)  # --repo, --hook, --poll, --max-builds, ...
        add_serve_options(parser)  # --broker (over SAUCI['BROKER']), --lost-timeout, --attempts

    def overrides(self, flags: argparse.Namespace) -> dict[str, Any]:
        return {
            "broker": flags.broker,
            "lost_timeout": flags.lost_timeout,
            "attempts": flags.attempts,
            "launch_workers": flags.launch_workers,
            "launcher": flags.launcher,
            **policy_overrides(flags),  # --sandbox, --allow-sandbox, --secrets-file
        }

    def run(self, settings: Settings, flags: argparse.Namespace) -> int:
        from sauci.contrib.django import conf

        configure_server_logging(settings, level_given=flags.log_level is not None)
        return run_server(
            conf.get_store(),
            settings,
            flags,
            prog="sauci_serve",
            command="sauci_serve",
            analytics=conf.config()["ANALYTICS"],
            out=writer(self.stdout),
        )
