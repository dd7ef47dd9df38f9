"""Where the idle memory of `sauci serve` with the web UI goes (issue 'Operations
that tell the truth', item 6).

Two measurements, each in a fresh interpreter:

- ``served``: `sauci serve` with the UI runs in the probe's process; once it
  has served "/" and the login page it leads to and idled 1.5 s, the probe
  reads VmRSS, the number of loaded modules by top-level package and the
  resident memory by mapping (Python's objects live in anonymous memory, the
  shared libraries in their files). Then what the anonymous memory holds: the
  live heap (pymalloc's allocated blocks, from ``sys._debugmallocstats``, and
  glibc malloc's bytes in use, from ``malloc_info``; SQLite's share of it from
  ``sqlite3_memory_used``), the allocators' slack (pymalloc's arenas not in
  use, malloc's free chunks), the threads (their stacks and malloc arenas).
  ctypes and the private sys function are the probe's, never the server's.
- ``stages``: the same imports in the order the server makes them, VmRSS and
  the module count after each (SauCI and its command line, prometheus_client,
  Django configured and set up, the WSGI handler, the URLconf), beside a bare
  ``python -c`` at the start.

    python benchmarks/serve_memory.py [--top 25] [--tree /path/to/another/checkout]

The first line printed is the figure, its bare baseline (``python -c "import
time; time.sleep(5)"``) and issue 22's goal.

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
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SERVED = r"""
import json, os, signal, socket, sys, threading, time
out, data, bare, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

def get(path):
    with socket.create_connection(("127.0.0.1", port), 5) as conn:
        conn.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
        return b"".join(iter(lambda: conn.recv(65536), b""))

def heap():
    # Read after VmRSS: ctypes and what it loads are the probe's own.
    import ctypes
    libc = ctypes.CDLL("libc.so.6")
    libc.open_memstream.restype = ctypes.c_void_p
    buf, size = ctypes.c_char_p(), ctypes.c_size_t()
    stream = ctypes.c_void_p(libc.open_memstream(ctypes.byref(buf), ctypes.byref(size)))
    libc.malloc_info(0, stream)
    libc.fclose(stream)
    found = {"malloc_info": buf.value.decode()}
    saved = os.dup(2)
    with open(out + ".pymalloc", "w") as f:
        os.dup2(f.fileno(), 2)
        sys._debugmallocstats()
        os.dup2(saved, 2)
    with open(out + ".pymalloc") as f:
        found["pymalloc"] = f.read()
    sqlite = ctypes.CDLL("libsqlite3.so.0")
    sqlite.sqlite3_memory_used.restype = ctypes.c_int64
    found["sqlite_bytes"] = sqlite.sqlite3_memory_used()
    return found

def probe():
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                get("/")
                get("/accounts/login/?next=/")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        time.sleep(1.5)
        with open("/proc/self/smaps") as f:
            smaps = f.read()
        threads = sorted(t.name for t in threading.enumerate() if t.name != "probe")
        modules = sorted(sys.modules)
        found = {"modules": modules, "smaps": smaps, "threads": threads, **heap()}
        with open(out, "w") as f:
            json.dump(found, f)
    finally:
        os.kill(os.getpid(), signal.SIGTERM)

threading.Thread(target=probe, name="probe", daemon=True).start()
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


# What a library written in C costs by itself, each in a fresh interpreter: the
# resident pages of its shared library (file-backed) and what it allocates.
NATIVE = {
    "OpenSSL (hashlib: Django, SauCI's cache keys)": "import hashlib",
    "OpenSSL for TLS too (ssl: asyncio, http.client)": "import ssl",
    "SQLite and one connection (the store)": "import sqlite3; c = sqlite3.connect(':memory:')",
    "libmpdec (decimal: Django)": "import decimal",
}
ROLLUP = r"""
def rollup():
    with open("/proc/self/smaps_rollup") as f:
        rows = dict(l.split(":", 1) for l in f.read().splitlines()[1:])
    return int(rows["Rss"].split()[0]), int(rows["Anonymous"].split()[0])
before = rollup()
"""


def native_costs() -> None:
    for name, code in NATIVE.items():
        probe = (
            ROLLUP + code + "\nafter = rollup()\nprint(after[0] - before[0], after[1] - before[1])"
        )
        out = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True
        )
        rss, anon = (int(x) / 1024 for x in out.stdout.split())
        print(f"  {name:<50} +{rss:4.1f} MB ({rss - anon:.1f} MB of it file-backed)")


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


def mappings(smaps: str) -> list[dict]:
    """Each mapping of /proc/PID/smaps: start, end, permissions, file (or ""), and its kB fields."""
    rows: list[dict] = []
    for line in smaps.splitlines():
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            parts = line.split()
            start, end = (int(x, 16) for x in parts[0].split("-"))
            rows.append({"start": start, "end": end, "perm": parts[1], "file": " ".join(parts[5:])})
        elif line.endswith(" kB"):
            key, value = line.split(":", 1)
            rows[-1][key] = int(value.split()[0])
    return rows


def by_mapping(rows: list[dict]) -> collections.Counter[str]:
    resident: collections.Counter[str] = collections.Counter()
    for row in rows:
        resident[row["file"] or "[anonymous: Python's objects, stacks]"] += row.get("Rss", 0)
    return resident


def malloc_figures(info: str) -> dict[str, int]:
    """glibc's malloc_info: bytes mapped, free, per arena (the process totals last)."""
    arenas = []
    for body in re.findall(r"<heap nr=\"\d+\">(.*?)</heap>", info, re.S):
        free = sum(
            int(x)
            for x in re.findall(r'<total type="(?:fast|rest)" count="\d+" size="(\d+)"/>', body)
        )
        mapped = int(re.search(r'<system type="current" size="(\d+)"/>', body).group(1))
        arenas.append((mapped, free))
    tail = info[info.rfind("</heap>") :]
    free = sum(
        int(x) for x in re.findall(r'<total type="(?:fast|rest)" count="\d+" size="(\d+)"/>', tail)
    )
    mapped = int(re.search(r'<system type="current" size="(\d+)"/>', tail).group(1))
    return {"arenas": len(arenas), "mapped": mapped, "free": free, "in_use": mapped - free}


def pymalloc_figures(stats: str) -> dict[str, int]:
    def number(label: str) -> int:
        return int(re.search(label + r"\s+=\s+([\d,]+)", stats).group(1).replace(",", ""))

    arenas = number("# arenas allocated current")
    return {
        "arenas": arenas,
        "in_use": number("# bytes in allocated blocks"),
        "mapped": arenas << 20,
    }


def thread_memory(rows: list[dict]) -> tuple[int, int, int]:
    """(stacks, their resident kB; resident kB of the threads' malloc arenas): a
    thread's stack is a read-write mapping above its guard page; an arena's heap
    is a read-write mapping at a 64 MiB boundary, followed by its reserved rest."""
    stacks = [
        r
        for i, r in enumerate(rows)
        if i
        and r["perm"] == "rw-p"
        and not r["file"]
        and rows[i - 1]["perm"] == "---p"
        and rows[i - 1]["end"] == r["start"]
        and r["end"] - r["start"] >= 8000 << 10
    ]
    heaps = [
        r
        for i, r in enumerate(rows[:-1])
        if r["perm"] == "rw-p"
        and not r["file"]
        and r["start"] % (64 << 20) == 0
        and rows[i + 1]["perm"] == "---p"
        and rows[i + 1]["start"] == r["end"]
    ]
    return len(stacks), sum(r.get("Rss", 0) for r in stacks), sum(r.get("Rss", 0) for r in heaps)


def sleeper_mb() -> float:
    """VmRSS of `python -c "import time; time.sleep(5)"`, as bench_serve.py's baseline."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        time.sleep(1.0)
        status = Path(f"/proc/{proc.pid}/status").read_text()
        return int(status.split("VmRSS:")[1].split()[0]) / 1024
    finally:
        proc.kill()
        proc.wait()


def breakdown(found: dict, top: int) -> None:
    rows = mappings(found["smaps"])
    rss = sum(r.get("Rss", 0) for r in rows) / 1024
    anon = sum(r.get("Anonymous", 0) for r in rows) / 1024
    pym = pymalloc_figures(found["pymalloc"])
    mal = malloc_figures(found["malloc_info"])
    nstacks, stacks_kb, arenas_kb = thread_memory(rows)
    mb = 1 << 20
    live = (pym["in_use"] + mal["in_use"]) / mb
    print(
        f"  VmRSS {rss:.1f} MB = shared libraries and files {rss - anon:.1f} MB + anonymous {anon:.1f} MB"
    )
    print(
        f"  live heap {live:.1f} MB: pymalloc's blocks {pym['in_use'] / mb:.1f} MB (small Python"
        f" objects) + malloc in use {mal['in_use'] / mb:.1f} MB (larger objects, OpenSSL's and"
        f" SQLite's own; SQLite {found['sqlite_bytes'] / mb:.2f} MB)"
    )
    print(
        f"  allocators' slack: pymalloc {(pym['mapped'] - pym['in_use']) / mb:.1f} MB of"
        f" {pym['arenas']} arenas of 1 MiB; malloc {mal['free'] / mb:.1f} MB free of"
        f" {mal['mapped'] / mb:.1f} MB mapped, in {mal['arenas']} arenas (free memory need not"
        " be resident)"
    )
    print(
        f"  threads: {len(found['threads'])} ({', '.join(found['threads'])}); {nstacks} stacks"
        f" resident {stacks_kb / 1024:.2f} MB; the threads' malloc arenas resident"
        f" {arenas_kb / 1024:.1f} MB (live data included)"
    )
    modules = found["modules"]
    print(f"  {len(modules)} modules; by top-level package:")
    packages = collections.Counter(m.split(".")[0] for m in modules)
    for name, count in packages.most_common(top):
        print(f"    {count:4d} {name}")
    print("  resident memory by mapping:")
    for name, kib in by_mapping(rows).most_common(top // 2):
        print(f"    {kib / 1024:5.1f} MB {name}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--top", type=int, default=25, help="packages and mappings to list")
    parser.add_argument("--tree", type=Path, default=ROOT, help="the SauCI checkout to measure")
    args = parser.parse_args()
    root = args.tree.resolve()
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(root / "sauci")], check=False)
    with tempfile.TemporaryDirectory() as tmp:
        found = served(Path(tmp), root)
    rss = sum(r.get("Rss", 0) for r in mappings(found["smaps"])) / 1024
    bare = sleeper_mb()
    print(
        f"idle RSS of serve with the UI, after a page, no build (restart)  {rss:.1f} MB"
        f"   bare python {bare:.1f} MB (+{rss - bare:.1f} MB)   goal <= 50 MB"
        f"   {'yes' if rss <= 50 else 'NO'}"
    )
    print(f"sauci serve with the UI ({root}), restart, after a page:")
    breakdown(found, args.top)
    print("the same imports, stage by stage, in a fresh interpreter:")
    env = {**os.environ, "PYTHONPATH": str(root)}
    subprocess.run([sys.executable, "-c", STAGES], env=env, cwd=root, check=True)
    print("libraries in C, each alone in a fresh interpreter:")
    native_costs()
    return 0


if __name__ == "__main__":
    sys.exit(main())
