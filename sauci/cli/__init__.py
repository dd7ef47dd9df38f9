"""The ``sauci`` command line.

argparse rather than click: it imports in about 2 ms instead of 20 ms, and
start-up time is part of ``sauci run``'s budget. Each command lives in a
small module and is imported only when chosen.

Exit codes: 0 success, 1 a required step failed (or the build was
cancelled), 2 a usage or configuration error, 3 SauCI itself could not give
an answer (errored), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_ERRORED = 0, 1, 2, 3


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="where logs, workspaces and the SQLite store live")
    parser.add_argument("--store", help="store URL (default: SQLite in the data dir)")
    parser.add_argument("--color", choices=["auto", "always", "never"], default="auto")
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--log-format", choices=["console", "json"])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sauci",
        description="SauCI: continuous integration you can embed.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run the repository's pipeline now, as CI would")
    _common(run)
    run.add_argument("path", nargs="?", default=".", help="repository (default: current directory)")
    run.add_argument("--dirty", action="store_true", help="use the working tree as it is, not HEAD")
    run.add_argument("-j", "--jobs", type=int, help="steps run at once (default 4)")
    run.add_argument(
        "--fail-fast", action="store_true", default=None, help="stop at the first failure"
    )
    run.add_argument(
        "-q", "--quiet", action="store_true", help="fold step output; show failures' tails"
    )
    run.add_argument("--file", default=None, help="pipeline file (default: .sauci.yml)")
    run.add_argument("--event", default="cli", help="event name for `when` filters (default: cli)")
    run.add_argument("--keep-workspace", action="store_true", help="keep the checked-out workspace")

    validate = sub.add_parser("validate", help="check .sauci.yml and print every problem")
    _common(validate)
    validate.add_argument("path", nargs="?", default=".", help="file or repository directory")

    init = sub.add_parser("init", help="write a commented starter .sauci.yml")
    _common(init)
    init.add_argument("path", nargs="?", default=".", help="repository directory")
    init.add_argument("--force", action="store_true", help="overwrite an existing .sauci.yml")

    demo = sub.add_parser("demo", help="make a sample repository, build it and show the results")
    _common(demo)
    demo.add_argument("--dir", help="where to make the sample repository (default: a temp dir)")

    builds = sub.add_parser("builds", help="list recorded builds, newest first")
    _common(builds)
    builds.add_argument("--repo")
    builds.add_argument("--branch")
    builds.add_argument("--status")
    builds.add_argument("--limit", type=int, default=20)
    builds.add_argument("--before", type=int, help="show builds older than this id (paging)")

    show = sub.add_parser("show", help="show one build with its steps")
    _common(show)
    show.add_argument("build", type=int)

    logs = sub.add_parser("logs", help="print a build's log")
    _common(logs)
    logs.add_argument("build", type=int)
    logs.add_argument("step", nargs="?")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing while it runs")
    serve = sub.add_parser("serve", help="build every push to the registered repositories")
    _common(serve)
    serve.add_argument(
        "--repo", action="append", help="register and watch this repository (repeatable)"
    )
    serve.add_argument(
        "--hook",
        choices=["commit", "receive", "none"],
        help="hook to install (default: receive for bare, commit for working repos)",
    )
    serve.add_argument(
        "--poll", type=float, help="seconds between polls of repositories without a hook"
    )
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
    serve.add_argument(
        "--step-slots", type=int, help="step slots shared by all builds (default: 2 x CPUs)"
    )
    serve.add_argument("--max-builds", type=int, default=2, help="builds at once (default 2)")
    serve.add_argument(
        "--cancel-superseded",
        action="store_true",
        help="a newer push to a branch cancels its older builds",
    )
    serve.add_argument(
        "--no-retry-interrupted",
        action="store_true",
        help="mark builds a crash interrupted as errored instead of requeueing them",
    )

    repo = sub.add_parser("repo", help="register repositories for sauci serve")
    repo_sub = repo.add_subparsers(dest="repo_command", metavar="ACTION", required=True)
    add = repo_sub.add_parser("add", help="register a repository and install its hook")
    _common(add)
    add.add_argument("location", help="path or URL")
    add.add_argument("--hook", choices=["commit", "receive", "none"])
    add.add_argument("--poll", type=float, help="poll every N seconds instead of a hook")
    remove = repo_sub.add_parser("remove", help="unregister a repository and take its hook out")
    _common(remove)
    remove.add_argument("location", help="path, URL or id")
    listing = repo_sub.add_parser("list", help="registered repositories")
    _common(listing)

    trigger = sub.add_parser("trigger", help="queue a manual build")
    _common(trigger)
    trigger.add_argument("repo", help="repository path or URL")
    trigger.add_argument("--ref", default="", help="branch or ref (default: HEAD)")
    trigger.add_argument(
        "--param", action="append", metavar="KEY=VALUE", help="build parameter (repeatable)"
    )

    rerun = sub.add_parser("rerun", help="queue a build again")
    _common(rerun)
    rerun.add_argument("build", type=int)
    rerun.add_argument("--failed", action="store_true", help="rerun only failed and skipped steps")

    cancel = sub.add_parser("cancel", help="cancel a queued or running build")
    _common(cancel)
    cancel.add_argument("build", type=int)

    status = sub.add_parser("status", help="the server, its queue and running builds")
    _common(status)

    store = sub.add_parser("store", help="work on stores")
    store_sub = store.add_subparsers(dest="store_command", metavar="ACTION", required=True)
    copy = store_sub.add_parser("copy", help="copy everything from one store to another")
    _common(copy)
    copy.add_argument("--from", dest="source", required=True, metavar="URL")
    copy.add_argument("--to", dest="target", required=True, metavar="URL")
    copy.add_argument("--no-resume", action="store_true", help="start over instead of resuming")

    bench = sub.add_parser("bench", help="benchmarks")
    bench_sub = bench.add_subparsers(dest="bench_command", metavar="WHAT", required=True)
    stores = bench_sub.add_parser("stores", help="one workload on every given store, compared")
    _common(stores)
    stores.add_argument("--url", action="append", help="an EMPTY store to measure (repeatable)")
    stores.add_argument("--builds", type=int, default=200)
    stores.add_argument("--steps", type=int, default=4)
    stores.add_argument("--log-kib", type=int, default=64)
    stores.add_argument("--svg", help="write a bar chart here")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        import sauci

        print(f"sauci {sauci.__version__}")
        return EXIT_OK
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE

    from sauci.exceptions import ConfigError, PluginError, SauCIError

    try:
        if args.command in ("run", "validate", "init"):
            from sauci.cli import _local as commands
        elif args.command == "demo":
            from sauci.cli import _demo as commands  # type: ignore[no-redef]
        elif args.command in ("store", "bench"):
            from sauci.cli import _storage as commands  # type: ignore[no-redef]
        elif args.command in ("serve", "repo", "trigger", "rerun", "cancel", "status"):
            from sauci.cli import _server as commands  # type: ignore[no-redef]
        else:
            from sauci.cli import _inspect as commands  # type: ignore[no-redef]
        return int(getattr(commands, f"cmd_{args.command}")(args))
    except (ConfigError, PluginError) as exc:
        print(f"sauci: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SauCIError as exc:
        print(f"sauci: error: {exc}", file=sys.stderr)
        return EXIT_ERRORED
    except KeyboardInterrupt:
        print("sauci: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
