"""The body of ``sauci worker`` and of Django's ``manage.py sauci_worker``: a Celery
worker that runs builds, until it is shut down, and the runtime it drives
(:func:`build_worker`). Celery is imported only here, when a worker starts."""

from __future__ import annotations

import argparse
import os
import socket
import warnings
from collections.abc import Callable
from typing import Any

from sauci.app import mirror_sources
from sauci.app.logs import configure_server_logging
from sauci.app.server import local_runner
from sauci.app.stores import settings_store
from sauci.core import runner as _core_runner
from sauci.core.config import Settings
from sauci.core.secrets import Secrets, load_secrets
from sauci.distributed import (
    Announcer,
    WorkerRuntime,
    check_connection,
    make_app,
    own_queue,
    safe_url,
    slot_sources,
    thread_pool,
    worker_cgroup_prefix,
    worker_queues,
)
from sauci.exceptions import ConfigError
from sauci.monitoring import install
from sauci.monitoring.health import Readiness, check_heartbeat, readiness
from sauci.sandbox import sweep
from sauci.sandbox.policy import server_sandboxes
from sauci.typing import Sandbox, Store

__all__ = ["build_worker", "run_worker"]


def build_worker(
    settings: Settings,
    store: Store,
    *,
    name: str | None = None,
    sandbox: Sandbox | None = None,
    secrets: Secrets | None = None,
) -> Any:
    """The runtime behind ``sauci worker`` (a :class:`sauci.distributed.WorkerRuntime`).

    The worker's own settings decide where pushed code runs, as for ``sauci
    serve`` (the sandbox policy), and which secrets it gets. ConfigError when
    the policy's sandbox cannot run here or the secrets file is bad.
    """
    name = name or settings.worker_name or socket.gethostname()
    sandboxes = server_sandboxes(
        settings, cgroup_prefix=worker_cgroup_prefix(name), default=sandbox
    )
    secrets = load_secrets(settings.secrets_file) if secrets is None else secrets
    sources = slot_sources(mirror_sources(settings))  # a kept workspace per slot

    def runner(view: Store) -> _core_runner.LocalRunner:
        return local_runner(
            view, settings, sandboxes, sources, secrets, name, 2 * (os.cpu_count() or 1)
        )

    return WorkerRuntime(
        store=store,
        settings=settings,
        name=name,
        runner=runner,
        sweep=lambda prefix: [*sweep(prefix), *sandboxes.sweep_containers()],
        traversable=sandboxes.traversable,
    )


def run_worker(
    settings: Settings,
    args: argparse.Namespace,
    *,
    store: Store | None = None,
    level_given: bool = False,
    analytics: bool | None = None,
    out: Callable[[str], None] | None = None,
) -> int:
    """Run a Celery worker for ``settings`` until it is shut down; the body of ``sauci worker``.

    Django's ``manage.py sauci_worker`` runs it too, with the site's store
    (``store``; None opens ``settings.store_url``) and settings. ``args``
    holds the flags of :func:`worker_args`.
    """

    if not settings.broker:
        raise ConfigError("sauci worker needs a broker: --broker URL or SAUCI_BROKER")
    configure_server_logging(settings, level_given)

    say = out or (lambda line: print(line, flush=True))
    queues = worker_queues(settings.labels)
    app = make_app(settings.broker, visibility_timeout=settings.visibility_timeout)
    check_connection(app)  # a broker that is down: one clear line, before anything starts
    runtimes: list[Any] = []  # the runtime, once built (the probe server starts first)

    def ready() -> Readiness:
        found = readiness(
            monitoring.store, checks=("store", "broker"), broker=settings.broker
        ).checks
        beat = runtimes[0].last_beat if runtimes else None
        found["heartbeat"] = check_heartbeat(beat, interval=settings.heartbeat_interval)
        return Readiness(checks=found)

    monitoring = install(
        ready=ready,
        store=store if store is not None else settings_store(settings),
        component="worker",
        data_dir=settings.data_dir,
        command="worker",
        metrics_port=args.metrics_port,
        metrics_host=args.metrics_host,
        analytics=analytics,
    )
    runtime = build_worker(settings, monitoring.store)
    runtimes.append(runtime)
    queues.append(own_queue(runtime.name))  # what the dispatcher placed here by cost
    app.sauci_runtime = runtime
    announcer = Announcer(app, runtime.name)
    runtime.announce = announcer
    runtime.claimed = announcer.slot_taken

    from celery import signals
    from celery.exceptions import SecurityWarning

    # Celery warns about root because of pickle; this app accepts JSON only,
    # and steps run in the sandbox (as an unprivileged uid in the namespace one).
    warnings.filterwarnings("ignore", category=SecurityWarning)

    shutdown: dict[str, object] = {}

    def _shutting_down(how: object = "Warm", **_: object) -> None:
        shutdown.setdefault("how", how)
        if how == "Cold":
            shutdown["how"] = how
            runtime.hand_back()  # a second Ctrl-C, or SIGQUIT: stop, hand the builds on
        else:
            runtime.stopping()

    signals.worker_shutting_down.connect(_shutting_down, weak=False)
    if settings.idle_exit > 0:  # watched once Celery consumes (and handles SIGTERM)
        from sauci.app.idle_exit import exit_when_idle

        def _ready(**_: object) -> None:
            exit_when_idle(runtime, settings.idle_exit)

        signals.worker_ready.connect(_ready, weak=False)
    try:
        runtime.start()
    except BaseException:
        monitoring.close()
        raise
    say(
        f"sauci worker {runtime.name}: {settings.slots} slot(s), "
        f"capacity {runtime.capacity.describe()}, labels "
        f"{','.join(settings.labels) or '(none)'}, broker {safe_url(settings.broker)}, "
        f"queues {' '.join(queues)}; steps run in the {settings.sandbox or 'namespace'} "
        f"sandbox, network {'on' if settings.network else 'off'}; data in {settings.data_dir}; "
        "SIGTERM finishes running builds and stops"
    )
    try:
        worker = app.Worker(
            hostname=f"sauci@{runtime.name}",
            pool_cls=thread_pool(runtime),
            concurrency=settings.slots,
            queues=queues,
            loglevel=args.loglevel.upper(),
            without_gossip=True,
            without_mingle=True,
            without_heartbeat=True,
            quiet=True,
            redirect_stdouts=False,
        )
        worker.start()
        code = int(worker.exitcode or 0)
        if shutdown.get("how") == "Warm":
            code = 0  # Ctrl-C is a warm shutdown too (Celery exits 1 for it): builds finished
    finally:
        runtime.stop()
        announcer.close()
        monitoring.close()
    return code
