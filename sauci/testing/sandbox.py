"""``SandboxConformance``: the promises every Sandbox keeps, as a pytest mixin.

Subclass it in a class named ``Test...`` and give it a ``sandbox`` fixture::

    class TestMySandbox(SandboxConformance):
        @pytest.fixture
        def sandbox(self):
            return MySandbox(grace=0.5)

Each case runs only when ``sandbox.capabilities`` claims what it needs
(``limits.processes`` for the fork bomb, ``isolates_filesystem`` for the
escape attempts, ...), so a sandbox is held to exactly what it declares. The
abusive cases (fork bomb, memory hog) run *only* behind such a claim: a
sandbox that claims a limit it does not enforce can hurt the machine, so test
a new sandbox's limits by hand inside a cgroup first.

After every step the suite scans /proc for processes that carry the step's
marker variable (``SAUCI_TEST_MARK``): none may be left when ``run()``
returns. Steps use ``sh -c`` and busybox-level tools only, so the suite runs
against a minimal container image too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from sauci.core.logsink import LogSink
from sauci.core.models import EndedBy, Limits, StepResult
from sauci.testing._sandbox_isolation import SandboxIsolationCases
from sauci.testing._sandbox_support import MemoryLog, marked_processes
from sauci.typing import Sandbox

__all__ = ["MemoryLog", "SandboxConformance", "marked_processes"]


class SandboxConformance(SandboxIsolationCases):
    """Tests every Sandbox must pass; not collected itself (no ``Test`` prefix).

    The class attributes a subclass may change are those of
    :class:`~sauci.testing._sandbox_support.SandboxCase` (``shell``, ``path``,
    ``extra_env_names``, ``grace``, ``slack``, ``flood_bytes``); the environment
    and isolation cases come from
    :class:`~sauci.testing._sandbox_isolation.SandboxIsolationCases`.
    """

    # -- exit codes and signals ------------------------------------------------

    def test_satisfies_the_protocol(self, sandbox: Sandbox) -> None:
        assert isinstance(sandbox, Sandbox)
        assert isinstance(sandbox.capabilities, frozenset)

    @pytest.mark.parametrize("code", [0, 1, 42])
    def test_exit_code_and_output(self, sandbox: Sandbox, workspace: Path, code: int) -> None:
        result, output = self.run_step(sandbox, f"echo out; echo err >&2; exit {code}", workspace)
        assert (code, None, None) == (result.exit_code, result.signal, result.ended_by)
        assert [b"err", b"out"] == sorted(output.splitlines())  # stdout and stderr both kept
        assert result.ok is (code == 0)

    @pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
    def test_signal_is_reported(self, sandbox: Sandbox, workspace: Path, sig: int) -> None:
        result, _ = self.run_step(sandbox, f"kill -{int(sig)} $$", workspace)
        assert (None, int(sig), None) == (result.exit_code, result.signal, result.ended_by)

    def test_workspace_is_the_working_directory(self, sandbox: Sandbox, workspace: Path) -> None:
        (workspace / "sub").mkdir()
        (workspace / "sub" / "given.txt").write_text("from the checkout\n")
        result, output = self.run_step(
            sandbox, "cat given.txt && echo made > made.txt", workspace, workdir="sub"
        )
        assert (0, b"from the checkout\n") == (result.exit_code, output)
        assert "made\n" == (workspace / "sub" / "made.txt").read_text()

    # -- ending the whole tree -------------------------------------------------

    DAEMONS = (
        "setsid sleep 1000 & "  # a new session
        "( (sleep 1000 &) & ) ; "  # double-forked: reparented away from the step
        "(trap '' TERM; exec sleep 1000) & "  # ignores SIGTERM
    )

    def test_timeout_ends_the_tree(self, sandbox: Sandbox, workspace: Path) -> None:
        result, output = self.run_step(
            sandbox, self.DAEMONS + "echo started; sleep 1000", workspace, timeout=1
        )
        assert (EndedBy.TIMEOUT, "killed after 1 s timeout") == (result.ended_by, result.reason)
        assert result.exit_code is None
        assert b"started\n" == output
        assert 1 <= result.duration < self.bound(1)

    def test_daemons_left_after_success_are_ended(self, sandbox: Sandbox, workspace: Path) -> None:
        result, output = self.run_step(sandbox, self.DAEMONS + "echo done", workspace)
        assert (0, None, b"done\n") == (result.exit_code, result.ended_by, output)
        assert result.duration < self.bound()

    def test_cancel_ends_the_tree(self, sandbox: Sandbox, workspace: Path) -> None:
        cancel = threading.Event()
        timer = threading.Timer(0.5, cancel.set)
        timer.start()
        try:
            result, _ = self.run_step(
                sandbox, self.DAEMONS + "sleep 1000", workspace, cancel=cancel
            )
        finally:
            timer.cancel()
        assert (EndedBy.CANCELLED, "cancelled") == (result.ended_by, result.reason)
        assert result.duration < self.bound(0.5)

    def test_cancelled_before_start_starts_nothing(self, sandbox: Sandbox, workspace: Path) -> None:
        cancel = threading.Event()
        cancel.set()
        result, _ = self.run_step(sandbox, "touch started", workspace, cancel=cancel)
        assert EndedBy.CANCELLED == result.ended_by
        assert not (workspace / "started").exists()

    def test_sigterm_ignored_is_killed(self, sandbox: Sandbox, workspace: Path) -> None:
        result, _ = self.run_step(sandbox, "trap '' TERM; sleep 1000", workspace, timeout=0.5)
        assert (EndedBy.TIMEOUT, None, signal.SIGKILL) == (
            result.ended_by,
            result.exit_code,
            result.signal,
        )
        assert result.duration < self.bound(0.5)

    def test_closed_stdout_is_still_ended(self, sandbox: Sandbox, workspace: Path) -> None:
        result, output = self.run_step(
            sandbox, "(exec >&- 2>&-; sleep 1000) & echo done", workspace
        )
        assert (0, None, b"done\n") == (result.exit_code, result.ended_by, output)
        result, output = self.run_step(
            sandbox, "echo bye; exec >&- 2>&-; sleep 1000", workspace, timeout=1
        )
        assert (EndedBy.TIMEOUT, b"bye\n") == (result.ended_by, output)
        assert result.duration < self.bound(1)

    # -- limits ------------------------------------------------------------------

    def test_fork_bomb_is_contained(self, sandbox: Sandbox, workspace: Path) -> None:
        # Never without a process limit the sandbox claims: an uncontained fork
        # bomb freezes the machine for everyone on it.
        self.needs(sandbox, "limits.processes")
        outcome: list[StepResult] = []
        bomb = threading.Thread(
            target=lambda: outcome.append(
                self.run_step(
                    sandbox,
                    "bomb() { bomb | bomb & }; bomb; sleep 1000",
                    workspace,
                    timeout=3,
                    limits=Limits(processes=50),
                    log=MemoryLog(keep=False),
                )[0]
            ),
            daemon=True,
        )
        bomb.start()
        time.sleep(1.5)
        started = time.monotonic()
        subprocess.run(["true"], check=True, timeout=self.bound())  # the host still works
        assert time.monotonic() - started < 5
        bomb.join(self.bound(3) * 2)
        assert not bomb.is_alive()
        [result] = outcome
        assert EndedBy.PROCESS_LIMIT == result.ended_by
        assert result.reason is not None and result.reason.startswith("process limit"), result

    def test_memory_hog_is_out_of_memory(self, sandbox: Sandbox, workspace: Path) -> None:
        self.needs(sandbox, "limits.memory")
        # The shell keeps the whole string: ~400 MB (more while it grows).
        hog = "x=$(head -c 400000000 /dev/zero | tr '\\0' x); echo ${#x}"
        result, _ = self.run_step(
            sandbox, hog, workspace, timeout=60, limits=Limits(memory=128 * 1024 * 1024)
        )
        assert EndedBy.OUT_OF_MEMORY == result.ended_by
        assert result.reason is not None
        assert result.reason.startswith("out of memory at 128 MiB"), result.reason
        assert not result.ok

    def test_output_flood_is_capped(self, sandbox: Sandbox, workspace: Path, area: Path) -> None:
        path = area / "logs" / "flood.log"
        with LogSink(path, limit=1024 * 1024, timestamps=False) as sink:
            result, _ = self.run_step(
                sandbox,
                f"head -c {self.flood_bytes} /dev/zero; echo end",
                workspace,
                log=sink,
                timeout=300,
            )
        assert (0, None) == (result.exit_code, result.ended_by)  # never blocked on a full pipe
        assert result.log_truncated
        notice = b"\nsauci: log exceeded 1 MiB; output after that was dropped\n"
        assert 1024 * 1024 + len(notice) == path.stat().st_size
        assert _tree_size(area) < 4 * 1024 * 1024, "the flood reached the disk"


def _tree_size(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_blocks * 512
            except OSError:
                continue
    return total
