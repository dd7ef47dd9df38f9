"""A one-step repository served by ``git daemon`` on 127.0.0.1, for workers that
cannot clone the test's local path (in a VM guest, in a container of an image
with a user of its own)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

from polling import wait_for


@contextlib.contextmanager
def served_repo(base: Path, pipeline: str) -> Iterator[str]:
    """A repository under ``base`` with ``pipeline`` as its .sauci.yml; its git:// URL."""
    repo = base / "repo"
    repo.mkdir(parents=True)
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t"}
    env.update(GIT_COMMITTER_EMAIL="t@x", PATH=os.environ["PATH"])
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / ".sauci.yml").write_text(pipeline)
    subprocess.run(["git", "-C", str(repo), "add", "."], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "init"], check=True, env=env)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    daemon = subprocess.Popen(
        ["git", "daemon", "--export-all", "--reuseaddr", f"--base-path={base}",
         "--listen=127.0.0.1", f"--port={port}", str(base)],
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"git://127.0.0.1:{port}/repo"
    try:
        wait_for(
            lambda: subprocess.run(["git", "ls-remote", url], capture_output=True).returncode == 0,
            "git daemon to serve",
        )
        yield url
    finally:
        daemon.terminate()
        daemon.wait(10)
