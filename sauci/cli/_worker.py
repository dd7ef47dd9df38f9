"""``sauci worker`` (a Celery worker that runs builds) and ``sauci workers`` (who is there).

Imports nothing heavy at module level: the parser is built for every
command, and Celery is imported only when a worker starts.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sauci.core.config import Settings
    from sauci.typing import Store

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


def add_serve_options(serve: argparse.ArgumentParser) -> None:
    """``sauci serve --broker URL``: dispatch builds to workers instead of running them."""
    serve.add_argument(
        "--broker",
        metavar="URL",
        help="Celery broker (redis://HOST:6379/0): send builds to `sauci worker`s",
    )
    serve.add_argument(
        "--lost-timeout",
        type=float,
        metavar="SECONDS",
        help="a build whose worker is silent this long is 'worker lost' (default 30)",
    )
    serve.add_argument(
        "--attempts",
        type=int,
        metavar="N",
        help="tries per build when its runner dies: a lost worker, a server killed "
        "mid-build (default 3); then the build ends errored",
    )
    add_policy_options(serve)


def add_policy_options(parser: argparse.ArgumentParser) -> None:
    """The server's policy for pushed code: ``--sandbox``, ``--allow-sandbox``, ``--secrets-file``."""
    parser.add_argument(
        "--sandbox",
        metavar="NAME",
        help="where steps run (default: namespace, which needs bubblewrap; 'local' runs "
        "pushed code as this user, for trusted pushers only)",
    )
    parser.add_argument(
        "--allow-sandbox",
        action="append",
        metavar="NAME",
        dest="allow_sandbox",
        help="a sandbox a pipeline step may ask for besides the default (repeatable)",
    )
    parser.add_argument(
        "--secrets-file",
        metavar="PATH",
        help="TOML file of the secrets steps may name (with SAUCI_SECRET_* variables)",
    )


def policy_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings the policy flags give (None: not given)."""
    sandbox = getattr(args, "sandbox", None)
    allowed = getattr(args, "allow_sandbox", None)
    return {
        "sandbox": "" if sandbox == "auto" else sandbox,
        "allowed_sandboxes": ",".join(allowed) if allowed else None,
        "secrets_file": getattr(args, "secrets_file", None),
    }


def worker_args(worker: argparse.ArgumentParser) -> None:
    """The flags of ``sauci worker`` (besides the common ones)."""
    worker.description = (
        "A Celery worker that runs SauCI builds. SIGTERM (or Ctrl-C) lets running "
        "builds finish and takes no new ones; SIGQUIT (or Ctrl-C again) stops at once."
    )
    worker.add_argument("--broker", metavar="URL", help="Celery broker, e.g. redis://HOST:6379/0")
    worker.add_argument(
        "--labels",
        metavar="L1,L2",
        help="labels this worker offers (at most 8); it runs builds whose runs_on it has all of",
    )
    worker.add_argument(
        "--slots",
        "-c",
        "--concurrency",
        dest="slots",
        type=int,
        metavar="N",
        help="builds at once (default 2); Celery's --concurrency means the same",
    )
    worker.add_argument(
        "--name",
        "-n",
        "--hostname",
        dest="name",
        metavar="NAME",
        help="unique worker name, kept across restarts (default: this host's name); "
        "Celery's node name is sauci@NAME",
    )
    worker.add_argument(
        "--loglevel",
        "-l",
        choices=["debug", "info", "warning", "error", "critical"],
        type=str.lower,
        default="warning",
        help="Celery's own log level (default warning); --log-level is SauCI's",
    )
    worker.add_argument(
        "--artifacts-dir",
        metavar="DIR",
        help="where artifacts go: a directory every host reaches (default: <data>/artifacts)",
    )
    worker.add_argument(
        "--heartbeat-interval",
        type=float,
        metavar="SECONDS",
        help="seconds between heartbeats (default 5; keep it well under the server's lost timeout)",
    )
    worker.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve Prometheus /metrics on this port (needs sauci[metrics])",
    )
    worker.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        help="address of /metrics (default 127.0.0.1; 0.0.0.0 in a container)",
    )
    add_policy_options(worker)
    worker.add_argument(
        "-Q",
        "--queues",
        dest="queues",
        help=argparse.SUPPRESS,  # computed from --labels; refused with an explanation
    )
    worker.add_argument("-P", "--pool", dest="pool", help=argparse.SUPPRESS)


def workers_args(workers: argparse.ArgumentParser) -> None:
    """The flags of ``sauci workers`` (besides the common ones)."""
    workers.add_argument(
        "--lost-timeout",
        type=float,
        metavar="SECONDS",
        help="a heartbeat older than this shows as lost (default: the setting, 30)",
    )


def refuse_celery_options(args: argparse.Namespace) -> None:
    """ConfigError for Celery's -Q and --pool, which a SauCI worker decides itself."""
    from sauci.exceptions import ConfigError

    if args.queues:
        raise ConfigError(
            "-Q/--queues is computed from --labels (one queue per combination of them); "
            "give --labels instead"
        )
    if args.pool and args.pool != "threads":
        raise ConfigError(
            f"--pool {args.pool}: a SauCI worker runs builds on threads (one per slot), "
            "because each build is already its own processes; use --slots for more"
        )


def worker_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings ``sauci worker``'s flags give (None: not given)."""
    return {
        "broker": args.broker,
        "labels": args.labels,
        "slots": args.slots,
        "worker_name": args.name,
        "artifacts_dir": args.artifacts_dir,
        "heartbeat_interval": args.heartbeat_interval,
        **policy_overrides(args),
    }


def cmd_worker(args: argparse.Namespace) -> int:
    from sauci.cli._context import settings_from

    refuse_celery_options(args)
    settings = settings_from(args, **worker_overrides(args))
    return run_worker(settings, args, level_given=args.log_level is not None)


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
    from sauci.cli._context import open_cli_store
    from sauci.exceptions import ConfigError

    if not settings.broker:
        raise ConfigError("sauci worker needs a broker: --broker URL or SAUCI_BROKER")
    from sauci.cli._context import configure_server_logging

    configure_server_logging(settings, level_given)
    from sauci.app import build_worker
    from sauci.distributed import make_app, worker_queues
    from sauci.distributed._app import check_connection, safe_url, thread_pool

    say = out or (lambda line: print(line, flush=True))
    queues = worker_queues(settings.labels)
    app = make_app(settings.broker, visibility_timeout=settings.visibility_timeout)
    check_connection(app)  # a broker that is down: one clear line, before anything starts
    from sauci.monitoring import install

    monitoring = install(
        store=store if store is not None else open_cli_store(settings),
        component="worker",
        data_dir=settings.data_dir,
        command="worker",
        metrics_port=args.metrics_port,
        metrics_host=args.metrics_host,
        analytics=analytics,
    )
    runtime = build_worker(settings, monitoring.store)
    app.sauci_runtime = runtime
    import warnings

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
    try:
        runtime.start()
    except BaseException:
        monitoring.close()
        raise
    say(
        f"sauci worker {runtime.name}: {settings.slots} slot(s), labels "
        f"{','.join(settings.labels) or '(none)'}, broker {safe_url(settings.broker)}, "
        f"queues {' '.join(queues)}; SIGTERM finishes running builds and stops"
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
        monitoring.close()
    return code


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
                " ".join(f"#{b}" for b in w.running) or "-",
                state,
                age(w.heartbeat_at),
            ]
        )
    print(table(["NAME", "HOST", "LABELS", "SLOTS", "RUNNING", "STATE", "HEARTBEAT"], rows, style))
    return 0
