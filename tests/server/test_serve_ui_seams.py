"""What a started `sauci serve` with the web UI has imported once it has served a
page (issue 'Operations that tell the truth', item 6: a smaller server, by
importing less, later, at clean seams): tarfile only when a step's cache is
packed or unpacked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# Runs `sauci serve` with the UI in the probe's own process (its main thread);
# a thread fetches "/" once the UI answers, then prints which of the watched
# modules are loaded, optionally does what loads one, prints again and stops
# the server with SIGTERM.
PROBE = """
import os, signal, socket, sys, threading, time
WATCHED = ("tarfile",)
data, bare, port, then = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]

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

def probe():
    try:
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


def _serve_and_probe(tmp_path: Path, then: str) -> dict[str, str]:
    bare = tmp_path / "repo.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    data = tmp_path / "data"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(data), str(bare), str(_free_port()), then],
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "SAUCI_ADMIN_PASSWORD": "seams-test-pw"},
    )
    found = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition(" ")
        if key in ("STATUS", "AFTER_PAGE", "AFTER_PACK"):
            found[key] = value
    assert "AFTER_PAGE" in found, done.stdout + done.stderr
    return found


def test_a_server_with_the_ui_that_served_a_page_has_not_imported_tarfile(tmp_path):
    found = _serve_and_probe(tmp_path, then="")
    assert found["STATUS"].split()[1] in ("200", "302"), found
    assert "[]" == found["AFTER_PAGE"]


def test_packing_a_cache_in_that_server_imports_tarfile(tmp_path):
    """The guard above can fail: the same probe sees tarfile once a cache is packed."""
    found = _serve_and_probe(tmp_path, then="pack")
    assert "[]" == found["AFTER_PAGE"]
    assert "['tarfile']" == found["AFTER_PACK"]
