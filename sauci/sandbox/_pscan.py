"""The processes of a step found without cgroups: the session and process
group of its main process, parent links, and a marker variable in the
environment (``SAUCI_STEP_TOKEN``) that descendants inherit unless they clear
their environment. The fallback of :mod:`sauci.sandbox._proctree`.
"""

from __future__ import annotations

import contextlib
import os
import signal as _signal
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TypeVar

from sauci.sandbox._proctree import CgroupEvents, Starter, _kill_until_empty

__all__ = ["TOKEN_VARIABLE", "ProcessTree"]

T = TypeVar("T")

TOKEN_VARIABLE = "SAUCI_STEP_TOKEN"
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_PF_KTHREAD = 0x00200000
# How long a process in the middle of execve() may show no environment.
_EXEC_WAIT = 0.02


def _signal_groups(groups: Iterable[int], sig: int) -> None:
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)


def read_environ(pid: int) -> bytes | None:
    """The environment block of process ``pid``; None when it cannot be read."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            return fh.read()
    except OSError:
        return None


def _uptime_ticks() -> int:
    with open("/proc/uptime", "rb") as fh:
        return int(float(fh.read().split()[0]) * _CLK_TCK)


class ProcessTree:
    """The processes of one step found without cgroups.

    Members are processes started after the step (start time in /proc, so a
    reused pid is not mistaken for one) that are in the main process's
    session or process group, descend from a member by parent links, or have
    ``SAUCI_STEP_TOKEN=<token>`` in their environment. A process that both
    leaves the session and clears its environment escapes; so does one that
    double-forks before the scan and clears its environment.
    """

    controllers: frozenset[str] = frozenset()

    def __init__(self) -> None:
        # What secrets.token_hex reads, without importing hmac and OpenSSL (3 ms
        # of every sauci run, where nothing else needs them).
        self.token = os.urandom(12).hex()
        self._marker = f"{TOKEN_VARIABLE}={self.token}".encode()
        self.root_pid: int | None = None
        # Ticks since boot, one second early to be safe against rounding.
        self._since = _uptime_ticks() - _CLK_TCK
        self._empty = False
        self._groups: set[int] = set()
        self._bare: set[tuple[int, int]] = set()  # (pid, start) with no environment
        self.processes: int | None = None
        self.memory: int | None = None

    def env(self, env: Mapping[str, str]) -> dict[str, str]:
        return {**env, TOKEN_VARIABLE: self.token}

    def spawn(
        self,
        argv: Sequence[str],
        start: Starter[T],
        *,
        env: Mapping[str, str] | None = None,
        own_thread: bool = False,
    ) -> T:
        proc = start(list(argv), None)
        self.root_pid = proc.pid  # type: ignore[attr-defined]
        return proc

    def pids(self) -> list[int]:
        root = self.root_pid
        if root is None:
            return []
        me = os.getpid()
        parent: dict[int, int] = {}
        group: dict[int, int] = {}
        members: set[int] = set()
        seen: set[str] = set()
        # A process that forks and exits while /proc is read would hide its
        # child (listed too late, parent gone when read): list again until
        # nothing new shows up.
        for _ in range(20):
            names = {n for n in os.listdir("/proc") if n.isdigit()} - seen
            if not names:
                break
            seen |= names
            for name in names:
                pid = int(name)
                if pid == me:
                    continue
                try:
                    with open(f"/proc/{name}/stat", "rb") as fh:
                        stat = fh.read()
                except OSError:
                    continue
                fields = stat[stat.rfind(b")") + 2 :].split()
                if (
                    len(fields) < 20
                    or fields[0] == b"Z"
                    or int(fields[19]) < self._since
                    or int(fields[6]) & _PF_KTHREAD
                ):
                    continue
                ppid, pgrp, sid = int(fields[1]), int(fields[2]), int(fields[3])
                parent[pid] = ppid
                group[pid] = pgrp
                if (
                    pid == root
                    or sid == root
                    or pgrp == root
                    or self._has_marker(pid, int(fields[19]))
                ):
                    members.add(pid)
        # Descendants of members by parent links (started after the step).
        children: dict[int, list[int]] = {}
        for pid, ppid in parent.items():
            children.setdefault(ppid, []).append(pid)
        stack = list(members)
        while stack:
            for child in children.get(stack.pop(), ()):
                if child not in members:
                    members.add(child)
                    stack.append(child)
        self._empty = not members
        # Process groups hold only processes of one session, and a session
        # started by a member holds only its descendants: safe to signal.
        self._groups = {group[pid] for pid in members}
        return sorted(members)

    def _has_marker(self, pid: int, started: int) -> bool:
        # execve() shows the new program's environment only once its last
        # pointer is written (the kernel sets env_end after the loop), so a
        # process caught in between reads as empty. A step's ``setsid sleep``
        # that has lost its parent would be missed: read again for a while.
        # A process that really has no environment is waited for once.
        deadline = None
        while True:
            environ = read_environ(pid)
            if environ is None:
                return False
            if environ:
                return self._marker in environ.split(b"\0")
            if (pid, started) in self._bare:
                return False
            now = time.monotonic()
            if deadline is None:
                deadline = now + _EXEC_WAIT
            elif now > deadline:
                self._bare.add((pid, started))
                return False
            time.sleep(0.0002)

    def signal(self, sig: int) -> None:
        pids = self.pids()
        _signal_groups(self._groups, sig)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def events(self) -> CgroupEvents:
        return CgroupEvents()

    def kill_all(self, timeout: float = 10.0) -> bool:
        # killpg is atomic against fork(); killing one pid at a time is not,
        # and a fork bomb outruns it.
        return _kill_until_empty(
            self.pids, timeout, before=lambda: _signal_groups(self._groups, _signal.SIGKILL)
        )

    def remove(self, timeout: float = 5.0) -> bool:
        if self._empty:  # nothing was left and nothing is left to fork more
            return True
        return self.kill_all(timeout)
