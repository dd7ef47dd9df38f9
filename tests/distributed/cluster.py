"""Real worker "hosts" for the distributed tests: network namespaces joined to
this machine by veth pairs, with Redis and PostgreSQL listening on 127.0.0.1
and on the host end of every veth, and ``sauci worker`` processes inside.

Everything made here is removed again, also when a test fails: the
namespaces (which takes their veth ends along), the servers, the workers.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "storage"))

from polling import wait_for
from redis_server import RedisServer, redis_binary

DEADLINE = 60.0  # seconds any wait in these tests gives up after (never a timing assert)


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("SAUCI_REQUIRE_SANDBOXES"):
        pytest.fail(f"{reason}, and SAUCI_REQUIRE_SANDBOXES is set")
    pytest.skip(f"{reason}; set SAUCI_REQUIRE_SANDBOXES=1 to make this an error")


def _ip(*args: str, netns: str | None = None) -> None:
    cmd = ["ip", *args] if netns is None else ["ip", "netns", "exec", netns, "ip", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {proc.stderr.strip()}")


class Hosts:
    """``count`` network namespaces, each a "host" reaching this machine at ``gateway(i)``."""

    def __init__(self, count: int) -> None:
        tag = os.getpid() % 100000
        self.subnet = 200 + os.getpid() % 50  # 10.<subnet>.<i>.0/24, unlikely to be in use
        self.names = [f"sauci-t{tag}-h{i}" for i in range(count)]
        self.veths = [f"sct{tag}h{i}" for i in range(count)]
        self.made: list[str] = []

    def gateway(self, i: int) -> str:
        return f"10.{self.subnet}.{i}.1"

    def address(self, i: int) -> str:
        return f"10.{self.subnet}.{i}.2"

    def up(self) -> None:
        for i, (ns, veth) in enumerate(zip(self.names, self.veths, strict=True)):
            _ip("netns", "add", ns)
            self.made.append(ns)
            _ip("link", "add", veth, "type", "veth", "peer", "name", f"{veth}p")
            _ip("link", "set", f"{veth}p", "netns", ns)
            _ip("addr", "add", f"{self.gateway(i)}/24", "dev", veth)
            _ip("link", "set", veth, "up")
            _ip("link", "set", "lo", "up", netns=ns)
            _ip("addr", "add", f"{self.address(i)}/24", "dev", f"{veth}p", netns=ns)
            _ip("link", "set", f"{veth}p", "up", netns=ns)

    def down(self) -> None:
        for ns, veth in zip(self.names, self.veths, strict=False):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
            subprocess.run(["ip", "link", "del", veth], capture_output=True, timeout=30)

    def reach(self, i: int, port: int) -> bool:
        """Whether a process in host ``i`` can open a TCP connection to the gateway's port."""
        code = "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 2)"
        argv = ["ip", "netns", "exec", self.names[i], sys.executable, "-c", code]
        proc = subprocess.run(
            [*argv, self.gateway(i), str(port)],
            capture_output=True,
            timeout=30,
        )
        return proc.returncode == 0


def make_hosts(count: int) -> Hosts:
    if os.geteuid() != 0:
        _skip_or_fail("network namespaces need root")
    if shutil.which("ip") is None:
        _skip_or_fail("the ip command is missing (apt-get install -y iproute2)")
    if shutil.which("nsenter") is None:
        _skip_or_fail("nsenter is missing (apt-get install -y util-linux)")
    hosts = Hosts(count)
    try:
        hosts.up()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        hosts.down()
        _skip_or_fail(f"cannot make network namespaces with veth pairs: {exc}")
    return hosts


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    candidates = [os.path.dirname(found)] if found else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for c in candidates:
        if (Path(c) / "initdb").is_file():
            return Path(c)
    return None


class Postgres:
    """A throwaway PostgreSQL cluster listening on the given addresses."""

    def __init__(self, bin_dir: Path, addresses: list[str]) -> None:
        self.bin_dir = bin_dir
        self.addresses = addresses
        self.base = Path(tempfile.mkdtemp(prefix="sauci-dist-pg-"))
        self.port = _free_port()
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(self.base, "postgres", "postgres")

    def url(self, host: str = "127.0.0.1", database: str = "sauci") -> str:
        return f"postgresql+psycopg://postgres@{host}:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        proc = subprocess.run([*self._as, *args], capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {proc.stdout}{proc.stderr}")

    def start(self) -> None:
        data = self.base / "data"
        self._run(str(self.bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust")
        with (data / "pg_hba.conf").open("a") as hba:  # the worker hosts' veth addresses
            hba.write("host all all 10.0.0.0/8 trust\n")
        options = (
            f"-c listen_addresses={','.join(self.addresses)} -p {self.port} -k {self.base}"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            " -c max_connections=200"
        )
        self._run(
            str(self.bin_dir / "pg_ctl"), "-D", str(data), "-l", str(self.base / "log"),
            "-w", "-t", "60", "-o", options, "start",
        )  # fmt: skip
        import psycopg

        admin = self.url(database="postgres").replace("postgresql+psycopg", "postgresql")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE DATABASE sauci")
        from sauci.storage.migrations import upgrade

        upgrade(self.url())

    def truncate(self) -> None:
        import psycopg

        with psycopg.connect(self.url().replace("postgresql+psycopg", "postgresql")) as conn:
            tables = [
                row[0]
                for row in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                    " AND tablename <> 'alembic_version'"
                )
            ]
            conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run(
                str(self.bin_dir / "pg_ctl"), "-D", str(self.base / "data"), "-m", "immediate",
                "-w", "stop",
            )  # fmt: skip
        shutil.rmtree(self.base, ignore_errors=True)


def start_postgres(addresses: list[str]) -> Postgres:
    bin_dir = _pg_bin()
    if bin_dir is None:
        reason = "PostgreSQL binaries not found (initdb, pg_ctl)"
        if os.environ.get("SAUCI_REQUIRE_POSTGRES"):
            pytest.fail(f"{reason}, and SAUCI_REQUIRE_POSTGRES is set")
        pytest.skip(f"{reason}; set SAUCI_REQUIRE_POSTGRES=1 to make this an error")
    server = Postgres(bin_dir, addresses)
    try:
        server.start()
    except Exception as exc:
        server.stop()
        pytest.fail(f"cannot start PostgreSQL: {exc}")
    return server


def start_redis(addresses: list[str]) -> RedisServer:
    """redis-server bound to 127.0.0.1 and the gateways."""
    server = RedisServer(redis_binary(), bind=addresses)
    server.start()
    return server


class WorkerProcess:
    """One ``sauci worker`` in a host's network namespace."""

    def __init__(self, name: str, cmd: list[str], log: Path) -> None:
        self.name = name
        self.log = log
        self._out = log.open("ab")
        self.proc = subprocess.Popen(cmd, stdout=self._out, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)

    def wait(self, timeout: float = DEADLINE) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"worker {self.name} did not exit within {timeout:.0f} s:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        self._out.close()


class Cluster:
    """Hosts, Redis, PostgreSQL, and the workers and server one test starts."""

    def __init__(self, hosts: Hosts, redis: RedisServer, pg: Postgres, tmp: Path) -> None:
        self.hosts = hosts
        self.redis = redis
        self.pg = pg
        self.tmp = tmp
        self.workers: list[WorkerProcess] = []
        self.servers: list[Any] = []
        self.stores: list[Any] = []

    def broker(self, host: str = "127.0.0.1") -> str:
        return f"redis://{host}:{self.redis.port}/0"

    def store(self) -> Any:
        from sauci.storage import open_store

        store = open_store(self.pg.url())
        self.stores.append(store)
        return store

    def start_worker(
        self, name: str, host: int | None, *, labels: str = "", slots: int = 2, extra=()
    ) -> WorkerProcess:
        """A worker in host ``host``'s network namespace (None: on this machine)."""
        if host is None:
            gateway = "127.0.0.1"
            cmd = [sys.executable, "-m"]
        else:
            gateway = self.hosts.gateway(host)
            # nsenter switches the network namespace only: `ip netns exec` would
            # also remount /sys, hiding the cgroups the worker puts steps in.
            cmd = ["nsenter", f"--net=/run/netns/{self.hosts.names[host]}", "--"]
            cmd += [sys.executable, "-m"]
        cmd += ["sauci", "worker", "--broker", self.broker(gateway)]
        cmd += ["--store", self.pg.url(gateway), "--name", name, "--slots", str(slots)]
        cmd += ["--heartbeat-interval", "0.5", "--sandbox", "local", "--loglevel", "info"]
        cmd += ["--data-dir", str(self.tmp / f"worker-{name}"), "--log-level", "info"]
        if labels:
            cmd += ["--labels", labels]
        cmd += list(extra)
        worker = WorkerProcess(name, cmd, self.tmp / f"worker-{name}.log")
        self.workers.append(worker)
        return worker

    def wait_online(self, store: Any, *names: str) -> None:
        def online() -> bool:
            states = {w.name: w.state for w in store.list_workers()}
            return all(states.get(n) == "online" for n in names)

        wait_for(online, f"workers {names} to be online")

    def start_server(self, *, attempts: int = 2) -> Any:
        from sauci.app.server import build_server
        from sauci.core.config import Settings
        from sauci.core.server import ServerOptions

        settings = Settings(
            data_dir=self.tmp / f"server{len(self.servers)}",
            broker=self.broker(),
            lost_timeout=3.0,
            heartbeat_interval=0.5,
            attempts=attempts,
        )
        server = build_server(
            store=self.store(), settings=settings, options=ServerOptions(poll_interval=3600)
        )
        server.start()
        self.servers.append(server)
        return server

    def close(self) -> None:
        for worker in self.workers:
            worker.close()
        for server in self.servers:
            with contextlib.suppress(Exception):
                server.stop(timeout=5)
        for store in self.stores:
            with contextlib.suppress(Exception):
                store.close()
        from sauci.distributed import worker_cgroup_prefix
        from sauci.sandbox import sweep

        for worker in self.workers:  # step processes a killed worker left
            sweep(worker_cgroup_prefix(worker.name))


def start_server(cluster: Cluster, **settings: Any) -> Any:
    """A server on the cluster's store and broker (local sandbox, short
    liveness), with ``settings`` on top: the latent-worker tests' server."""
    from sauci.app.server import build_server
    from sauci.core.config import Settings
    from sauci.core.server import ServerOptions

    server = build_server(
        store=cluster.store(),
        settings=Settings(
            data_dir=cluster.tmp / "server",
            store=cluster.pg.url(),
            broker=cluster.broker(),
            sandbox="local",
            lost_timeout=3.0,
            heartbeat_interval=0.5,
            **settings,
        ),
        options=ServerOptions(poll_interval=3600),
    )
    server.start()
    cluster.servers.append(server)
    return server


def ended(store: Any, build_id: int) -> Any:
    """The build once it has ended, else None (for wait_for)."""
    build = store.get_build(build_id)
    return build if build.status.done else None
