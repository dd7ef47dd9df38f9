"""Workers on demand, down to zero ("Compute the seed asks for", item 3): the part
``python benchmarks/compute.py --scale-to-zero [--runs N]`` runs.

- Cold start: a one-step build queued on a server with a broker and no worker
  running (``--launch-workers 1``, the local-process launcher): from the
  enqueue to the first step's ``started_at`` in the store. The launched worker
  exits after its idle time (1 s) before the next run. Baseline in the same
  run: the same with a ``sauci worker`` started by hand beforehand and ready.
- The same cold start with ``launcher = "docker"``: a private dockerd
  (benchmarks/_private_dockerd.py) with the debootstrapped Debian base
  (``SAUCI_DEBIAN_ROOTFS``), the container on the host's network with this
  Python, this checkout and the benchmark's area mounted (as
  tests/distributed/test_docker_launcher.py runs it): container create and
  start, then the worker's own start. ``--process-only`` leaves it out.
- With ``--vm-launcher``, the same with ``launcher = "vm"`` (benchmarks/_vm_case.py:
  PostgreSQL and git daemon of its own, 3 runs, the first of which links the
  server's Python into the guest's workspace; minutes under emulation).
- Idle CPU: the server process's user+system CPU (getrusage) over 10 s with
  nothing queued and no worker running, with each launcher and without one
  (and the Docker daemon's, from /proc, over the same 10 s).

Redis is started on a free 127.0.0.1 port; the store is an SQLite file every
process here shares; steps run in the local sandbox. The server runs in this
process (which does nothing else meanwhile), so RUSAGE_SELF is its CPU.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sauci.core.config import Settings
from sauci.core.models import BuildRequest
from sauci.core.scheduler import Scheduler
from sauci.core.server import ServerOptions

GOAL_COLD = 1.5  # seconds, push to first step with no worker running


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _repo(path: Path) -> str:
    path.mkdir()
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x"}
    env.update(GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@x")
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    (path / ".sauci.yml").write_text("steps:\n  first:\n    run: 'true'\n")
    subprocess.run(["git", "-C", str(path), "add", "."], check=True)
    subprocess.run(["git", "-C", str(path), "commit", "-qm", "b"], check=True, env=env)
    return str(path)


def _wait(predicate, what: str, timeout: float = 60.0, every: float = 0.005):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(every)
    return value


def _to_first_step(store, repo: str, timeout: float = 60.0) -> float:
    start = time.time()
    build = Scheduler(store).enqueue(BuildRequest(repo=repo, ref="refs/heads/main"))

    def first_step() -> float | None:
        steps = [s for s in store.list_steps(build.id) if s.started_at]
        return min(s.started_at for s in steps) if steps else None

    started = _wait(first_step, f"build {build.id}'s first step", timeout)
    _wait(lambda: store.get_build(build.id).status.done, f"build {build.id} to end", timeout)
    return started - start


def _server(store, settings: Settings):
    from sauci.app.server import build_server

    server = build_server(store=store, settings=settings, options=ServerOptions(poll_interval=3600))
    server.start()
    return server


def _idle_cpu(seconds: float = 10.0) -> float:
    before = resource.getrusage(resource.RUSAGE_SELF)
    time.sleep(seconds)
    after = resource.getrusage(resource.RUSAGE_SELF)
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return used / seconds


def _launched(
    store, repo: str, runs: int, settings: Settings, daemon_cpu=None, timeout: float = 60.0
) -> tuple[list[float], float, float | None]:
    """Idle CPU of a server with the launcher and zero workers (and of the
    Docker daemon, given ``daemon_cpu``), then ``runs`` cold starts, each
    after the last launched worker exited."""
    server = _server(store, settings)
    try:
        time.sleep(1.0)
        daemon_before = daemon_cpu() if daemon_cpu else 0.0
        idle = _idle_cpu()
        daemon_idle = (daemon_cpu() - daemon_before) / 10.0 if daemon_cpu else None
        scaler = server.runner.autoscaler
        cold = []
        for _ in range(runs):
            _wait(
                lambda: not scaler.launched and not store.list_workers(),
                "no worker running",
                timeout,
            )
            cold.append(_to_first_step(store, repo, timeout))
            if scaler.failures:
                raise SystemExit(f"a launch failed: {scaler.last_failure}")
        _wait(lambda: not scaler.launched, "the last launched worker to exit", timeout)
    finally:
        server.stop(timeout=10)
    return cold, idle, daemon_idle


def _docker_settings(area: Path, image: str) -> dict:
    """The Debian base with this Python, this checkout and the area mounted."""
    root = Path(__file__).resolve().parents[1]
    prefix = Path(sys.prefix).resolve()
    volumes = ("/usr:/usr:ro", f"{prefix}:{prefix}:ro", f"{root}:{root}:ro", f"{area}:{area}")
    return dict(
        launcher="docker",
        launch_image=image,
        launch_volumes=volumes,
        launch_command=f"env PYTHONPATH={root} {sys.executable} -m sauci worker",
    )


def _docker_figures(store, repo: str, area: Path, runs: int, common: dict) -> None:
    from _private_dockerd import dockerd_cpu_seconds, private_dockerd

    with private_dockerd() as daemon:
        if isinstance(daemon, str):
            print(f"{'push -> first step, zero workers (docker)':<48} skipped: {daemon}")
            return
        url, image = daemon
        saved = os.environ.get("DOCKER_HOST")
        os.environ["DOCKER_HOST"] = url
        try:
            settings = Settings(
                data_dir=area / "docker", launch_workers=1, launch_idle=1.0,
                **_docker_settings(area, image), **common,
            )  # fmt: skip
            _COLD["docker"] = _launched(
                store, repo, runs, settings, lambda: dockerd_cpu_seconds(url)
            )
        finally:
            if saved is None:
                os.environ.pop("DOCKER_HOST", None)
            else:
                os.environ["DOCKER_HOST"] = saved


_COLD: dict[str, tuple[list[float], float, float | None]] = {}


def scale_to_zero_figures(runs: int, *, docker: bool = True, vm: bool = False) -> None:
    from sauci.storage import open_store

    redis_bin = shutil.which("redis-server")
    if redis_bin is None:
        raise SystemExit("redis-server is needed (apt-get install -y redis-server)")
    area = Path(tempfile.mkdtemp(prefix="sauci-s2z-", dir="/tmp"))
    port = _free_port()
    redis = subprocess.Popen(
        [redis_bin, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    broker = f"redis://127.0.0.1:{port}/0"
    url = f"sqlite:///{area / 'sauci.db'}"
    store = open_store(url)
    repo = _repo(area / "repo")
    common = dict(store=url, broker=broker, sandbox="local", heartbeat_interval=0.5)
    hand = None
    try:
        # Idle CPU without the launcher (the plain broker-mode server), then with it.
        server = _server(store, Settings(data_dir=area / "plain", **common))
        time.sleep(1.0)
        idle_plain = _idle_cpu()
        server.stop(timeout=10)
        settings = Settings(data_dir=area / "srv", launch_workers=1, launch_idle=1.0, **common)
        _COLD["process"] = _launched(store, repo, runs, settings)
        if docker:
            _docker_figures(store, repo, area, runs, common)
        if vm:
            from _vm_case import vm_case

            _COLD["vm"] = vm_case(area, area / "repo", broker, 3, _launched, _to_first_step)

        # The bare baseline: a worker started by hand, ready before the build.
        server = _server(store, Settings(data_dir=area / "warm", **common))
        env = {**os.environ, "SAUCI_STORE": url, "SAUCI_BROKER": broker}
        hand = subprocess.Popen(
            [sys.executable, "-m", "sauci", "worker", "--name", "by-hand", "--sandbox", "local",
             "--heartbeat-interval", "0.5", "--data-dir", str(area / "hand")],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _wait(lambda: any(w.name == "by-hand" for w in store.list_workers()), "the worker")
        time.sleep(1.0)  # consuming, and seen live by the server
        warm = [_to_first_step(store, repo) for _ in range(runs)]
        server.stop(timeout=10)

        w = statistics.median(warm)
        print(f"{'push -> first step, worker by hand (bare)':<48} {w * 1000:8.0f} ms")
        for kind, (cold, _, _) in _COLD.items():
            c = statistics.median(cold)
            verdict = "meets" if c <= GOAL_COLD else "misses"
            print(
                f"{f'push -> first step, zero workers ({kind})':<48} {c * 1000:8.0f} ms"
                f"  {c / w:5.1f}x bare; {verdict} the goal of {GOAL_COLD:g} s"
                f" (runs: {', '.join(f'{x:.2f}' for x in cold)} s)"
            )
        print(f"{'server CPU idle, broker, no launcher (bare)':<48} {idle_plain * 100:8.2f} %")
        for kind, (_, idle, daemon_idle) in _COLD.items():
            daemon = "" if daemon_idle is None else f"; dockerd {daemon_idle * 100:.2f} %"
            print(
                f"{f'server CPU idle, {kind} launcher, 0 workers':<48} {idle * 100:8.2f} %"
                f"  {idle / idle_plain if idle_plain else float('nan'):5.2f}x bare{daemon}"
            )
    finally:
        if hand is not None:
            hand.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                hand.wait(20)
        redis.terminate()
        redis.wait(10)
        store.close()
        shutil.rmtree(area, ignore_errors=True)
