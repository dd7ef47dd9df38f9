"""``sauci worker`` (a Celery worker that runs builds) and ``sauci workers`` (who is there).

Imports nothing heavy at module level: the parser is built for every
command, and Celery is imported only when a worker starts.
"""

from __future__ import annotations

import argparse
import time

from sauci.app.flags import (
    add_policy_options,
    add_serve_options,
    policy_overrides,
    refuse_celery_options,
    worker_args,
    worker_overrides,
)
from sauci.app.worker import run_worker

__all__ = [
    "add_policy_options",
    "add_serve_options",
    "cmd_worker",
    "cmd_workers",
    "policy_overrides",
    "refuse_celery_options",
    "run_worker",
    "worker_args",
    "worker_overrides",
    "workers_args",
]


def workers_args(workers: argparse.ArgumentParser) -> None:
    """The flags of ``sauci workers`` (besides the common ones)."""
    workers.add_argument(
        "--lost-timeout",
        type=float,
        metavar="SECONDS",
        help="a heartbeat older than this shows as lost (default: the setting, 30)",
    )


def cmd_worker(args: argparse.Namespace) -> int:
    from sauci.cli._context import settings_from

    refuse_celery_options(args)
    settings = settings_from(args, **worker_overrides(args))
    return run_worker(settings, args, level_given=args.log_level is not None)


def cmd_workers(args: argparse.Namespace) -> int:
    from sauci.cli._context import open_cli_store, settings_from, style_from
    from sauci.cli._render import age, table

    style = style_from(args)
    settings = settings_from(args, lost_timeout=args.lost_timeout)
    store = open_cli_store(settings)
    workers = store.list_workers()
    if not workers:
        print("no workers; start one with: sauci worker --broker URL --store URL")
        return 0
    now = time.time()
    rows = []
    for w in workers:
        state = w.state_at(now, stale_after=settings.lost_timeout)
        if state == "lost":
            state = style.paint(state, "31")
        rows.append(
            [
                w.name,
                w.host,
                ",".join(w.labels) or "-",
                f"{w.slots_used}/{w.slots}",
                f"{w.cpus:g} CPUs, {w.memory / 1024**3:.1f} GiB" if w.cpus else "-",
                " ".join(f"#{b}" for b in w.running) or "-",
                state,
                age(w.heartbeat_at),
            ]
        )
    print(
        table(
            ["NAME", "HOST", "LABELS", "SLOTS", "CAPACITY", "RUNNING", "STATE", "HEARTBEAT"],
            rows,
            style,
        )
    )
    return 0
