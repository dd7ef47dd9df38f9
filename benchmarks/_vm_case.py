"""The VM launcher's cold start for scale_to_zero.py (``--vm-launcher``): a
guest of the VM sandbox booted per launched worker, under emulation here.

The guest's worker cannot open the benchmark's SQLite file or clone a local
path, so this case has its own PostgreSQL (initdb, on 127.0.0.1) and serves
the repository with ``git daemon``; the guest reaches both, and Redis,
through 10.0.2.2. The first launch also hard-links the server's Python into
the guest's workspace: its run is shown apart from the later ones.
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
from collections.abc import Iterator
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL on 127.0.0.1 with SauCI's schema; its URL."""
    found = shutil.which("pg_ctl")
    dirs = ([os.path.dirname(found)] if found else []) + sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), reverse=True
    )
    bin_dir = next((Path(d) for d in dirs if (Path(d) / "initdb").is_file()), None)
    if bin_dir is None:
        raise SystemExit("the VM case needs PostgreSQL (initdb, pg_ctl)")
    base = Path(tempfile.mkdtemp(prefix="sauci-bpg-"))
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_pg:
        shutil.chown(base, "postgres", "postgres")
    port = _free_port()
    data = base / "data"
    run = dict(check=True, capture_output=True, timeout=120)
    subprocess.run([*as_pg, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres",
                    "-A", "trust"], **run)  # fmt: skip
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off"
    subprocess.run([*as_pg, str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(base / "log"),
                    "-w", "-o", options, "start"], **run)  # fmt: skip
    try:
        import psycopg

        with psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True
        ) as conn:
            conn.execute("CREATE DATABASE sauci")
        url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/sauci"
        from sauci.storage.migrations import upgrade

        upgrade(url)
        yield url
    finally:
        subprocess.run([*as_pg, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "stop"], capture_output=True, timeout=60)  # fmt: skip
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def git_daemon(repo: Path) -> Iterator[str]:
    """``repo`` served by git daemon on 127.0.0.1; its git:// URL."""
    port = _free_port()
    proc = subprocess.Popen(
        ["git", "daemon", "--export-all", "--reuseaddr", f"--base-path={repo.parent}",
         "--listen=127.0.0.1", f"--port={port}", str(repo.parent)],
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"git://127.0.0.1:{port}/{repo.name}"
    try:
        deadline = time.monotonic() + 30
        while subprocess.run(["git", "ls-remote", url], capture_output=True).returncode:
            if time.monotonic() > deadline:
                raise SystemExit("git daemon did not serve within 30 s")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def vm_case(area: Path, repo: Path, broker: str, runs: int, launched, to_first_step) -> tuple:
    """``launched``/``to_first_step``: scale_to_zero.py's, for the same measure."""
    from sauci.core.config import Settings
    from sauci.storage import open_store

    with postgres() as url, git_daemon(repo) as remote:
        store = open_store(url)
        settings = Settings(
            data_dir=area / "vm", store=url, broker=broker, sandbox="local",
            heartbeat_interval=0.5, launch_workers=1, launch_idle=20.0, launcher="vm",
            vm_allow_emulation=True,
        )  # fmt: skip
        try:
            return launched(store, remote, runs, settings, timeout=600)
        finally:
            store.close()
