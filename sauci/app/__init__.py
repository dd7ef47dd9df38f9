"""The composition root: SauCI's servers and workers, made from Settings.

This is the one place that names adapters and wires them together. The core
(``sauci.core``) receives each part as an instance; the command line and the
Django app call these functions. Optional back ends (Celery, docker) are
imported only when the settings ask for them.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sauci.core.config import Settings
from sauci.core.executor import SlotPool
from sauci.core.pipeline import parse_pipeline
from sauci.core.runner import LocalRunner
from sauci.core.secrets import Secrets, load_secrets
from sauci.core.server import Server, ServerOptions
from sauci.exceptions import SauCIError
from sauci.sandbox.policy import server_sandboxes
from sauci.typing import Sandbox, Store

__all__ = ["build_server", "server_cgroup_prefix"]


def server_cgroup_prefix(data_dir: Path) -> str:
    """The step cgroups of the server on ``data_dir``: the same across its restarts,
    so that a restarted server finds and ends what a crashed one left behind."""
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:8]
    return f"sauci-srv{digest}-"


def build_server(
    *,
    store: Store,
    settings: Settings,
    repos: Sequence[str] = (),
    options: ServerOptions | None = None,
    sandbox: Sandbox | None = None,
    secrets: Secrets | None = None,
    broker: Any = None,
) -> Server:
    """The server behind ``sauci serve``: its runner held to the settings' sandbox
    policy and secrets, its triggers, and, with a broker (``settings.broker`` or
    a sender handed in), the dispatcher that sends builds to workers instead.

    ConfigError when the policy's sandbox cannot run here or the secrets file
    is bad: the server refuses to start rather than run with less isolation.
    """
    from sauci.sandbox._proctree import sweep
    from sauci.triggers.due import CronTrigger, PollTrigger, SpoolTrigger
    from sauci.triggers.poller import Poller

    options = options or ServerOptions()
    prefix = server_cgroup_prefix(settings.data_dir)
    name = f"serve:{socket.gethostname()}:{os.getpid()}"
    if sandbox is None and (broker is not None or settings.broker):
        from sauci.sandbox.local import LocalSandbox

        # Workers run the steps; the server ends only builds it cannot start.
        sandbox = LocalSandbox(grace=settings.grace, cgroup_prefix=prefix)
    sandboxes = server_sandboxes(settings, cgroup_prefix=prefix, default=sandbox)
    runner = LocalRunner(
        store=store,
        sandbox=sandboxes.default,
        load_sandbox=sandboxes.load,
        allowed_sandboxes=sandboxes.allowed,
        secrets=load_secrets(settings.secrets_file) if secrets is None else secrets,
        settings=settings,
        name=name,
        slots=SlotPool(options.step_slots or 2 * (os.cpu_count() or 1)),
    )
    dispatcher = None
    if broker is None and settings.broker:
        from sauci.distributed import BrokerClient

        broker = BrokerClient(settings.broker, visibility_timeout=settings.visibility_timeout)
    if broker is not None:
        from sauci.distributed import Dispatcher

        dispatcher = Dispatcher(store=store, settings=settings, broker=broker, name=name)
    repos = list(repos)
    triggers = [
        PollTrigger(
            Poller(settings.data_dir / "poller.json"),
            lambda: repos,
            interval=options.poll_interval,
        ),
        CronTrigger(lambda: _schedules(settings, repos), refresh=max(options.poll_interval, 30.0)),
    ]
    return Server(
        store=store,
        settings=settings,
        runner=runner,
        spool=SpoolTrigger(settings.data_dir / "spool"),
        triggers=triggers,
        repos=repos,
        options=options,
        dispatcher=dispatcher,
        sweep=lambda: sweep(prefix),
        sandboxes=sandboxes,
    )


def _schedules(settings: Settings, repos: Sequence[str]) -> list[tuple[str, str, str]]:
    """Every (repo, cron, branch): from sauci.toml, and from each repository's
    .sauci.yml at HEAD (a pipeline with problems contributes none)."""
    from sauci._logging import get_logger
    from sauci.git import read_file

    found = list(settings.schedules)
    for repo in repos:
        try:
            text = read_file(repo, "HEAD", ".sauci.yml")
            if text is None:
                continue
            pipeline = parse_pipeline(text, f"{repo}:.sauci.yml")
        except SauCIError as exc:
            get_logger(__name__).warning("schedule_unreadable", repo=repo, error=str(exc))
            continue
        found.extend((repo, s.cron, s.branch) for s in pipeline.schedules)
    return found
