"""The ``sauci`` command line.

argparse rather than click: it imports in about 2 ms instead of 20 ms, and
start-up time is part of ``sauci run``'s budget. Each command lives in a
small module and is imported only when chosen; only the chosen command's
sub-parser is built (all of them for ``sauci --help`` or an unknown command).

To add a command: write ``cmd_<name>(args)`` in a module of this package, a
function that adds its arguments, and one row in ``_COMMANDS``.

Exit codes (docs/cli.md): 0 passed, 1 a required step failed, 2 any user or
configuration error, 3 SauCI itself could not work (store or broker down, a
sandbox that cannot start: the build "errored"), 130 interrupted. Errors map
to 2 or 3 through the one table, ``sauci.exceptions.EXIT_CODES``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from sauci.cli._sandbox_check import add_sandbox_flag
from sauci.cli._trigger_flags import add_trigger_flags
from sauci.cli._workflow_files import add_workflow_flags

# The command modules take these from here (`from sauci.cli import EXIT_OK`).
from sauci.exceptions import EXIT_FAILED as EXIT_FAILED
from sauci.exceptions import EXIT_PASSED as EXIT_OK
from sauci.exceptions import EXIT_UNAVAILABLE as EXIT_ERRORED  # noqa: F401 - for _local
from sauci.exceptions import EXIT_USAGE as EXIT_USAGE

__all__ = ["main"]


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="where logs, workspaces and the SQLite store live")
    parser.add_argument("--store", help="store URL (default: SQLite in the data dir)")
    parser.add_argument(
        "--color",
        choices=["auto", "always", "never"],
        default="auto",
        help="color the output (default auto: on a terminal, unless NO_COLOR is set)",
    )
    parser.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        help="SauCI's own log level (SAUCI_LOG_LEVEL)",
    )
    parser.add_argument(
        "--log-format", choices=["console", "json"], help="SauCI's log format (SAUCI_LOG_FORMAT)"
    )


# -- each command's arguments (the common ones are added by build_parser) ------

_BUILD_HELP = "the build's id (the number `sauci builds` lists)"


def _run_args(run: argparse.ArgumentParser) -> None:
    run.add_argument("path", nargs="?", default=".", help="repository (default: current directory)")
    run.add_argument(
        "--commit",
        metavar="REF",
        help="run a clean checkout of this commit (default: the working tree as it is, "
        "uncommitted and untracked files included, ignored ones left out)",
    )
    run.add_argument(
        "--dirty", action="store_true", help="deprecated: the working tree is the default now"
    )
    run.add_argument("-j", "--jobs", type=int, help="steps run at once (default 4)")
    run.add_argument(
        "--fail-fast", action="store_true", default=None, help="stop at the first failure"
    )
    run.add_argument(
        "-q", "--quiet", action="store_true", help="fold step output; show failures' tails"
    )
    add_workflow_flags(run, file=True)  # --file, --workflow, --job
    run.add_argument("--event", default="cli", help="event name for `when` filters (default: cli)")
    run.add_argument(
        "--keep-workspace", action="store_true", help="keep the workspace copy after the run"
    )
    add_sandbox_flag(run, help="the sandbox of steps that name none (default: local)")


def _validate_args(validate: argparse.ArgumentParser) -> None:
    add_workflow_flags(validate, path=True)  # path, --workflow, --job
    add_sandbox_flag(
        validate, help="check steps against this sandbox, as `sauci run --sandbox` (default: local)"
    )


def _init_args(init: argparse.ArgumentParser) -> None:
    init.add_argument("path", nargs="?", default=".", help="repository directory")
    init.add_argument("--force", action="store_true", help="overwrite an existing .sauci.yml")


def _demo_args(demo: argparse.ArgumentParser) -> None:
    demo.add_argument("--dir", help="where to make the sample repository (default: a temp dir)")
    demo.add_argument(
        "--serve",
        action="store_true",
        help="then serve the results in the web UI until Ctrl-C (needs the django extra)",
    )
    demo.add_argument("--host", default="127.0.0.1", help="address of the web UI (--serve)")
    demo.add_argument("--port", type=int, default=8000, help="port of the web UI (--serve)")


def _builds_args(builds: argparse.ArgumentParser) -> None:
    builds.add_argument("--repo", help="only builds of this repository (path or URL)")
    builds.add_argument("--branch", help="only builds of this branch")
    builds.add_argument("--status", help="only builds in this state (passed, failed, ...)")
    builds.add_argument("--limit", type=int, default=20, help="show at most N (default 20)")
    builds.add_argument("--before", type=int, help="show builds older than this id (paging)")


def _show_args(show: argparse.ArgumentParser) -> None:
    show.add_argument("build", type=int, help=_BUILD_HELP)


def _logs_args(logs: argparse.ArgumentParser) -> None:
    logs.add_argument("build", type=int, help=_BUILD_HELP)
    logs.add_argument("step", nargs="?", help="only this step's log (default: every step)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing while it runs")


def _serve_args(serve: argparse.ArgumentParser) -> None:
    # --broker etc. from app.flags: cli._worker imports sauci.distributed.
    from sauci.app.flags import add_serve_options
    from sauci.cli._server import server_loop_args  # shared with Django's sauci_serve

    server_loop_args(serve)
    serve.add_argument(
        "--host", default="127.0.0.1", help="address of the web UI (default 127.0.0.1)"
    )
    serve.add_argument("--port", type=int, default=8000, help="port of the web UI (default 8000)")
    serve.add_argument(
        "--admin-password",
        help="password of the 'admin' login (else SAUCI_ADMIN_PASSWORD, "
        "else generated once and printed)",
    )
    serve.add_argument(
        "--no-ui", action="store_true", help="build pushes without serving the web UI"
    )
    add_serve_options(serve)


def _worker_args(worker: argparse.ArgumentParser) -> None:
    from sauci.cli._worker import worker_args

    worker_args(worker)


def _workers_args(workers: argparse.ArgumentParser) -> None:
    from sauci.cli._worker import workers_args

    workers_args(workers)


def _repo_args(repo: argparse.ArgumentParser) -> None:
    repo_sub = repo.add_subparsers(dest="repo_command", metavar="ACTION", required=True)
    add = repo_sub.add_parser("add", help="register a repository and install its hook")
    _common(add)
    add.add_argument("location", help="path or URL")
    add.add_argument(
        "--hook",
        choices=["commit", "receive", "none"],
        help="hook to install (default: receive for a bare repository, commit otherwise)",
    )
    add.add_argument("--poll", type=float, help="poll every N seconds instead of a hook")
    remove = repo_sub.add_parser("remove", help="unregister a repository and take its hook out")
    _common(remove)
    remove.add_argument("location", help="path, URL or id")
    listing = repo_sub.add_parser("list", help="registered repositories")
    _common(listing)


def _trigger_args(trigger: argparse.ArgumentParser) -> None:
    trigger.add_argument("repo", help="repository path or URL")
    trigger.add_argument("--ref", default="", help="branch or ref (default: HEAD)")
    add_trigger_flags(trigger)  # --param, and --event pull_request with --base, --number


def _rerun_args(rerun: argparse.ArgumentParser) -> None:
    rerun.add_argument("build", type=int, help=_BUILD_HELP)
    rerun.add_argument("--failed", action="store_true", help="rerun only failed and skipped steps")


def _cancel_args(cancel: argparse.ArgumentParser) -> None:
    cancel.add_argument("build", type=int, help=_BUILD_HELP)


def _no_args(parser: argparse.ArgumentParser) -> None:
    pass


def _store_args(store: argparse.ArgumentParser) -> None:
    store_sub = store.add_subparsers(dest="store_command", metavar="ACTION", required=True)
    copy = store_sub.add_parser("copy", help="copy everything from one store to another")
    _common(copy)
    _common(store_sub.add_parser("rebuild", help="rebuild a stream store's view from its log"))
    for flag, dest, what in (("--from", "source", "copy from"), ("--to", "target", "copy into")):
        copy.add_argument(
            flag, dest=dest, required=True, metavar="URL", help=f"the store to {what}"
        )
    copy.add_argument("--merge", action="store_true", help="add to builds there (idempotent)")


def _bench_args(bench: argparse.ArgumentParser) -> None:
    bench_sub = bench.add_subparsers(dest="bench_command", metavar="WHAT", required=True)
    stores = bench_sub.add_parser("stores", help="one workload on every given store, compared")
    _common(stores)
    stores.add_argument("--url", action="append", help="an EMPTY store to measure (repeatable)")
    stores.add_argument("--builds", type=int, default=200, help="builds to record (default 200)")
    stores.add_argument("--steps", type=int, default=4, help="steps per build (default 4)")
    stores.add_argument("--log-kib", type=int, default=64, help="KiB of log per step (default 64)")
    stores.add_argument("--svg", help="write a bar chart here")


class _Command:
    """One row of the command table."""

    __slots__ = ("add_args", "common", "help", "module")

    def __init__(
        self,
        module: str,
        help: str,
        add_args: Callable[[argparse.ArgumentParser], None],
        *,
        common: bool = True,
    ) -> None:
        self.module = module  # sauci.cli.<module> defines cmd_<name>(args)
        self.help = help
        self.add_args = add_args
        self.common = common  # False: its sub-commands take the common flags themselves


# In the order `sauci --help` lists them.
_COMMANDS: dict[str, _Command] = {
    "run": _Command("_local", "run the repository's pipeline now, as CI would", _run_args),
    "validate": _Command("_local", "check .sauci.yml and print every problem", _validate_args),
    "init": _Command("_local", "write a commented starter .sauci.yml", _init_args),
    "demo": _Command(
        "_demo", "make a sample repository, build it and show the results", _demo_args
    ),
    "builds": _Command("_inspect", "list recorded builds, newest first", _builds_args),
    "show": _Command("_inspect", "show one build with its steps", _show_args),
    "logs": _Command("_inspect", "print a build's log", _logs_args),
    "serve": _Command("_server", "build every push to the registered repositories", _serve_args),
    "repo": _Command("_server", "register repositories for sauci serve", _repo_args, common=False),
    "trigger": _Command("_server", "queue a manual build", _trigger_args),
    "rerun": _Command("_server", "queue a build again", _rerun_args),
    "cancel": _Command("_server", "cancel a queued or running build", _cancel_args),
    "status": _Command("_server", "the server, its queue and running builds", _no_args),
    "worker": _Command(
        "_worker", "run builds sent by a `sauci serve --broker` (a Celery worker)", _worker_args
    ),
    "workers": _Command(
        "_worker", "list workers, their labels, slots and heartbeats", _workers_args
    ),
    "store": _Command("_storage", "work on stores", _store_args, common=False),
    "bench": _Command("_storage", "benchmarks", _bench_args, common=False),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser for ``command`` only (faster), or for every command when None."""
    parser = argparse.ArgumentParser(
        prog="sauci",
        description="SauCI: continuous integration you can embed.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, spec in _COMMANDS.items():
        if command is not None and name != command:
            continue
        child = sub.add_parser(name, help=spec.help)
        if spec.common:
            _common(child)
        spec.add_args(child)
    return parser


def _chosen(argv: Sequence[str]) -> str | None:
    """The command named in ``argv`` when the top level sees nothing else; else None."""
    for arg in argv:
        if arg.startswith("-"):
            return None  # a top-level option (--version, --help): the full parser
        return arg if arg in _COMMANDS else None
    return None


# Commands that install monitoring themselves (and record their own use).
_SELF_TRACKED = frozenset({"run", "serve", "worker"})


def _track_command(args: argparse.Namespace) -> None:
    """Opt-in usage analytics: record which command ran, never its arguments.

    Costs one environment lookup unless analytics are on; a store that cannot
    be opened only means the event is not recorded.
    """
    import os

    if args.command in _SELF_TRACKED:
        return
    from sauci.monitoring import analytics_opted_in

    if not analytics_opted_in(os.environ):
        return
    from sauci.cli._context import open_cli_store, settings_from
    from sauci.exceptions import SauCIError
    from sauci.monitoring import install

    try:
        settings = settings_from(args)
        store = open_cli_store(settings)
    except SauCIError:
        return
    try:
        handle = install(
            store=store, component="cli", command=args.command, data_dir=settings.data_dir
        )
        handle.close(timeout=1.0)
    finally:
        store.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``sauci`` command line with ``argv`` (default ``sys.argv[1:]``);
    returns the exit code. The ``sauci`` executable and ``python -m sauci``
    start here."""
    try:
        return _main(sys.argv[1:] if argv is None else argv)
    except KeyboardInterrupt:  # before a command took Ctrl-C over (while modules import)
        print("sauci: interrupted", file=sys.stderr)
        return 130


def _main(argv: Sequence[str]) -> int:
    parser = build_parser(_chosen(argv))
    args = parser.parse_args(argv)
    if args.version:
        import sauci

        print(f"sauci {sauci.__version__}")
        return EXIT_OK
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE

    previous = _stop_signals_as_interrupt() if args.command == "run" else {}
    try:
        return _dispatch(args)
    finally:
        if previous:
            import signal

            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _stop_signals_as_interrupt() -> dict[Any, Any]:
    """Make ``kill`` (SIGTERM) and a closed terminal (SIGHUP) end ``sauci run``
    as Ctrl-C does, cleaning up, rather than at once (the steps' processes left
    running, the build "running", the workspace kept). Returns the handlers to
    put back; none off the main thread."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    return {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}


def _dispatch(args: argparse.Namespace) -> int:
    from importlib import import_module

    from sauci.exceptions import SauCIError, exit_code

    try:
        commands = import_module(f"sauci.cli.{_COMMANDS[args.command].module}")
        code = int(getattr(commands, f"cmd_{args.command}")(args))
        _track_command(args)
        return code
    except SauCIError as exc:
        print(f"sauci: error: {exc}", file=sys.stderr)
        return exit_code(exc)
    except KeyboardInterrupt:
        print("sauci: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
