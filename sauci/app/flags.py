"""The flags the two front ends share: ``sauci serve``/``sauci worker`` and Django's
``manage.py sauci_serve``/``sauci_worker`` take each of them the same way.

Also what the flags give: :func:`policy_overrides` and :func:`worker_overrides`
turn them into settings overrides (None: not given).
"""

from __future__ import annotations

import argparse
from typing import Any

from sauci.exceptions import ConfigError

__all__ = [
    "add_policy_options",
    "add_serve_options",
    "policy_overrides",
    "refuse_celery_options",
    "server_loop_args",
    "worker_args",
    "worker_overrides",
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
    serve.add_argument(
        "--launch-workers",
        type=int,
        metavar="N",
        help="with --broker: start up to N `sauci worker` processes when builds wait "
        "and no worker can take them; they stop when idle (default 0: none)",
    )
    serve.add_argument(
        "--launcher",
        choices=("process", "docker", "vm"),
        help="where --launch-workers starts them: local processes (default), Docker "
        "containers of launch_image, or VM guests (docs/distributed.md)",
    )
    add_policy_options(serve)


def add_policy_options(parser: argparse.ArgumentParser) -> None:
    """The server's policy for pushed code: ``--sandbox``, ``--allow-sandbox``,
    ``--no-network``, ``--secrets-file``, and the room steps' caches take,
    ``--cache-limit``."""
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
        "--no-network",
        action="store_false",
        dest="network",
        default=None,
        help="steps run without network (in sandboxes that can cut it); a pipeline's "
        "'network: true' is then refused",
    )
    parser.add_argument(
        "--vm-allow-emulation",
        action="store_true",
        dest="vm_allow_emulation",
        default=None,
        help="the vm sandbox may boot its guests under emulation (TCG) where KVM "
        "cannot run one (slow: seconds per boot)",
    )
    parser.add_argument(
        "--secrets-file",
        metavar="PATH",
        help="TOML file of the secrets steps may name (with SAUCI_SECRET_* variables)",
    )
    parser.add_argument(
        "--cache-limit",
        metavar="SIZE",
        help="step caches kept per repository on this machine, such as 2GiB (the default); "
        "0 turns caching off",
    )


def policy_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings the policy flags give (None: not given)."""
    sandbox = getattr(args, "sandbox", None)
    allowed = getattr(args, "allow_sandbox", None)
    return {
        "sandbox": "" if sandbox == "auto" else sandbox,
        "allowed_sandboxes": ",".join(allowed) if allowed else None,
        "network": getattr(args, "network", None),
        "vm_allow_emulation": getattr(args, "vm_allow_emulation", None),
        "secrets_file": getattr(args, "secrets_file", None),
        "cache_limit": getattr(args, "cache_limit", None),
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
        "--cpus",
        type=float,
        metavar="N",
        help="CPUs builds here may declare in all (default: this machine's)",
    )
    worker.add_argument(
        "--memory",
        metavar="SIZE",
        help="memory builds here may declare in all, e.g. 8GiB (default: this machine's)",
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
    worker.add_argument(
        "--idle-exit",
        type=float,
        metavar="SECONDS",
        help="stop (as SIGTERM would) after this long with no build running; "
        "what workers the server launches are started with (default: never)",
    )
    add_policy_options(worker)
    worker.add_argument(
        "-Q",
        "--queues",
        dest="queues",
        help=argparse.SUPPRESS,  # computed from --labels; refused with an explanation
    )
    worker.add_argument("-P", "--pool", dest="pool", help=argparse.SUPPRESS)


def refuse_celery_options(args: argparse.Namespace) -> None:
    """ConfigError for Celery's -Q and --pool, which a SauCI worker decides itself."""
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
        "worker_cpus": getattr(args, "cpus", None),
        "worker_memory": getattr(args, "memory", None),
        "worker_name": args.name,
        "artifacts_dir": args.artifacts_dir,
        "heartbeat_interval": args.heartbeat_interval,
        "idle_exit": getattr(args, "idle_exit", None),
        **policy_overrides(args),
    }
