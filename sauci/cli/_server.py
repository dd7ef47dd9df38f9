"""Server-side commands: ``serve``, ``repo``, ``trigger``, ``rerun``, ``cancel``, ``status``."""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sauci.cli._context import configure_server_logging, open_cli_store, settings_from, style_from
from sauci.cli._render import age, duration

# ``sauci repo`` lives in its own module; cmd_repo stays reachable here, where
# the command table looks for it.
from sauci.cli._repos import cmd_repo, register_repo, resolve_location
from sauci.core.config import Settings
from sauci.core.models import Status
from sauci.exceptions import ConfigError
from sauci.typing import Store

if TYPE_CHECKING:
    from sauci.core.server import ServerOptions

__all__ = [
    "cmd_cancel",
    "cmd_repo",
    "cmd_rerun",
    "cmd_serve",
    "cmd_status",
    "cmd_trigger",
    "configure_server_logging",
    "run_server",
    "server_loop_args",
]


def server_loop_args(parser: argparse.ArgumentParser) -> None:
    """The server loop's flags, as ``sauci serve`` has them, for Django's ``sauci_serve``.

    A test checks that ``sauci serve`` takes each of them the same way.
    """
    parser.add_argument(
        "--repo", action="append", help="register and watch this repository (repeatable)"
    )
    parser.add_argument(
        "--hook",
        choices=["commit", "receive", "none"],
        help="hook to install (default: receive for bare, commit for working repos)",
    )
    parser.add_argument(
        "--poll", type=float, help="seconds between polls of repositories without a hook"
    )
    parser.add_argument(
        "--step-slots", type=int, help="step slots shared by all builds (default: 2 x CPUs)"
    )
    parser.add_argument("--max-builds", type=int, default=2, help="builds at once (default 2)")
    parser.add_argument(
        "--idle-tick",
        type=float,
        default=1.0,
        help="when idle, look for builds queued by other processes at least this often, "
        "in seconds (default 1; pushes and this process's own are seen at once)",
    )
    parser.add_argument(
        "--cancel-superseded",
        action="store_true",
        help="a newer push to a branch cancels its older builds",
    )
    parser.add_argument(
        "--no-retry-interrupted",
        action="store_true",
        help="mark builds a crash interrupted as errored instead of requeueing them",
    )


# What a web front end returns when started: text for the start line, and how to stop it.
WebStarter = Callable[[Store], tuple[str, Callable[[], None]]]


def _server_options(args: argparse.Namespace) -> ServerOptions:
    """The server loop's options from its flags; ConfigError names a bad one."""
    from sauci.core.server import ServerOptions

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
    from sauci.app import build_server
    from sauci.monitoring import install

    options = _server_options(args)  # a bad flag says so before anything starts
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
    where, stop_web = web(store) if web is not None else ("", None)
    if settings.broker:
        from sauci.distributed._app import safe_url

        where += f"; builds go to workers through {safe_url(settings.broker)}"
    if server.dispatcher is None:
        allowed = sorted(server.sandboxes.allowed - {server.sandboxes.name})
        where += f"; steps run in the {server.sandboxes.name} sandbox" + (
            f" (pipelines may ask for {', '.join(allowed)})" if allowed else ""
        )
    say(
        f"{prog}: watching {len(repos)} repositor{'y' if len(repos) == 1 else 'ies'}; "
        f"data in {settings.data_dir}{where}; Ctrl-C stops"
    )
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
        monitoring.close()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0


def _web_ui(args: argparse.Namespace, settings: Settings) -> WebStarter:
    """SauCI's own pages (the built-in Django project), started on a thread."""
    try:
        from sauci.contrib.django.project import serve_ui
    except ImportError as exc:
        from sauci.exceptions import MissingDependencyError

        raise MissingDependencyError(exc.name or "django", "django") from exc

    def start(store: Store) -> tuple[str, Callable[[], None]]:
        ui: list = []

        def _start_ui() -> None:
            # Django's set-up and first migration take a second or so; pushes are
            # built meanwhile, and the UI announces its own address when ready.
            try:
                ui.append(
                    serve_ui(
                        settings,
                        host=args.host,
                        port=args.port,
                        admin_password=args.admin_password,
                        store=store,
                    )
                )
            except Exception as exc:  # the builds go on without pages
                print(f"sauci serve: the web UI did not start: {exc}", file=sys.stderr, flush=True)

        ui_thread = threading.Thread(target=_start_ui, name="sauci-ui", daemon=True)
        ui_thread.start()

        def stop() -> None:
            ui_thread.join(30)
            for handle in ui:
                handle.stop()

        return f"; results at http://{args.host}:{args.port}/", stop

    return start


def cmd_serve(args: argparse.Namespace) -> int:
    # --broker, --lost-timeout and --attempts come from sauci.cli._worker.add_serve_options.
    from sauci.cli._worker import policy_overrides

    settings = settings_from(
        args,
        broker=getattr(args, "broker", None),
        lost_timeout=getattr(args, "lost_timeout", None),
        attempts=getattr(args, "attempts", None),
        **policy_overrides(args),
    )
    configure_server_logging(settings, level_given=args.log_level is not None)
    web = None if args.no_ui else _web_ui(args, settings)
    return run_server(open_cli_store(settings), settings, args, web=web)


def cmd_trigger(args: argparse.Namespace) -> int:
    from sauci.core.scheduler import Scheduler

    store = open_cli_store(settings_from(args))
    params = {}
    for item in args.param or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--param takes KEY=VALUE, got {item!r}")
        params[key] = value
    ref = args.ref
    if ref and not ref.startswith("refs/"):
        ref = f"refs/heads/{ref}"
    build = Scheduler(store).trigger(
        resolve_location(args.repo), ref=ref, params=params, actor=_actor()
    )
    print(f"queued build #{build.id}")
    return 0


def _actor() -> str:
    return os.environ.get("USER") or os.environ.get("LOGNAME") or "cli"


def cmd_rerun(args: argparse.Namespace) -> int:
    from sauci.core.scheduler import Scheduler

    store = open_cli_store(settings_from(args))
    build = Scheduler(store).rerun(args.build, failed_only=args.failed, actor=_actor())
    what = "failed and skipped steps of" if args.failed else ""
    print(f"queued build #{build.id}: rerun of {what} build #{args.build}".replace("  ", " "))
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    from sauci.core.scheduler import Scheduler

    store = open_cli_store(settings_from(args))
    build = Scheduler(store).cancel(args.build, actor=_actor())
    if build.status is Status.CANCELLED:
        print(f"build #{build.id} cancelled")
    else:
        print(f"build #{build.id}: cancel requested; the server ends its steps")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from sauci.core.server import read_status

    style = style_from(args)
    settings = settings_from(args)
    store = open_cli_store(settings)
    status = read_status(settings.data_dir)
    if status and time.time() - status["heartbeat"] < 10:
        print(
            f"server {status['name']} up {duration(time.time() - status['started_at'])}, "
            f"heartbeat {age(status['heartbeat'])}"
        )
    else:
        print(style.paint("server: not running", "33"))
    if status and status.get("last_error"):
        print(f"last error: {status['last_error']}")
    queued = store.list_builds(status=Status.QUEUED, limit=100)
    running = store.list_builds(status=Status.RUNNING, limit=100)
    print(f"queue: {len(queued)} waiting, {len(running)} running")
    for build in running:
        print(
            f"  {style.status(build.status)} #{build.id} {Path(build.repo).name} {build.branch} "
            f"{build.sha[:8]} for {duration(time.time() - (build.started_at or time.time()))}"
        )
        for step in store.list_steps(build.id):
            if step.status is Status.RUNNING:
                print(f"      {style.status(step.status)} {step.name}")
    for build in queued[:10]:
        waiting = f" ({build.reason})" if build.reason else ""
        print(
            f"  {style.status(build.status)} #{build.id} {Path(build.repo).name} {build.branch} "
            f"{build.event} waiting {age(build.queued_at)}{waiting}"
        )
    workers = store.list_workers()
    if workers:  # distributed runs: `sauci workers` has the details
        busy = sum(w.slots_used for w in workers)
        print(
            f"workers: {len(workers)}, {busy}/{sum(w.slots for w in workers)} slots in use: "
            + ", ".join(f"{w.name} ({w.state})" for w in workers[:10])
        )
    return 0
