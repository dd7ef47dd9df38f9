"""Where the idle memory of `sauci serve` with the web UI goes (issue 'Operations
that tell the truth', item 6).

Two measurements, each in a fresh interpreter:

- ``served``: `sauci serve` with the UI runs in the probe's process; once it
  has served "/" and idled 1.5 s, the probe reads VmRSS, the number of loaded
  modules by top-level package and the resident memory by mapping (Python's
  objects live in anonymous memory, the shared libraries in their files).
- ``stages``: the same imports in the order the server makes them, VmRSS and
  the module count after each (SauCI and its command line, prometheus_client,
  Django configured and set up, the WSGI handler, the URLconf), beside a bare
  ``python -c`` at the start.

    python benchmarks/serve_memory.py [--top 25] [--tree /path/to/another/checkout]

The first start of a data directory creates the databases; the figures are
from the restart that follows (the same directory started again), as in
bench_serve.py's "restart" rows.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SERVED = r"""
import json, os, signal, socket, sys, threading, time
out, data, bare, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

def probe():
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), 5) as conn:
                    conn.sendall(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                    b"".join(iter(lambda: conn.recv(65536), b""))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        time.sleep(1.5)
        with open("/proc/self/smaps") as f:
            smaps = f.read()
        with open(out, "w") as f:
            json.dump({"modules": sorted(sys.modules), "smaps": smaps}, f)
    finally:
        os.kill(os.getpid(), signal.SIGTERM)

threading.Thread(target=probe, daemon=True).start()
sys.argv = ["sauci", "serve", "--data-dir", data, "--repo", bare, "--sandbox", "local",
            "--port", str(port)]
from sauci.cli import main
main()
"""

STAGES = r"""
import gc, sys, tempfile
def rss():
    with open("/proc/self/status") as f:
        return int(f.read().split("VmRSS:")[1].split()[0])
last = [rss(), len(sys.modules)]
print(f"python itself: {last[0] / 1024:.1f} MB, {last[1]} modules")
def mark(name):
    gc.collect()
    now = rss()
    print(f"  + {name:<42} {(now - last[0]) / 1024:+5.1f} MB {len(sys.modules) - last[1]:+4d} modules")
    last[:] = [now, len(sys.modules)]
import sauci.cli, sauci.cli._server
mark("SauCI, its CLI and the server's wiring")
import prometheus_client
mark("prometheus_client (+ http.server, urllib...)")
from sauci.core.config import Settings
from sauci.contrib.django.project.serve import project_settings
import django
from django.conf import settings
settings.configure(**project_settings(Settings(data_dir=tempfile.mkdtemp()), host="127.0.0.1"))
mark("Django configured (asgiref, asyncio)")
django.setup()
mark("django.setup(): the installed apps")
from django.core.wsgi import get_wsgi_application
get_wsgi_application()
mark("the WSGI handler, middleware, WhiteNoise")
from django.urls import get_resolver
get_resolver().url_patterns
mark("the URLconf (views, the admin's URLs)")
print(f"total {rss() / 1024:.1f} MB, {len(sys.modules)} modules")
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def served(tmp: Path, root: Path) -> dict:
    bare = tmp / "repo.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    data = tmp / "data"
    env = {**os.environ, "PYTHONPATH": str(root), "SAUCI_ADMIN_PASSWORD": "memory-bench"}
    found: dict = {}
    for _ in range(2):  # a first start makes the databases; the second is a restart
        out = tmp / "probe.json"
        subprocess.run(
            [sys.executable, "-c", SERVED, str(out), str(data), str(bare), str(free_port())],
            env=env,
            cwd=root,  # `python -c` puts its working directory first on sys.path
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
            check=False,
        )
        found = json.loads(out.read_text())
    return found


def by_mapping(smaps: str) -> collections.Counter[str]:
    resident: collections.Counter[str] = collections.Counter()
    current = "?"
    for line in smaps.splitlines():
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            parts = line.split()
            current = parts[5] if len(parts) > 5 else "[anonymous: Python's objects, stacks]"
        elif line.startswith("Rss:"):
            resident[current] += int(line.split()[1])
    return resident


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--top", type=int, default=25, help="packages and mappings to list")
    parser.add_argument("--tree", type=Path, default=ROOT, help="the SauCI checkout to measure")
    args = parser.parse_args()
    root = args.tree.resolve()
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(root / "sauci")], check=False)
    with tempfile.TemporaryDirectory() as tmp:
        found = served(Path(tmp), root)
    modules = found["modules"]
    resident = by_mapping(found["smaps"])
    total = sum(resident.values()) / 1024
    print(f"sauci serve with the UI ({root}), restart, after a page:")
    print(f"  VmRSS {total:.1f} MB, {len(modules)} modules")
    packages = collections.Counter(m.split(".")[0] for m in modules)
    print("modules by top-level package:")
    for name, count in packages.most_common(args.top):
        print(f"  {count:4d} {name}")
    print("resident memory by mapping:")
    for name, kib in resident.most_common(args.top // 2):
        print(f"  {kib / 1024:5.1f} MB {name}")
    print("the same imports, stage by stage, in a fresh interpreter:")
    env = {**os.environ, "PYTHONPATH": str(root)}
    subprocess.run([sys.executable, "-c", STAGES], env=env, cwd=root, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
