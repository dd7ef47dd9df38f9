"""Fixtures for the storage tests: migrated SQLite files and a PostgreSQL
server that the test session starts itself (and stops at the end).

PostgreSQL tests are skipped only when no PostgreSQL binaries are found and
SAUCI_REQUIRE_POSTGRES is not set; CI sets it, so there they fail instead.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sauci.storage.sqlite import SQLiteStore

TABLES = (
    "log_chunks",
    "log_files",
    "steps",
    "test_results",
    "artifacts",
    "events",
    "builds",
    "repos",
    "deliveries",
    "workers",
)


# SQLite


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file already migrated to the head revision (copy it, do not use it)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    SQLiteStore(path).close()  # closing the last connection checkpoints the WAL away
    return path


@pytest.fixture
def sqlite_path(sqlite_template: Path, tmp_path: Path) -> Path:
    """A fresh, migrated SQLite file for one test."""
    path = tmp_path / "sauci.db"
    shutil.copyfile(sqlite_template, path)
    return path


# PostgreSQL


def _find_pg_bin() -> Path | None:
    candidates = []
    if os.environ.get("SAUCI_PG_BIN"):
        candidates.append(os.environ["SAUCI_PG_BIN"])
    which = shutil.which("pg_ctl")
    if which:
        candidates.append(os.path.dirname(which))

    def version(path: str) -> float:
        try:
            return float(Path(path).parent.name)
        except ValueError:
            return 0.0

    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
    for c in candidates:
        if (Path(c) / "initdb").is_file() and (Path(c) / "pg_ctl").is_file():
            return Path(c)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """A throwaway PostgreSQL cluster in a temporary directory, on 127.0.0.1."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.base = Path(tempfile.mkdtemp(prefix="sauci-pg-"))
        self.data = self.base / "data"
        self.port = _free_port()
        # PostgreSQL refuses to run as root: run its tools as user postgres.
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(self.base, "postgres", "postgres")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def url_for(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        cmd = [*self._as, *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            log = self.base / "log"
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise RuntimeError(
                f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}\n{tail}"
            )

    def init(self) -> None:
        self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--no-locale",
        )

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.base} -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.base / "log"),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def cleanup(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole session (skipped or failed when unavailable)."""
    bin_dir = _find_pg_bin()
    if bin_dir is None:
        reason = (
            "PostgreSQL binaries not found (looked for initdb and pg_ctl on PATH, in "
            "$SAUCI_PG_BIN and in /usr/lib/postgresql/*/bin)"
        )
        if os.environ.get("SAUCI_REQUIRE_POSTGRES"):
            pytest.fail(f"{reason}, and SAUCI_REQUIRE_POSTGRES is set")
        pytest.skip(f"{reason}; set SAUCI_REQUIRE_POSTGRES=1 to make this an error")
    server = PostgresServer(bin_dir)
    try:
        server.init()
        server.start()
    except Exception as exc:
        server.cleanup()
        pytest.fail(f"cannot start PostgreSQL from {bin_dir}: {exc}")
    try:
        yield server
    finally:
        server.cleanup()


def _admin(url: str):  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """URL of a database migrated to the head revision, shared by the session."""
    from sauci.storage.migrations import upgrade

    with _admin(postgres_server.url) as conn:
        conn.execute("CREATE DATABASE sauci_test")
    url = postgres_server.url_for("sauci_test")
    upgrade(url)
    return url


def _truncate(url: str) -> None:
    with _admin(url) as conn:
        conn.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")


@pytest.fixture(scope="session")
def truncate_postgres(postgres_url: str) -> Callable[[], None]:
    """Empties every table of ``postgres_url`` and restarts ids at 1, when called."""
    return lambda: _truncate(postgres_url)


@pytest.fixture
def clean_postgres(postgres_url: str, truncate_postgres: Callable[[], None]) -> str:
    """``postgres_url`` with every table emptied and ids restarting at 1."""
    truncate_postgres()
    return postgres_url


@pytest.fixture
def fresh_postgres_database(postgres_server: PostgresServer) -> Iterator[str]:
    """URL of a new, empty database (no schema at all), dropped afterwards."""
    name = f"sauci_fresh_{os.getpid()}_{time.monotonic_ns()}"
    with _admin(postgres_server.url) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield postgres_server.url_for(name)
    with _admin(postgres_server.url) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
