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
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from sauci.core.logsink import LogSink
from sauci.core.models import EndedBy, Limits, Step, StepResult
from sauci.typing import Sandbox

__all__ = ["MemoryLog", "SandboxConformance", "marked_processes"]

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


class SandboxConformance:
    """Tests every Sandbox must pass; not collected itself (no ``Test`` prefix).

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

    # -- environment ---------------------------------------------------------------

    def test_environment_is_exactly_the_given_one(self, sandbox: Sandbox, workspace: Path) -> None:
        env = {"LANG": "C.UTF-8", "ONLY_THIS": "yes", "EMPTY": "", "SPACES": "a b  c"}
        result, output = self.run_step(sandbox, "-0", workspace, env=env, shell=("env",))
        assert 0 == result.exit_code, output
        seen = dict(item.split("=", 1) for item in output.decode().split("\0") if item)
        for name in self.extra_env_names - {*env, "PATH", MARK}:
            seen.pop(name, None)
        assert {"PATH": self.path, MARK: seen.get(MARK, "<missing>"), **env} == seen

    # -- isolation -------------------------------------------------------------------

    def test_writes_outside_the_workspace_are_refused(
        self, sandbox: Sandbox, workspace: Path, area: Path
    ) -> None:
        self.needs(sandbox, "isolates_filesystem")
        other = area / "workspaces" / "b2-step"
        other.mkdir()
        name = f"sauci-probe-{uuid.uuid4().hex[:8]}"
        system = [f"/{name}", f"/etc/{name}", f"/usr/{name}"]  # must be refused
        # These may land in a private view (a tmpfs over /tmp), never on the host.
        host = [f"{other}/{name}", f"{area}/{name}", f"{workspace.parent}/{name}"]
        script = (
            "".join(f"if (echo x > {t}) 2>/dev/null; then echo WROTE {t}; fi; " for t in system)
            + "".join(f"(echo x > {t}) 2>/dev/null; " for t in host)
            + "echo inside > inside.txt"
        )
        result, output = self.run_step(sandbox, script, workspace)
        assert (0, b"") == (result.exit_code, output)
        assert "inside\n" == (workspace / "inside.txt").read_text()
        assert [] == [t for t in system + host if os.path.lexists(t)]

    def test_cannot_read_other_workspaces_or_sauci_data(
        self, sandbox: Sandbox, workspace: Path, area: Path
    ) -> None:
        self.needs(sandbox, "isolates_filesystem")
        secret = f"TOPSECRET-{uuid.uuid4().hex}"
        other = area / "workspaces" / "b2-step"
        other.mkdir()
        (other / "secret.txt").write_text(secret)
        state = area / "state"  # how SauCI keeps its data: private to its user
        state.mkdir(mode=0o700)
        database = state / "sauci.db"
        database.write_text(secret)
        database.chmod(0o600)
        paths = [other / "secret.txt", database]
        script = " ".join(f"cat {p} 2>/dev/null;" for p in paths) + " ls -a .. 2>/dev/null; true"
        result, output = self.run_step(sandbox, script, workspace)
        assert 0 == result.exit_code
        assert secret.encode() not in output
        assert b"b2-step" not in output

    def test_cannot_read_sauci_environment(self, sandbox: Sandbox, workspace: Path) -> None:
        self.needs(sandbox, "isolates_filesystem")
        secret = f"SERVERSECRET-{uuid.uuid4().hex}"
        # A stand-in for the server: a process with a secret in its environment.
        server = subprocess.Popen(
            ["sleep", "60"], env={"PATH": os.environ.get("PATH", self.path), "TOKEN": secret}
        )
        try:
            script = (
                f"cat /proc/{server.pid}/environ /proc/{os.getpid()}/environ 2>/dev/null; "
                "for f in /proc/[0-9]*/environ; do cat $f 2>/dev/null; done; env; true"
            )
            result, output = self.run_step(sandbox, script, workspace)
        finally:
            server.kill()
            server.wait()
        assert 0 == result.exit_code
        assert secret.encode() not in output

    @pytest.mark.parametrize("network", [None, False])
    def test_no_network_unless_asked(
        self, sandbox: Sandbox, workspace: Path, network: bool | None
    ) -> None:
        self.needs(sandbox, "isolates_network")
        with _listener() as (port, accepted):
            script = (
                "cat /proc/net/dev; "
                f"if command -v nc >/dev/null; then nc -w 2 127.0.0.1 {port} </dev/null; "
                f"elif command -v bash >/dev/null; then "
                f"bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}'; fi >/dev/null 2>&1; true"
            )
            result, output = self.run_step(sandbox, script, workspace, network=network)
        assert 0 == result.exit_code
        interfaces = {line.split(b":")[0].strip() for line in output.splitlines() if b":" in line}
        assert interfaces <= {b"lo"}, output
        assert 0 == accepted[0], "the step reached a server on the host's loopback"


def _tree_size(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_blocks * 512
            except OSError:
                continue
    return total


class _listener:
    """A TCP server on the host's 127.0.0.1 that counts connections."""

    def __enter__(self) -> tuple[int, list[int]]:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.accepted = [0]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        return self.sock.getsockname()[1], self.accepted

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted[0] += 1
            conn.close()

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(2)
        self.sock.close()
