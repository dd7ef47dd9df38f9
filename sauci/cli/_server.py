"""Server-side commands: ``serve``, ``repo``, ``trigger``, ``rerun``, ``cancel``, ``status``."""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sauci.app.flags import policy_overrides, server_loop_args

# ``sauci repo`` lives in its own module; cmd_repo stays reachable here, where
# the command table looks for it.
from sauci.app.repos import resolve_location
from sauci.app.serve import WebStarter, run_server
from sauci.cli._context import configure_server_logging, open_cli_store, settings_from, style_from
from sauci.cli._render import age, duration
from sauci.cli._repos import cmd_repo
from sauci.cli._safe import printable
from sauci.core.config import Settings
from sauci.core.models import Status
from sauci.exceptions import ConfigError
from sauci.typing import Store

if TYPE_CHECKING:
    pass

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


def _web_ui(args: argparse.Namespace, settings: Settings) -> WebStarter:
    """SauCI's own pages (the built-in Django project), started on a thread once
    the server says it is watching: everything the UI imports is imported there."""

    def start(store: Store) -> tuple[str, Callable[[], None], Callable[[], None]]:
        ui: list = []

        def _start_ui() -> None:
            # Django's set-up and first migration take a second or so; pushes are
            # built meanwhile, and the UI announces its own address when ready.
            try:
                # Imports no Django yet: serve_ui says what to install if it is missing.
                from sauci.contrib.django.project import serve_ui

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

        def stop() -> None:
            if ui_thread.ident is not None:  # started
                ui_thread.join(30)
            for handle in ui:
                handle.stop()

        return f"; results at http://{args.host}:{args.port}/", ui_thread.start, stop

    return start


def cmd_serve(args: argparse.Namespace) -> int:
    # --broker, --lost-timeout and --attempts come from sauci.app.flags.add_serve_options.
    settings = settings_from(
        args,
        broker=getattr(args, "broker", None),
        lost_timeout=getattr(args, "lost_timeout", None),
        attempts=getattr(args, "attempts", None),
        launch_workers=getattr(args, "launch_workers", None),
        launcher=getattr(args, "launcher", None),
        **policy_overrides(args),
    )
    configure_server_logging(settings, level_given=args.log_level is not None)
    web = None if args.no_ui else _web_ui(args, settings)
    return run_server(open_cli_store(settings), settings, args, web=web)


def cmd_trigger(args: argparse.Namespace) -> int:
    from sauci.core.scheduler import Scheduler
    from sauci.source.git import is_remote
    from sauci.triggers import is_bare

    settings = settings_from(args)
    store = open_cli_store(settings)
    params = {}
    for item in args.param or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--param takes KEY=VALUE, got {item!r}")
        params[key] = value
    ref = args.ref
    if ref and not ref.startswith("refs/"):
        ref = f"refs/heads/{ref}"
    location = resolve_location(args.repo)
    if not is_remote(location):
        is_bare(Path(location))  # SourceUnavailableError (exit 2): not a git repository
    if args.event == "pull_request":
        from sauci.cli._pull_trigger import pull_request_build

        build = pull_request_build(store, location, args, params, actor=_actor())
    else:
        build = Scheduler(store).trigger(location, ref=ref, params=params, actor=_actor())
    print(f"queued build #{build.id}")
    _wake_server(settings)
    return 0


def _wake_server(settings: Settings) -> None:
    """Tell a `sauci serve` on this data dir to look now (see sauci.triggers.wake)."""
    from sauci.triggers.wake import poke

    poke(settings.data_dir / "spool")


def _actor() -> str:
    return os.environ.get("USER") or os.environ.get("LOGNAME") or "cli"


def cmd_rerun(args: argparse.Namespace) -> int:
    from sauci.core.scheduler import Scheduler

    settings = settings_from(args)
    store = open_cli_store(settings)
    build = Scheduler(store).rerun(args.build, failed_only=args.failed, actor=_actor())
    what = "failed and skipped steps of" if args.failed else ""
    print(f"queued build #{build.id}: rerun of {what} build #{args.build}".replace("  ", " "))
    _wake_server(settings)
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    from sauci.core.scheduler import Scheduler

    settings = settings_from(args)
    store = open_cli_store(settings)
    build = Scheduler(store).cancel(args.build, actor=_actor())
    if build.status is Status.CANCELLED:
        print(f"build #{build.id} cancelled")
    else:
        print(f"build #{build.id}: cancel requested; the server ends its steps")
    _wake_server(settings)
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
        print(f"last error: {printable(status['last_error'])}")
    if status and status.get("capacity"):
        room, gib = status["capacity"], 1024**3
        print(
            f"capacity: {room['cpus_used']:g}/{room['cpus']:g} CPUs, "
            f"{room['memory_used'] / gib:.1f}/{room['memory'] / gib:.1f} GiB in use"
        )
    for room in (status or {}).get("workers") or ():  # placed by cost (docs/distributed.md)
        print(
            f"worker {room['name']}: {room['cpus_used']:g}/{room['cpus']:g} CPUs, "
            f"{room['memory_used'] / 1024**3:.1f}/{room['memory'] / 1024**3:.1f} GiB, "
            f"{room['builds']}/{room['slots']} builds in use"
        )
    if status and status.get("launcher"):  # latent workers (docs/distributed.md)
        launched = status["launcher"]
        failed = f", last failure: {launched['last_failure']}" if launched["last_failure"] else ""
        print(
            f"launched workers: {launched['running']}/{launched['max']} running, "
            f"{launched['started']} started, {launched['failures']} failed to start{failed}"
        )
    queued = store.list_builds(status=Status.QUEUED, limit=100)
    running = store.list_builds(status=Status.RUNNING, limit=100)
    print(f"queue: {len(queued)} waiting, {len(running)} running")
    for build in running:
        print(
            f"  {style.status(build.status)} #{build.id} {Path(build.repo).name} "
            f"{printable(build.branch)} {build.sha[:8]} for {duration(time.time() - (build.started_at or time.time()))}"
        )
        for step in store.list_steps(build.id):
            if step.status is Status.RUNNING:
                print(f"      {style.status(step.status)} {printable(step.name)}")
    for build in queued[:10]:
        waiting = f" ({printable(build.reason)})" if build.reason else ""
        print(
            f"  {style.status(build.status)} #{build.id} {Path(build.repo).name} "
            f"{printable(build.branch)} "
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
