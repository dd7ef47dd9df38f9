"""The body of ``sauci serve`` and of Django's ``manage.py sauci_serve``: the server
loop on a store, with metrics and logging, until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import os
import re
import signal
import threading
from collections.abc import Callable

from sauci._logging import get_logger
from sauci.app.repos import register_repo, resolve_location
from sauci.app.server import build_server
from sauci.core.config import Settings
from sauci.core.server import ServerOptions
from sauci.exceptions import ConfigError
from sauci.monitoring import install
from sauci.source.workspaces import wait_for_tidying
from sauci.typing import Store

log = get_logger(__name__)

__all__ = ["WebStarter", "run_server", "server_options"]


# A web front end on the server's store: text for the start line, how to start it
# (called once that line is printed) and how to stop it.
WebStarter = Callable[[Store], tuple[str, Callable[[], None], Callable[[], None]]]


def server_options(args: argparse.Namespace) -> ServerOptions:
    """The server loop's options from its flags; ConfigError names a bad one."""
    try:
        return ServerOptions(
            max_builds=args.max_builds,
            step_slots=args.step_slots,
            poll_interval=args.poll or 60.0,
            idle_tick=args.idle_tick,
            retry_interrupted=not args.no_retry_interrupted,
            cancel_superseded=args.cancel_superseded,
        )
    except (TypeError, ValueError) as exc:
        # attrs says "'max_builds' must be >= 1: 0"; the flag is --max-builds.
        message = re.sub(
            r"'(\w+)'", lambda m: "--" + m.group(1).replace("_", "-"), str(exc), count=1
        )
        raise ConfigError(message) from exc


def run_server(
    store: Store,
    settings: Settings,
    args: argparse.Namespace,
    *,
    prog: str = "sauci serve",
    command: str = "serve",
    analytics: bool | None = None,
    web: WebStarter | None = None,
    out: Callable[[str], None] | None = None,
) -> int:
    """Run the server loop on ``store`` until SIGINT or SIGTERM; the body of ``sauci serve``.

    Django's ``manage.py sauci_serve`` runs it too, with the site's store and
    settings and no ``web`` (the site serves the pages). ``args`` holds the
    flags of :func:`server_loop_args`. A second signal exits at once (130)
    instead of waiting for running builds. Signal handlers are installed only
    on the main thread, and the previous ones are put back on return.
    """
    options = server_options(args)  # a bad flag says so before anything starts
    say = out or (lambda line: print(line, flush=True))
    # Metrics (the UI's metrics/ page), the state-change log and opt-in analytics.
    monitoring = install(
        store=store,
        component="serve",
        command=command,
        data_dir=settings.data_dir,
        analytics=analytics,
    )
    store = monitoring.store
    for location in args.repo or []:
        register_repo(store, settings, resolve_location(location), args.hook, args.poll)
    repos = [r.location for r in store.list_registered_repos()]
    server = build_server(store=store, settings=settings, repos=repos, options=options)
    try:
        server.start()
    except BaseException:
        monitoring.close()
        raise
    where, start_web, stop_web = web(store) if web is not None else ("", None, None)
    if settings.broker:
        # Only with a broker: Celery's package is imported only then (docs/distributed.md).
        from sauci.distributed import safe_url

        where += f"; builds go to workers through {safe_url(settings.broker)}"
    else:
        allowed = sorted(server.sandboxes.allowed - {server.sandboxes.name})
        where += f"; steps run in the {server.sandboxes.name} sandbox" + (
            f" (pipelines may ask for {', '.join(allowed)})" if allowed else ""
        )
        where += f", {_network_words(server.sandboxes.default, settings)}"
        note = getattr(server.sandboxes.default, "start_note", None)  # the vm's acceleration
        if isinstance(note, str) and note:
            where += f", {note}"
        log.info(
            "server_policy",
            sandbox=server.sandboxes.name,
            allowed_sandboxes=sorted(server.sandboxes.allowed),
            network=settings.network,
            data_dir=str(settings.data_dir),
        )
    say(
        f"{prog}: watching {len(repos)} repositor{'y' if len(repos) == 1 else 'ies'}; "
        f"data in {settings.data_dir}{where}; Ctrl-C stops"
    )
    if start_web is not None:
        # Only now: the UI's start is a thread of imports, and under one GIL
        # each of this thread's writes before the line would wait for it.
        start_web()
    stopping: list[int] = []

    def _stop(signum: int, frame: object) -> None:
        if stopping:  # a second signal: stop waiting for builds
            os._exit(130)
        stopping.append(signum)
        server._stop.set()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, _stop)
    try:
        server.wait()
        if stop_web is not None:
            stop_web()
        server.stop()
        # Ended builds' workspaces are deleted in the background (git processes
        # that would outlive this one): let them finish, bounded.
        wait_for_tidying(10.0)
        monitoring.close()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0


def _network_words(sandbox: object, settings: Settings) -> str:
    """What the start line says about the network of steps that do not ask."""
    default = getattr(sandbox, "network", None)  # the namespace sandbox's policy
    if isinstance(default, bool):
        return "network on" if default else "network off (server policy)"
    if "isolates_network" not in getattr(sandbox, "capabilities", frozenset()):
        return "network on (this sandbox cannot turn it off)"
    return (
        "network only for steps that ask (network: true)"
        if settings.network
        else ("network off (server policy)")
    )
