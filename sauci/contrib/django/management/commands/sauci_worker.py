"""``manage.py sauci_worker``: ``sauci worker`` with this site's store and broker.

The same worker as ``sauci worker`` (:func:`sauci.app.worker.run_worker`),
with the same flags; the store, broker, data and artifacts directories come
from the site's ``SAUCI`` setting unless a flag says otherwise.
"""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from sauci.app.flags import refuse_celery_options, worker_args, worker_overrides
from sauci.app.worker import run_worker
from sauci.contrib.django.management._run import (
    add_log_options,
    namespace,
    sauci_errors,
    writer,
)


class Command(BaseCommand):
    help = (
        "A Celery worker that runs SauCI builds, as `sauci worker` does, with this site's "
        "SAUCI settings (STORE, DATA_DIR, ARTIFACTS_DIR, BROKER)."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        # --broker (over SAUCI['BROKER']), --labels, --slots, --name, ... and the description.
        worker_args(parser)
        add_log_options(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        from sauci.contrib.django import conf

        flags = namespace(options)
        with sauci_errors():
            refuse_celery_options(flags)
            settings = conf.sauci_settings(
                **worker_overrides(flags),
                log_level=flags.log_level,
                log_format=flags.log_format,
            )
            code = run_worker(
                settings,
                flags,
                store=conf.get_store(),
                level_given=flags.log_level is not None,
                analytics=conf.config()["ANALYTICS"],
                out=writer(self.stdout),
            )
        if code:
            raise CommandError(f"the worker exited with {code}", returncode=code)
