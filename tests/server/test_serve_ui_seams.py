"""What a started `sauci serve` with the web UI has imported once it has served a
page and run a build (issue 'Operations that tell the truth', item 6: a smaller
server, by importing less, later, at clean seams): tarfile only when a step's
cache is packed or unpacked; GitPython only for a repository known by URL (a
local one's pipeline file is read with the git binary); the GitHub workflow
front end only for a repository whose workflow file is read."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Runs `sauci serve` with the UI in the probe's own process (its main thread);
# a thread fetches "/" once the UI answers, then prints which of the watched
# modules are loaded, optionally does what loads one, prints again and stops
# the server with SIGTERM.
PROBE = """
import os, signal, socket, sys, threading, time
WATCHED = ("git", "sauci.workflows.github", "tarfile")
data, bare, port, then, clone = sys.argv[1:6]
port = int(port)

def loaded():
    return sorted(m for m in WATCHED if m in sys.modules)

def page():
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), 5) as conn:
                conn.sendall(b"GET / HTTP/1.0\\r\\nHost: 127.0.0.1\\r\\n\\r\\n")
                return b"".join(iter(lambda: conn.recv(65536), b"")).split(b"\\r\\n", 1)[0]
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)

def build():
    import glob, subprocess
    while not os.path.exists(os.path.join(bare, "hooks", "post-receive")):
        time.sleep(0.05)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@x"]
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "go"], cwd=clone, check=True)
    subprocess.run([*git, "push", "-q", "origin", "main"], cwd=clone, check=True)
    deadline = time.monotonic() + 60
    while not glob.glob(os.path.join(data, "..", "done-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # the build's end is recorded

def probe():
    try:
        build()
        status = page()
        print("STATUS", status.decode(), flush=True)
        print("AFTER_PAGE", loaded(), flush=True)
        if then == "pack":
            from pathlib import Path
            from sauci.core.cache_archive import pack
            root = Path(data) / "ws"
            root.mkdir()
            pack(Path(data) / "c.tar", {"ws": root}, {"ws": ["."]})
            print("AFTER_PACK", loaded(), flush=True)
    finally:
        os.kill(os.getpid(), signal.SIGTERM)

threading.Thread(target=probe, daemon=True).start()
sys.argv = ["sauci", "serve", "--data-dir", data, "--repo", bare, "--sandbox", "local",
            "--port", str(port)]
from sauci.cli import main
main()
"""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@x", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def _serve_and_probe(tmp_path: Path, then: str) -> dict[str, str]:
    bare, clone = tmp_path / "repo.git", tmp_path / "clone"
    _git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    _git(tmp_path, "clone", "-q", str(bare), str(clone))
    (clone / ".sauci.yml").write_text(
        f"steps:\n  hello:\n    run: touch {tmp_path}/done-$SAUCI_BUILD_ID\n"
    )
    _git(clone, "add", ".sauci.yml")
    _git(clone, "commit", "-q", "-m", "pipeline")
    _git(clone, "push", "-q", "origin", "main")
    data = tmp_path / "data"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(data), str(bare), str(_free_port()), then, str(clone)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SAUCI_ADMIN_PASSWORD": "seams-test-pw"},
    )
    found = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition(" ")
        if key in ("STATUS", "AFTER_PAGE", "AFTER_PACK"):
            found[key] = value
    assert "AFTER_PAGE" in found, done.stdout + done.stderr
    assert list(tmp_path.glob("done-*")), "the pushed build did not run"
    return found


@pytest.fixture(scope="module")
def probed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One server for both tests: what it loaded after a build and a page, then
    after a cache was packed in its process."""
    return _serve_and_probe(tmp_path_factory.mktemp("seams"), then="pack")


def test_a_server_with_the_ui_that_ran_a_build_and_served_a_page_imported_none_of_them(
    probed: dict[str, str],
) -> None:
    assert probed["STATUS"].split()[1] in ("200", "302"), probed
    assert "[]" == probed["AFTER_PAGE"]


def test_packing_a_cache_in_that_server_imports_tarfile(probed: dict[str, str]) -> None:
    """The guard above can fail: the same probe sees tarfile once a cache is packed."""
    assert "['tarfile']" == probed["AFTER_PACK"]
