"""`sauci serve` figures (issue 3), each beside a bare baseline measured in the same run.

    python benchmarks/bench_serve.py [--pushes 20] [--starts 5] [--skip-ui]

(a) `git push` with SauCI's post-receive hook vs without it (interleaved; the
    push helpers are bench_hook.py's). Target: at most +50 ms.
(b) From the end of `git push` to the first step's process running: a
    Server (sauci.core.server) started in-process on a temporary data dir,
    a bare repository with SauCI's hook, a step whose first action is
    `date +%s.%N > started/$SAUCI_BUILD_ID`. Median over --pushes pushes,
    one at a time (each build ends before the next push). Baseline: the time
    from `subprocess.Popen` to the same `date` command having run, i.e. the
    cost of starting the step's shell at all. Target: median <= 200 ms.
(c) `sauci serve --no-ui` (and with the UI, on a free port): time from the
    process start to its "sauci serve: watching" line, when the hook is
    installed and the server answers; then a push made at that moment and the
    time until its first step runs. First start (new data dir: the database
    is created and migrated) and restart (existing data dir) are shown
    apart. Baseline: `python -c pass`. Target: accepts pushes <= 1 s after
    start.
    Issue 22's targets: "watching" within 0.3 s of the start and the UI's
    "web UI on" within 0.5 s; a second baseline is a bare `python -m
    http.server` (start to its first answer), the least a Python web server
    costs.
(d) Idle resident memory (VmRSS) of `sauci serve` with the web UI, after it
    served the build list page, beside `python -c "import time;
    time.sleep(5)"` and the bare http.server after one answer. Target: <= 50
    MB (issue 22; issue 3's was 80 MB).

Beside each start time, the server process's own CPU time (user + system)
until that line: on a machine other processes keep busy, the wall time
grows with the load and the CPU time hardly does.

The CLI is started through the installed `sauci` script next to
sys.executable (not a pyenv shim, which adds a bash and `pyenv exec`).
Byte-code is compiled first (PYTHONDONTWRITEBYTECODE may be set).
"""

from __future__ import annotations

import argparse
import compileall
import os
import select
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_hook import git, setup, timed_push  # noqa: E402

from sauci.app.server import build_server  # noqa: E402
from sauci.core.config import Settings  # noqa: E402
from sauci.core.models import Status  # noqa: E402
from sauci.core.server import ServerOptions  # noqa: E402
from sauci.storage import open_store  # noqa: E402
from sauci.triggers import install_hook, remove_hook  # noqa: E402

for _var, _val in (
    ("GIT_AUTHOR_NAME", "bench"),
    ("GIT_AUTHOR_EMAIL", "bench@example.com"),
    ("GIT_COMMITTER_NAME", "bench"),
    ("GIT_COMMITTER_EMAIL", "bench@example.com"),
):
    os.environ.setdefault(_var, _val)

SAUCI = Path(sys.executable).with_name("sauci")
ROWS: list[tuple[str, str, str, str, str, str]] = []


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def row(name: str, value: str, base: str, cmp: str, target: str, met: bool | None) -> None:
    verdict = "" if met is None else ("yes" if met else "NO")
    ROWS.append((name, value, base, cmp, target, verdict))
    print(
        f"{name:<52} {value:>11}   bare {base:>11}   {cmp:<30} target {target:<10} {verdict}",
        flush=True,
    )


def wait_for(
    check: Callable[[], object], timeout: float, what: str, interval: float = 0.002
) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")


def make_repo(root: Path, started: Path) -> tuple[Path, Path]:
    """A bare repository and a clone whose .sauci.yml stamps when its step started."""
    bare, clone = setup(root)
    (clone / ".sauci.yml").write_text(
        f"steps:\n  stamp:\n    run: date +%s.%N > {started}/$SAUCI_BUILD_ID\n"
    )
    git(clone, "add", ".sauci.yml")
    git(clone, "commit", "-q", "-m", "pipeline")
    git(clone, "push", "-q", "origin", "main")
    return bare, clone


def push(clone: Path, n: int) -> tuple[float, float]:
    """A new commit pushed; (wall time at push start, at push end)."""
    git(clone, "commit", "-q", "--allow-empty", "-m", f"push {n}")
    start = time.time()
    git(clone, "push", "-q", "origin", "main")
    return start, time.time()


def stamp_of(started: Path, build_id: int) -> float | None:
    try:
        text = (started / str(build_id)).read_text().strip()
    except FileNotFoundError:
        return None
    return float(text) if text else None


# -- (a) ------------------------------------------------------------------------


def bench_hook_overhead(tmp: Path, repeat: int) -> None:
    root = tmp / "hook"
    root.mkdir()
    bare, clone = setup(root)
    spool = root / "spool"
    without: list[float] = []
    with_hook: list[float] = []
    timed_push(clone, -1)
    for n in range(repeat):
        remove_hook(bare)
        without.append(timed_push(clone, 2 * n))
        install_hook(bare, spool)
        with_hook.append(timed_push(clone, 2 * n + 1))
    a, b = statistics.median(with_hook), statistics.median(without)
    row(
        "(a) git push with SauCI's hook",
        ms(a),
        ms(b),
        f"{(a - b) * 1000:+.1f} ms",
        "<= +50 ms",
        a - b <= 0.050,
    )


# -- (b) ------------------------------------------------------------------------


def bare_spawn_latency(started: Path, repeat: int) -> float:
    """Popen of `bash -eo pipefail -c 'date ... > file'` until the date ran."""
    out = started / "bare"
    times = []
    for _ in range(repeat):
        t0 = time.time()
        subprocess.run(["bash", "-eo", "pipefail", "-c", f"date +%s.%N > {out}"], check=True)
        times.append(float(out.read_text()) - t0)
    return statistics.median(times)


def bench_push_to_step(tmp: Path, pushes: int) -> None:
    root = tmp / "p2s"
    root.mkdir()
    started = root / "started"
    started.mkdir()
    bare, clone = make_repo(root, started)
    settings = Settings(data_dir=root / "data", sandbox="local")
    settings.data_dir.mkdir()
    store = open_store(f"sqlite:///{settings.data_dir / 'sauci.db'}")
    server = build_server(
        store=store, settings=settings, repos=[str(bare)], options=ServerOptions()
    )
    install_hook(bare, settings.data_dir / "spool")
    server.start()
    from_end: list[float] = []
    from_start: list[float] = []
    bare_lat: list[float] = []
    try:
        for n in range(pushes + 1):  # the first push is a warm-up
            known = {b.id for b in store.list_builds(limit=1000)}
            t_start, t_end = push(clone, n)

            def new_build(known: set[int] = known) -> list:
                return [b for b in store.list_builds(limit=50) if b.id not in known]

            build = wait_for(new_build, 30, "the pushed build")[0]  # type: ignore[index]
            bid = build.id
            stamp = wait_for(lambda bid=bid: stamp_of(started, bid), 30, "the step to start")
            wait_for(lambda bid=bid: store.get_build(bid).status.done, 30, "the build to end")
            assert store.get_build(build.id).status is Status.PASSED, store.get_build(build.id)
            if n:
                from_end.append(float(stamp) - t_end)  # type: ignore[arg-type]
                from_start.append(float(stamp) - t_start)  # type: ignore[arg-type]
                bare_lat.append(bare_spawn_latency(started, 1))
    finally:
        server.stop()
        store.close()
    a, b = statistics.median(from_end), statistics.median(bare_lat)
    row(
        f"(b) push end -> first step running (median of {pushes})",
        ms(a),
        ms(b),
        f"{(a - b) * 1000:+.1f} ms",
        "<= 200 ms",
        a <= 0.200,
    )
    spread = f"min {ms(min(from_end))}, max {ms(max(from_end))}"
    row(f"    push end -> step: {spread}", "", "", "", "", None)
    row("    same, from push start", ms(statistics.median(from_start)), "", "", "", None)


# -- (c) and (d) ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Serve:
    """`sauci serve` as a child process; records when its lines appear."""

    def __init__(
        self,
        data: Path,
        bare: Path,
        *,
        ui: bool,
        extra: tuple[str, ...] = (),
        tree: Path | None = None,
    ) -> None:
        self.port = free_port() if ui else None
        cmd = [
            str(SAUCI),
            "serve",
            "--data-dir",
            str(data),
            "--repo",
            str(bare),
            "--sandbox",
            "local",
        ]
        cmd += ["--port", str(self.port), *extra] if ui else ["--no-ui"]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if tree is not None:  # another checkout's sauci (bench_serve_pairs.py)
            env["PYTHONPATH"] = str(tree)
        env.pop("SAUCI_ADMIN_PASSWORD", None)  # the default: a password made once
        self.t0 = time.time()
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        self.lines: list[tuple[float, str]] = []
        self.cpu_at: dict[str, float] = {}
        self._buf = b""

    def wait_line(self, needle: str, timeout: float = 30.0) -> float:
        """Wall time when a line containing ``needle`` was printed."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while True:
            for when, line in self.lines:
                if needle in line:
                    return when
            left = deadline - time.monotonic()
            if left <= 0 or (
                self.proc.poll() is not None and not select.select([fd], [], [], 0)[0]
            ):
                raise RuntimeError(
                    f"sauci serve printed no {needle!r}: " + "\n".join(t for _, t in self.lines)
                )
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                data = os.read(fd, 65536)
                now = time.time()
                self._buf += data
                *done, self._buf = self._buf.split(b"\n")
                self.lines += [(now, d.decode(errors="replace")) for d in done]
                for d in done:  # the process's CPU time when the line came
                    self.cpu_at[d.decode(errors="replace")] = self.cpu_seconds()

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far: unlike the wall
        time, hardly moved by other processes on a busy machine."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def cpu_when(self, needle: str) -> float:
        return next((c for line, c in self.cpu_at.items() if needle in line), float("nan"))

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def bare_python_start(repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def http_get(url: str, timeout: float = 10.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            resp.read()
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def one_start(tmp: Path, n: int, *, ui: bool, fresh: bool, data: Path | None) -> dict[str, float]:
    """Start `sauci serve`, push at its ready line, time the build's first step."""
    root = tmp / f"start-{'ui' if ui else 'noui'}-{n}"
    root.mkdir()
    started = root / "started"
    started.mkdir()
    bare, clone = make_repo(root, started)
    data = data if data is not None else root / "data"
    out: dict[str, float] = {}
    srv = Serve(data, bare, ui=ui)
    try:
        ready = srv.wait_line("sauci serve: watching")
        out["ready"] = ready - srv.t0
        out["ready_cpu"] = srv.cpu_when("sauci serve: watching")
        hook = bare / "hooks" / "post-receive"
        assert hook.exists(), "the hook is not installed when serve says it is watching"
        _, t_end = push(clone, n)
        store = open_store(f"sqlite:///{data / 'sauci.db'}")
        try:
            builds = wait_for(
                lambda: [b for b in store.list_builds(limit=10) if b.repo == str(bare)],
                30,
                "the pushed build",
                0.005,
            )
            stamp = wait_for(lambda: stamp_of(started, builds[0].id), 30, "the step", 0.005)  # type: ignore[index]
        finally:
            store.close()
        out["first_step"] = float(stamp) - srv.t0  # type: ignore[arg-type]
        out["push_to_step"] = float(stamp) - t_end  # type: ignore[arg-type]
        if ui:
            # The UI starts beside the server and says when it is ready.
            out["ui_ready"] = srv.wait_line("sauci: web UI on") - srv.t0
            out["ui_cpu"] = srv.cpu_when("sauci: web UI on")
            url = f"http://127.0.0.1:{srv.port}/"
            status = http_get(url)
            out["http_status"] = status
            out["page"] = time.time() - srv.t0
            time.sleep(2.0)  # idle
            out["rss_kib"] = srv.rss_kib()
    finally:
        srv.stop()
    return out


def bare_http_server() -> tuple[float, int]:
    """`python -m http.server`: seconds from start to its first answer, and its
    idle RSS (KiB) after that answer."""
    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tempfile.gettempdir(),
    )
    try:
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/"), 10, "http.server", 0.002)
        ready = time.perf_counter() - t0
        time.sleep(1.0)
        for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return ready, int(line.split()[1])
        raise RuntimeError("no VmRSS")
    finally:
        proc.kill()
        proc.wait()


def _answers(url: str) -> bool:
    try:
        return http_get(url, timeout=1.0) > 0
    except OSError:
        return False


def sleeper_rss_kib() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        time.sleep(1.0)
        for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")
    finally:
        proc.kill()
        proc.wait()


def bench_serve_start(tmp: Path, starts: int, *, ui: bool) -> None:
    label = "with UI" if ui else "--no-ui"
    fresh: list[dict[str, float]] = []
    again: list[dict[str, float]] = []
    bare_py: list[float] = []
    bare_http: list[tuple[float, int]] = []
    for n in range(starts):
        first = one_start(tmp, 2 * n, ui=ui, fresh=True, data=None)
        fresh.append(first)
        data = tmp / f"start-{'ui' if ui else 'noui'}-{2 * n}" / "data"
        again.append(one_start(tmp, 2 * n + 1, ui=ui, fresh=False, data=data))
        bare_py.append(bare_python_start(3))
        bare_http.append(bare_http_server())
    base = statistics.median(bare_py)
    http_ready = statistics.median(r for r, _ in bare_http)
    goal = 0.3 if ui else 1.0
    for what, runs in (("restart", again), ("first start", fresh)):
        ready = statistics.median(r["ready"] for r in runs)
        step = statistics.median(r["first_step"] for r in runs)
        row(
            f"(c) serve {label} ({what}): start -> watching",
            ms(ready),
            ms(base),
            f"{(ready - base) * 1000:+.1f} ms, {ready / base:.1f}x",
            f"<= {goal * 1000:.0f} ms",
            ready <= goal,
        )
        cpu = statistics.median(r["ready_cpu"] for r in runs)
        row(f"    ... CPU time of serve until watching ({what})", ms(cpu), "", "", "", None)
        row("    ... start -> first pushed build's step runs", ms(step), "", "", "", None)
    if ui:
        for what, runs in (("restart", again), ("first start", fresh)):
            shown = statistics.median(r["ui_ready"] for r in runs)
            row(
                f"    ... CPU time of serve until web UI on ({what})",
                ms(statistics.median(r["ui_cpu"] for r in runs)),
                "",
                "",
                "",
                None,
            )
            row(
                f"    ... ({what}) start -> web UI on",
                ms(shown),
                ms(http_ready),
                f"http.server, {shown / http_ready:.1f}x",
                "<= 500 ms",
                shown <= 0.5,
            )
        status = {int(r["http_status"]) for r in fresh + again}
        page = statistics.median(r["page"] for r in again)
        row(
            f"    ... start -> / served, after that build (HTTP {sorted(status)})",
            ms(page),
            "",
            "",
            "",
            None,
        )
        base_rss = statistics.median(sleeper_rss_kib() for _ in range(3)) / 1024
        http_rss = statistics.median(k for _, k in bare_http) / 1024
        for what, runs in (("restart", again), ("first start", fresh)):
            rss = statistics.median(r["rss_kib"] for r in runs) / 1024
            row(
                f"(d) idle RSS of serve with the UI, after a page ({what})",
                f"{rss:.1f} MB",
                f"{base_rss:.1f} MB",
                f"{rss - base_rss:+.1f} MB; http.server {http_rss:.1f} MB",
                "<= 50 MB",
                rss <= 50,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=20)
    parser.add_argument("--hook-repeat", type=int, default=30)
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--skip-ui", action="store_true")
    parser.add_argument(
        "--only-starts", action="store_true", help="only (c) and (d): start times and memory"
    )
    args = parser.parse_args()
    compileall.compile_dir(str(ROOT / "sauci"), quiet=1)
    if not SAUCI.exists():
        sys.exit(f"no sauci script at {SAUCI}: pip install -e '.[django]'")
    with tempfile.TemporaryDirectory(prefix="sauci-bench-serve-") as name:
        tmp = Path(name)
        if not args.only_starts:
            bench_hook_overhead(tmp, args.hook_repeat)
            bench_push_to_step(tmp, args.pushes)
        bench_serve_start(tmp, args.starts, ui=False)
        if not args.skip_ui:
            bench_serve_start(tmp, args.starts, ui=True)


if __name__ == "__main__":
    main()
