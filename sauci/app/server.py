"""The server of ``sauci serve``, made from Settings: its triggers, and its runner
(builds on threads of this process, held to the sandbox policy, placed by their
declared cost and gated by GitHub's ``concurrency``; or sent to workers through
Celery when a broker is set). Only the server's processes import this module,
so ``sauci run`` and the library do not pay for its stack."""

from __future__ import annotations

import functools
import hashlib
import os
import socket
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sauci._logging import get_logger
from sauci.app import git_sources
from sauci.core import runner as _core_runner
from sauci.core.capacity import capacity_claims
from sauci.core.claim_gate import GatedRunner, GatedStore, SerialGate
from sauci.core.config import Settings
from sauci.core.executor import SlotPool
from sauci.core.pipeline import FILENAME, parse_pipeline
from sauci.core.secrets import Secrets, load_secrets
from sauci.core.server import Server, ServerOptions
from sauci.exceptions import ConfigError, SauCIError
from sauci.plugins import load_runner
from sauci.typing import Runner, Sandbox, Source, Store, Trigger
from sauci.workflows import ConcurrencyGate, load_for_build, workflow_schedules

if TYPE_CHECKING:
    from sauci.sandbox.policy import ServerSandboxes

__all__ = ["build_server", "local_runner", "server_cgroup_prefix"]


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
    """The server behind ``sauci serve``: its triggers, and its runner: builds on
    threads of this process (a ThreadedRunner, held to the settings' sandbox
    policy and secrets), or, with a broker (``settings.broker`` or a sender
    handed in), a CeleryRunner that sends them to workers instead.

    ConfigError when the policy's sandbox cannot run here or the secrets file
    is bad: the server refuses to start rather than run with less isolation.
    """
    from sauci.app.polling import poll_intervals
    from sauci.sandbox.policy import server_sandboxes
    from sauci.triggers.due import CronTrigger, PollTrigger, SpoolTrigger
    from sauci.triggers.poller import Poller

    options = options or ServerOptions()
    if settings.launch_workers and broker is None and not settings.broker:
        raise ConfigError("--launch-workers starts `sauci worker`s: it needs --broker URL")
    prefix = server_cgroup_prefix(settings.data_dir)
    name = f"serve:{socket.gethostname()}:{os.getpid()}"
    if sandbox is None and (broker is not None or settings.broker):
        from sauci.sandbox.local import LocalSandbox

        # Workers run the steps; the server ends only builds it cannot start.
        sandbox = LocalSandbox(grace=settings.grace, cgroup_prefix=prefix)
    sandboxes = server_sandboxes(settings, cgroup_prefix=prefix, default=sandbox)
    # Read with a broker too: a bad secrets file stops the server in either mode.
    secrets = load_secrets(settings.secrets_file) if secrets is None else secrets
    if broker is None and settings.broker:
        from sauci.distributed import BrokerClient

        broker = BrokerClient(settings.broker, visibility_timeout=settings.visibility_timeout)
    runner: Runner
    if broker is not None:
        # One Source per repository for the routes and the gate: a new commit's
        # pipeline file is read from git once, before its first send, not twice.
        sources = _shared(git_sources(settings))
        runner = load_runner(
            "celery",
            store=store,
            settings=settings,
            broker=broker,
            name=name,
            sources=sources,
            pipeline_loader=load_for_build,  # runs_on of a workflow-only repository
            # GitHub's concurrency: held builds are not sent
            gate=_concurrency_gate(store, sources),
        )
        if settings.launch_workers:  # latent workers, started when builds wait
            from sauci.distributed import launching

            runner = launching(runner, store, settings)
    else:
        # One Source per repository for the gate, the claims and the runner: a
        # commit and its pipeline file are read from git once, not once each.
        sources = _shared(git_sources(settings))
        # GitHub's `concurrency`: the gate holds and cancels builds by group.
        # (asked by the server's rounds and by the builds' threads that fill a freed slot)
        gate = SerialGate(_concurrency_gate(store, sources))
        gated = GatedStore(store, gate)  # a Store whose claims skip held builds
        slots = options.step_slots or 2 * (os.cpu_count() or 1)
        local = local_runner(
            gated,  # type: ignore[arg-type]
            settings,
            sandboxes,
            sources,
            secrets,
            name,
            slots,
        )
        threaded = load_runner(
            "threaded",
            local=local,
            max_builds=options.max_builds,
            # builds placed by their declared cost
            claims=capacity_claims(gated, name, options, sources, settings.drain_wait),  # type: ignore[arg-type]
            # the next builds' workspaces made while every slot is taken (sauci.core.ahead)
            check_out_ahead=True,
        )
        runner = GatedRunner(threaded, gate)
    repos = list(repos)
    triggers: list[Trigger] = [
        PollTrigger(
            Poller(settings.data_dir / "poller.json"),
            lambda: repos,
            interval=options.poll_interval,
            # each registered repository at its own `repo add --poll N`
            intervals=poll_intervals(store.list_registered_repos(), default=options.poll_interval),
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
        sweep=functools.partial(_sweep_server, prefix, settings.workspaces_dir, sandboxes),
        sandboxes=sandboxes,
    )


def local_runner(
    store: Store,
    settings: Settings,
    sandboxes: ServerSandboxes,
    sources: Callable[[str], Source],
    secrets: Secrets,
    name: str,
    slots: int,
) -> _core_runner.LocalRunner:
    """A LocalRunner held to the sandbox policy: its default sandbox, the
    sandboxes a step may name and what they can do; the pipeline from
    ``.sauci.yml``, else the workflow files."""
    from sauci.app.sandboxes import policy_capabilities

    return _core_runner.LocalRunner(
        store=store,
        sandbox=sandboxes.default,
        sources=sources,
        load_sandbox=sandboxes.load,
        allowed_sandboxes=sandboxes.allowed,
        capabilities=policy_capabilities(sandboxes),
        secrets=secrets,
        settings=settings,
        name=name,
        slots=SlotPool(slots),
        pipeline_loader=load_for_build,
    )


def _sweep_server(prefix: str, workspaces: Path, sandboxes: ServerSandboxes) -> list[str]:
    """At a server's start: the step cgroups, the containers and the disk
    leftovers (matrix copies, per-build HOME and /tmp) of the builds a
    crashed one left."""
    from sauci.app.reconcile import remove_slot_leftovers
    from sauci.sandbox import sweep

    remove_slot_leftovers(workspaces)
    return [*sweep(prefix), *sandboxes.sweep_containers()]


def _schedules(settings: Settings, repos: Sequence[str]) -> list[tuple[str, str, str]]:
    """Every (repo, cron, branch): from sauci.toml, and from each repository's
    .sauci.yml at HEAD (a pipeline with problems contributes none)."""
    from sauci.source.git import read_file

    found = list(settings.schedules)
    for repo in repos:
        try:
            text = read_file(repo, "HEAD", ".sauci.yml")
            if text is None:  # a GitHub workflow's on.schedule, if it has one
                found += [
                    (repo, c, b)
                    for c, b in workflow_schedules(functools.partial(read_file, repo, "HEAD"))
                ]
                continue
            pipeline = parse_pipeline(text, f"{repo}:.sauci.yml")
        except SauCIError as exc:
            get_logger(__name__).warning("schedule_unreadable", repo=repo, error=str(exc))
            continue
        found.extend((repo, s.cron, s.branch) for s in pipeline.schedules)
    return found


def _concurrency_gate(
    store: Store, sources: Callable[[str], Source] | None = None
) -> ConcurrencyGate:
    """The gate, reading a local repository's files through ``sources`` (its
    pipeline file is the one the claims read) when given."""
    from sauci.source.git import is_remote, read_file

    if sources is None:
        return ConcurrencyGate(store, read_file)
    listings: dict[tuple[str, str, str], str | None] = {}

    def read(repo: str, rev: str, path: str) -> str | None:
        if is_remote(repo):
            return read_file(repo, rev, path)
        source = sources(repo)
        sha = source.resolve(rev)  # a branch that has not moved: no git call
        if path == FILENAME:
            return source.read_file(sha, path)
        key = (repo, sha, path)  # a workflow folder's listing, or a workflow file
        if key in listings:
            return listings[key]
        text = read_file(repo, sha, path)
        if len(listings) >= 256:
            listings.clear()
        listings[key] = text
        return text

    return ConcurrencyGate(store, read)


def _shared(make: Callable[[str], Source]) -> Callable[[str], Source]:
    """``make``, keeping the Source of each repository (finding its root costs
    git calls, and a Source keeps what it read of each commit)."""
    made: dict[str, Source] = {}
    lock = threading.Lock()

    def source(repo: str) -> Source:
        with lock:
            found = made.get(repo)
        if found is None:
            found = make(repo)
            with lock:
                found = made.setdefault(repo, found)
        return found

    return source
