"""``manage.py sauci_worker``: ``sauci worker`` with this site's store and broker.

The same worker as ``sauci worker`` (:func:`sauci.app.worker.run_worker`),
with the same flags; the store, broker, data and artifacts directories come
from the site's ``SAUCI`` setting unless a flag says otherwise.
"""

from __future__ import annotations

import argparse
from typing import Any

from sauci.app.flags import refuse_celery_options, worker_args, worker_overrides
from sauci.app.worker import run_worker
from sauci.contrib.django.management._run import SauCICommand, writer
from sauci.core.config import Settings


class Command(SauCICommand):
    help = (
        "A Celery worker that runs SauCI builds, as `sauci worker` does, with this site's "
        "SAUCI settings (STORE, DATA_DIR, ARTIFACTS_DIR, BROKER)."
    )

    def add_flags(self, parser: argparse.ArgumentParser) -> None:
        # --broker (over SAUCI['BROKER']), --labels, --slots, --name, ... and the description.
        worker_args(parser)

    def overrides(self, flags: argparse.Namespace) -> dict[str, Any]:
        refuse_celery_options(flags)
        return worker_overrides(flags)

    def run(self, settings: Settings, flags: argparse.Namespace) -> int:
        from sauci.contrib.django import conf

        return run_worker(
            settings,
            flags,
            store=conf.get_store(),
            level_given=flags.log_level is not None,
            analytics=conf.config()["ANALYTICS"],
            out=writer(self.stdout),
        )
