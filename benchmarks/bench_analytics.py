"""What opt-in usage analytics cost a `sauci run`, beside the same run with them off.

    python benchmarks/bench_analytics.py [--repeat N]  (default 40)

A one-step pipeline is run by the `sauci` command (a new process each time),
paired and interleaved with the same run under SAUCI_ANALYTICS=off. The
Mixpanel endpoint is a real local HTTP server that refuses (nothing listens),
hangs (accepts and never answers) or answers 500. Prints each median, the
difference from analytics off (the median of the pairs' differences, in wall
time and in CPU time, which is steadier on a busy machine), and the goal of
issue 'Operations that tell the truth' (an unreachable endpoint within 5 ms
of off; the first run that finds it down at most a 200 ms flush).
"""

from __future__ import annotations

import argparse
import compileall
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench_core import interleaved

GIT = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com"]


class _Endpoint:
    """A local stand-in for Mixpanel that hangs or answers ``status``."""

    def __init__(self, *, status: int | None) -> None:
        release = self.release = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if status is None:
                    release.wait(60)
                    return
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def _refused_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def _repo(tmp: Path) -> Path:
    repo = tmp / "repo"
    repo.mkdir()
    (repo / ".sauci.yml").write_text("steps:\n  t:\n    run: 'true'\n")
    subprocess.run([*GIT, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*GIT, "add", "."], cwd=repo, check=True)
    subprocess.run([*GIT, "commit", "-qm", "bench"], cwd=repo, check=True)
    return repo


def _runner(repo: Path, data: Path, **env: str):
    full = {**os.environ, "SAUCI_DATA_DIR": str(data), **env}
    full.pop("SAUCI_STORE", None)
    argv = [sys.executable, "-m", "sauci", "run", str(repo), "--quiet"]

    def run() -> None:
        subprocess.run(argv, env=full, check=True, stdout=subprocess.DEVNULL)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # 15 paired runs left the difference within about 5 ms of noise (the
    # size of the goal itself); 40 keep it to about 2 ms on a quiet machine.
    parser.add_argument("--repeat", type=int, default=40)
    args = parser.parse_args()
    # The package the runs import (PYTHONPATH first), compiled: with
    # PYTHONDONTWRITEBYTECODE=1, a module edited since its last compile would
    # be compiled from source on every run (+5 ms for the analytics modules).
    import sauci

    compileall.compile_dir(str(Path(sauci.__file__).parent), quiet=1)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        repo = _repo(tmp)
        off = _runner(repo, tmp / "off", SAUCI_ANALYTICS="off")
        hanging = _Endpoint(status=None)
        failing = _Endpoint(status=500)
        try:
            cases = {
                "local sink only (SAUCI_ANALYTICS=on)": {"SAUCI_ANALYTICS": "on"},
                "Mixpanel refused (nothing listens)": {"SAUCI_MIXPANEL_HOST": _refused_url()},
                "Mixpanel hangs": {"SAUCI_MIXPANEL_HOST": hanging.url},
                "Mixpanel answers 500": {"SAUCI_MIXPANEL_HOST": failing.url},
            }
            print(
                f"sauci run, one step; median of {args.repeat}, paired with analytics off "
                f"(the difference: median of the pairs'; load {os.getloadavg()[0]:.1f})"
            )
            for i, (name, env) in enumerate(cases.items()):
                if "SAUCI_MIXPANEL_HOST" in env:
                    env = {**env, "SAUCI_MIXPANEL_TOKEN": "bench-token"}
                on = _runner(repo, tmp / f"case{i}", **env)
                _runner(repo, tmp / f"case{i}", SAUCI_ANALYTICS="off")()  # data dir made
                start = time.perf_counter()
                on()  # the first run finds the endpoint down (at most the 200 ms flush)
                first = time.perf_counter() - start
                cpu: dict[str, list[float]] = {}
                runs = interleaved({"on": on, "off": off}, args.repeat, cpu)
                with_, without = (statistics.median(runs[k]) for k in ("on", "off"))
                # Medians of the differences within each pair (on, off run in
                # turn): steadier than the difference of the medians; the CPU
                # time (user+sys of the run's processes) is steadier still on
                # a busy machine, where wall times wander.
                wall = statistics.median(
                    a - b for a, b in zip(runs["on"], runs["off"], strict=True)
                )
                used = statistics.median(a - b for a, b in zip(cpu["on"], cpu["off"], strict=True))
                goal = "<= +5 ms" if "Mixpanel" in name else "(informative)"
                print(
                    f"{name:<40} {with_ * 1000:7.1f} ms  off {without * 1000:7.1f} ms  "
                    f"{wall * 1000:+6.1f} ms  goal {goal};  CPU {used * 1000:+5.1f} ms;  "
                    f"first run {first * 1000:.0f} ms"
                )
        finally:
            hanging.close()
            failing.close()


if __name__ == "__main__":
    main()
