"""A redis-server that the tests start themselves on a free 127.0.0.1 port.

Import the fixtures into a test module (``from redis_server import redis_server,
redis_url``). Tests are skipped only when redis-server is missing and
SAUCI_REQUIRE_REDIS is not set; CI sets it, so there they fail instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """One redis-server process; stop() and start() keep the port.

    Without ``persist_dir`` nothing survives a restart; with it, an append-only
    file in that directory does (for outage tests)."""

    def __init__(
        self,
        binary: str,
        persist_dir: str | None = None,
        *,
        bind: Sequence[str] = ("127.0.0.1",),
    ) -> None:
        self.binary = binary
        self.persist_dir = persist_dir
        self.bind = tuple(bind)  # more than loopback: others may connect (no protected mode)
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        cmd = [self.binary, "--bind", *self.bind, "--port", str(self.port)]
        if self.bind != ("127.0.0.1",):
            cmd += ["--protected-mode", "no"]
        if self.persist_dir is None:
            cmd += ["--save", "", "--appendonly", "no"]
        else:
            cmd += ["--save", "", "--appendonly", "yes", "--appendfsync", "always"]
            cmd += ["--dir", self.persist_dir]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            # Listening is not ready: a server replaying its append-only file
            # answers every command with LOADING until it is done.
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2) as conn,
            ):
                conn.sendall(b"PING\r\n")
                if conn.recv(64).startswith(b"+PONG"):
                    return
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
            time.sleep(0.01)
        raise RuntimeError(f"redis-server did not listen on port {self.port} within 10 s")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None

    def flush(self) -> None:
        import redis

        with redis.Redis.from_url(self.url, socket_timeout=5) as client:
            client.flushdb()


def redis_binary() -> str:
    """redis-server's path; the test is skipped without it, or fails under SAUCI_REQUIRE_REDIS."""
    binary = shutil.which("redis-server")
    if binary is None:
        reason = "redis-server not found on PATH (apt-get install -y redis-server)"
        if os.environ.get("SAUCI_REQUIRE_REDIS"):
            pytest.fail(f"{reason}, and SAUCI_REQUIRE_REDIS is set")
        pytest.skip(f"{reason}; set SAUCI_REQUIRE_REDIS=1 to make this an error")
    return binary


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A redis-server for the session (skipped, or failed under SAUCI_REQUIRE_REDIS)."""
    binary = redis_binary()
    pytest.importorskip("redis")
    server = RedisServer(binary)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The server's URL, with the database emptied for this test."""
    if redis_server.proc is None:  # a previous test stopped it and failed before restarting
        redis_server.start()
    redis_server.flush()
    return redis_server.url
