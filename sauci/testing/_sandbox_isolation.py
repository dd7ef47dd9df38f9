"""The conformance cases on what a step may see: its environment, other
workspaces, SauCI's data and environment, the network."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import uuid
from pathlib import Path

import pytest

from sauci.testing._sandbox_support import MARK, SandboxCase
from sauci.typing import Sandbox

__all__ = ["SandboxIsolationCases"]


class SandboxIsolationCases(SandboxCase):
    """Environment and isolation cases, each behind the capability it tests."""

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
        if network is None and getattr(sandbox, "network", False) is True:
            pytest.skip("this sandbox gives steps that do not ask the network by its policy")
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
