"""Latent workers: the server starts ``sauci worker`` processes when builds wait, and
they stop themselves when idle (``--idle-exit``), as Buildbot's latent workers do.

A :class:`WorkerLauncher` starts, checks and stops one worker; the
:class:`Autoscaler` decides, once per server round, whether one more is
needed: builds wait that the live workers' free slots and the workers still
starting cannot take (or one waits for room, placed by cost, and none is starting), and fewer than ``max_workers`` launched ones run. A
launch that fails (the command cannot start, or its process exits before the
worker comes online) is counted, logged and retried with back-off; the
queued build stays queued in the store, so nothing is lost.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import attrs

from sauci._logging import get_logger
from sauci.core.config import Settings
from sauci.core.events import emit
from sauci.core.models import Status, Worker
from sauci.core.wrapper import Wrapper
from sauci.distributed._placing import WAITING
from sauci.distributed._worker_env import worker_environment
from sauci.exceptions import SauCIError

__all__ = ["Autoscaler", "LaunchingRunner", "ProcessLauncher", "WorkerLauncher"]

log = get_logger(__name__)


class WorkerLauncher(Protocol):
    """Starts latent workers: a local process, a container, a VM."""

    def start(self, name: str) -> Any:
        """Start a worker that registers as ``name``; returns a handle.
        Raises SauCIError (or OSError) when it cannot be started."""

    def alive(self, handle: Any) -> bool:
        """Whether the worker behind ``handle`` still runs."""

    def failed(self, handle: Any) -> str | None:
        """Why an ended worker failed (its exit status), or None when it ended cleanly."""

    def stop(self, handle: Any) -> None:
        """Ask the worker to stop: it finishes its running builds first."""


class ProcessLauncher:
    """Latent workers as local processes: ``command`` (default ``python -m sauci
    worker``) with ``--idle-exit`` and the server's store and broker settings in
    ``SAUCI_*`` variables."""

    def __init__(self, settings: Settings, *, command: str = "", idle_exit: float = 30.0) -> None:
        self.settings = settings
        self.idle_exit = idle_exit
        self.command: list[str] = (
            shlex.split(command)
            if command
            else [sys.executable, "-m", "sauci", "worker", "--idle-exit", f"{idle_exit:g}"]
        )
        self.logs = settings.data_dir / "launched"

    def environment(self, name: str) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("SAUCI_CONFIG", None)  # everything it needs is below
        env.update(worker_environment(self.settings, name, self.idle_exit))
        env["SAUCI_DATA_DIR"] = str(self.logs / name)
        return env

    def start(self, name: str) -> subprocess.Popen[bytes]:
        self.logs.mkdir(parents=True, exist_ok=True)
        with (self.logs / f"{name}.log").open("ab") as out:
            return subprocess.Popen(
                self.command,
                env=self.environment(name),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # the server's Ctrl-C is not the worker's
            )

    def alive(self, handle: subprocess.Popen[bytes]) -> bool:
        return handle.poll() is None

    def failed(self, handle: subprocess.Popen[bytes]) -> str | None:
        code = handle.poll()
        return None if code in (0, None) else f"exit status {code}"

    def stop(self, handle: subprocess.Popen[bytes]) -> None:
        if handle.poll() is None:
            handle.send_signal(signal.SIGTERM)


@attrs.define
class _Launched:
    name: str
    handle: Any
    started: float
    online: bool = False  # seen in the store with a heartbeat


@attrs.define(kw_only=True, eq=False)
class Autoscaler:
    """Once per server round: reap ended workers, start one when builds wait."""

    store: Any
    settings: Settings
    launcher: WorkerLauncher
    max_workers: int
    live_workers: Callable[[], Sequence[Worker]]
    start_timeout: float = 60.0
    backoff: tuple[float, float] = (1.0, 60.0)
    monotonic: Callable[[], float] = time.monotonic
    launched: list[_Launched] = attrs.field(init=False, factory=list)
    started: int = attrs.field(init=False, default=0)  # workers launched since the server started
    failures: int = attrs.field(
        init=False, default=0
    )  # launches that failed since the server started
    failing: int = attrs.field(
        init=False, default=0
    )  # failures in a row: the back-off grows with them
    last_failure: str | None = attrs.field(init=False, default=None)
    _next_try: float = attrs.field(init=False, default=0.0)
    # Names (and so data directories: clones, caches) are reused across
    # launches and server restarts: launched-<host>-1 ... -<max_workers>.
    _prefix: str = attrs.field(init=False, factory=lambda: f"launched-{socket.gethostname()}-")

    def tick(self) -> None:
        live: list[Worker] | None = None
        if self.launched:
            live = list(self.live_workers())
            self._reap({w.name for w in live})
        if len(self.launched) >= self.max_workers or self.monotonic() < self._next_try:
            return
        labels = set(self.settings.labels)
        waiting = [
            b
            for b in self.store.list_builds(status=Status.QUEUED, limit=1000)
            if set(b.runs_on) <= labels
        ]
        if not waiting:
            return  # idle: one store read a round, and no worker list
        if live is None:
            live = list(self.live_workers())
        free = sum(max(0, w.slots - len(w.running)) for w in live if set(w.labels) >= labels)
        starting = sum(self.settings.slots for x in self.launched if not x.online)
        # Placed by cost, a build can wait for room with slots free.
        room = any((b.reason or "").startswith(f"{WAITING}: no worker with") for b in waiting)
        if len(waiting) > free + starting or (room and not starting):
            self._launch({w.name for w in live} | {x.name for x in self.launched})

    def _launch(self, taken: set[str]) -> None:
        # Workers a previous server launched (they stop when idle) may still
        # hold up to max_workers of the names: 2 x max + 1 leave one free.
        names = (f"{self._prefix}{i}" for i in range(1, 2 * self.max_workers + 2))
        name = next(n for n in names if n not in taken)
        try:
            handle = self.launcher.start(name)
        except (OSError, SauCIError) as exc:
            self._failed(name, f"cannot start: {exc}")
            return
        self.launched.append(_Launched(name=name, handle=handle, started=self.monotonic()))
        self.started += 1
        emit("worker_launched", launched=name)  # logged by the state-change log

    def _reap(self, live: set[str]) -> None:
        kept = []
        for x in self.launched:
            x.online = x.online or x.name in live
            if self.launcher.alive(x.handle):
                if not x.online and self.monotonic() - x.started > self.start_timeout:
                    self.launcher.stop(x.handle)
                    self._failed(x.name, f"not online within {self.start_timeout:g} s")
                    continue
                kept.append(x)
                continue
            why = self.launcher.failed(x.handle)
            if not x.online:
                self._failed(x.name, f"ended before coming online: {why or 'exit status 0'}")
            else:
                self.failing = 0
                log.info("launched_worker_ended", worker=x.name, failed=why)
        self.launched = kept
        if any(x.online for x in kept):
            self.failing = 0

    def _failed(self, name: str, why: str) -> None:
        self.failures += 1
        self.failing += 1
        self.last_failure = f"{name}: {why}"
        first, cap = self.backoff
        delay = min(cap, first * 2 ** (self.failing - 1))
        self._next_try = self.monotonic() + delay
        emit("worker_launch_failed", launched=name, why=why, retry_in=delay)

    def status(self) -> dict[str, Any]:
        """For server.json and ``sauci status``."""
        return {
            "max": self.max_workers,
            "running": len(self.launched),
            "started": self.started,
            "failures": self.failures,
            "last_failure": self.last_failure,
        }

    def stop(self) -> None:
        for x in self.launched:
            self.launcher.stop(x.handle)


@attrs.define(eq=False)
class LaunchingRunner(Wrapper):
    """A server's runner (the CeleryRunner) with an :class:`Autoscaler` after each round."""

    wrapped: Any
    autoscaler: Autoscaler

    def start(self, report: Callable[[str], None]) -> None:
        self.wrapped.start(report)

    def busy(self) -> bool:
        return bool(self.wrapped.busy())

    def running(self) -> list[int]:
        return list(self.wrapped.running())

    def tick(self) -> None:
        self.wrapped.tick()
        self.autoscaler.tick()

    def launcher_status(self) -> dict[str, Any]:
        return self.autoscaler.status()

    def stop(self, *, reason: str, timeout: float) -> None:
        self.autoscaler.stop()
        self.wrapped.stop(reason=reason, timeout=timeout)


def _process_launcher(settings: Settings) -> WorkerLauncher:
    return ProcessLauncher(
        settings, command=settings.launch_command, idle_exit=settings.launch_idle
    )


def _docker_launcher(settings: Settings) -> WorkerLauncher:
    from sauci.distributed._docker_launcher import DockerLauncher

    launcher = DockerLauncher.from_settings(settings)
    launcher.sweep()  # what a previous run of this server left
    return launcher


def _vm_launcher(settings: Settings) -> WorkerLauncher:
    from sauci.distributed._vm_launcher import VmLauncher

    return VmLauncher.from_settings(settings)


# The launchers, by the ``launcher`` setting: the operator's (sauci.toml,
# SAUCI_LAUNCHER, --launcher), never a pipeline's.
LAUNCHERS: dict[str, Callable[[Settings], WorkerLauncher]] = {
    "process": _process_launcher,
    "docker": _docker_launcher,
    "vm": _vm_launcher,
}


def launching(runner: Any, store: Any, settings: Settings) -> LaunchingRunner:
    """``runner`` (a CeleryRunner) with up to ``settings.launch_workers``
    workers started when builds wait, by the launcher ``settings.launcher``
    names (a local process, a Docker container, a VM)."""
    launcher = LAUNCHERS[settings.launcher](settings)
    autoscaler = Autoscaler(
        store=store,
        settings=settings,
        launcher=launcher,
        max_workers=settings.launch_workers,
        live_workers=runner.live_workers,
        start_timeout=float(getattr(launcher, "start_timeout", 60.0)),
    )
    return LaunchingRunner(runner, autoscaler)
