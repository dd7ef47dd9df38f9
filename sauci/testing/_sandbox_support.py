"""What the sandbox conformance cases share: a log in memory, the scan for a
step's leftover processes, and the fixtures and helpers of every case."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from sauci.core.models import Step, StepResult
from sauci.typing import Sandbox

__all__ = ["MARK", "MemoryLog", "SandboxCase", "marked_processes"]

MARK = "SAUCI_TEST_MARK"


class MemoryLog:
    """A LogWriter that keeps everything in memory (or drops it: ``keep=False``)."""

    def __init__(self, *, keep: bool = True) -> None:
        self.data = bytearray()
        self.keep = keep
        self.exceeded = False

    def write(self, data: bytes) -> None:
        if self.keep:
            self.data += data

    def flush(self) -> None:
        pass


def marked_processes(mark: str) -> list[int]:
    """Live pids whose environment holds ``SAUCI_TEST_MARK=<mark>`` (containers' too)."""
    needle = f"{MARK}={mark}".encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as fh:
                if needle in fh.read().split(b"\0"):
                    with open(f"/proc/{name}/stat", "rb") as st:
                        if st.read().rsplit(b")", 1)[-1].split()[0] != b"Z":
                            found.append(int(name))
        except OSError:
            continue
    return found


class SandboxCase:
    """The fixtures and helpers of the conformance cases; not collected itself.

    Class attributes a subclass may change:

    - ``shell``: the shell steps run with (must exist where the step runs);
    - ``path``: ``PATH`` given to steps;
    - ``extra_env_names``: variables the sandbox cannot keep out of a step's
      environment (Docker always sets ``HOSTNAME``); anything else the step
      sees beyond its ``env`` is a failure;
    - ``grace``: the sandbox's grace period (give the fixture a short one);
    - ``slack``: how much later than timeout + grace a step may end;
    - ``flood_bytes``: size of the output flood (the log cap is 1 MiB).
    """

    shell: tuple[str, ...] = ("sh", "-c")
    path: str = "/usr/local/bin:/usr/bin:/bin"
    extra_env_names: frozenset[str] = frozenset()
    grace: float = 0.5
    slack: float = 10.0
    flood_bytes: int = 2_000_000_000

    # -- fixtures and helpers -------------------------------------------------

    @pytest.fixture
    def sandbox(self) -> Sandbox:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError("give the conformance class a `sandbox` fixture")

    @pytest.fixture
    def area(self, tmp_path: Path) -> Path:
        """A directory holding this test's workspaces and a stand-in for SauCI's data.

        Override it when the sandbox needs the workspace at a particular place
        (NamespaceSandbox needs a path its unprivileged user can traverse).
        """
        return tmp_path

    @pytest.fixture
    def workspace(self, area: Path) -> Path:
        ws = area / "workspaces" / "b1-step"
        ws.mkdir(parents=True)
        return ws

    def needs(self, sandbox: Sandbox, *capabilities: str) -> None:
        missing = [c for c in capabilities if c not in sandbox.capabilities]
        if missing:
            pytest.skip(f"the sandbox does not claim {', '.join(missing)}")

    def run_step(
        self,
        sandbox: Sandbox,
        script: str,
        workspace: Path,
        *,
        log: Any = None,
        env: Mapping[str, str] | None = None,
        cancel: threading.Event | None = None,
        **step: Any,
    ) -> tuple[StepResult, bytes]:
        """Run ``script``; assert that no process of it is left when ``run()`` returns."""
        mark = uuid.uuid4().hex
        full_env = {"PATH": self.path, MARK: mark, **(env or {})}
        step.setdefault("shell", self.shell)
        writer = log if log is not None else MemoryLog()
        result = sandbox.run(
            Step(name="conformance", run=script, **step),
            workspace,
            writer,
            env=full_env,
            cancel=cancel or threading.Event(),
            label=f"t{mark[:12]}",
        )
        assert [] == marked_processes(mark), "processes of the step are still running"
        return result, bytes(getattr(writer, "data", b""))

    def bound(self, timeout: float = 0.0) -> float:
        return timeout + self.grace + self.slack
