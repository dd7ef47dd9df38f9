"""Chaos: N builds with random faults (seeded), and the same N builds without.

    python benchmarks/chaos.py [--store redis] [--builds 200] [--seed 1] [--faults a,b,...]

Every build runs the same two-step pipeline (3000 lines of output, then a
second of quiet, then one more step) on the store --store names, on a real
server of its own (benchmarks/_chaos_stores.py): ``sqlite`` (a file),
``duckdb`` (a file, one process at a time), ``postgres`` (a PostgreSQL
cluster), ``redis`` (a redis-server, append-only so that it keeps its data
across a restart), ``stream`` (the stream store on such a Redis), ``kafka``
(the stream store on a Tansu broker, in memory) or ``tee`` (a SQLite
primary and such a Redis as its secondary). Each build of the chaos half
gets one fault, drawn with the seed from --faults:

- ``store_brief``: the store's server stopped 0.3 s into the build, started
  1 s later (under the deadline, 30 s here); on ``tee`` its secondary's
  server, which the tee must catch up; not on sqlite, duckdb (no server)
  nor kafka (the tests' broker loses its log on a restart, or, on its S3
  engine, stops serving records after repeated restarts; tests/faults
  covers one restart each way);
- ``store_deadline``: the server stopped for 3 s with a 1 s deadline: the
  build must end "errored: store unavailable" and its data be delivered
  once the server is back (what ``sauci serve`` does every 5 s); where
  ``store_brief`` is, but not on tee (the primary decides, and stays up);
- ``kill_run``: ``sauci run`` killed with SIGKILL mid-step, then what the
  next ``sauci run`` does at start (``end_lost_runs``, ``deliver_pending``);
- ``disk_full``: the build's data dir is a 1 MiB tmpfs and the step writes
  3 MB (skipped where tmpfs cannot be mounted);
- ``corrupt_log``: the build passes, then its log file is cut; the log is
  read back as the page and ``sauci logs`` read it; not on sqlite (the file
  is its only copy of a log);
- ``kill_serve``: ``sauci serve`` killed with SIGKILL mid-step and started
  again (benchmarks/_chaos_serve.py): the killed build ends "errored" with
  its log whole and is requeued once, and the new build passes;
- ``none``: no fault.

After each build and its recovery, it counts:

- lost: a build asked for that the store does not have;
- wrong: a build "passed" whose stored logs are not exactly the output, or
  a build without a fault that did not pass, or a reader that shows a
  corrupt file instead of the log;
- duplicates: more than one build for one request;
- leftovers: a build or step still "running", a step process alive, a note
  of undelivered data or a build's journal left, a stored log that differs from its file;

and on ``tee``, once the tee has caught up, a build of the primary that the
secondary lacks is lost, and one it holds with another status, reason or
log is wrong; after ``store_brief`` there, ``secondary_caught_up`` is the
time from the build's end (the secondary back) until the tee's backlog is
replayed;

and the time to recover: from the end of the fault (the server back, the
kill) until the build is whole in the store (for ``kill_serve``: until the
requeued build has ended).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _chaos_serve import kill_serve  # noqa: E402
from _chaos_stores import STORES, secondary_differs, store_server  # noqa: E402

from sauci.app import LocalRunner  # noqa: E402
from sauci.app.reconcile import end_lost_runs  # noqa: E402
from sauci.core.config import Settings  # noqa: E402
from sauci.core.journal import pending_journals, replay_journals  # noqa: E402
from sauci.core.logfile import trusted_log_file  # noqa: E402
from sauci.core.models import BuildRequest, Pipeline, Status, Step  # noqa: E402
from sauci.core.undelivered import deliver_pending, pending_notes  # noqa: E402
from sauci.storage import open_store  # noqa: E402

FAULTS = (
    "store_brief",
    "store_deadline",
    "kill_run",
    "kill_serve",
    "disk_full",
    "corrupt_log",
    "none",
)
OUTAGES = ("store_brief", "store_deadline")
TALK = b"".join(b"%d\n" % i for i in range(1, 3001))


def pipeline(marker: Path) -> Pipeline:
    return Pipeline(
        steps=[
            Step(name="talk", run=f"seq 1 3000; echo $$ > {marker}; sleep 1"),
            Step(name="end", run="echo end"),
        ]
    )


def big_pipeline(marker: Path) -> Pipeline:
    return Pipeline(
        steps=[
            Step(
                name="talk",
                run=f"echo $$ > {marker}; head -c 3000000 /dev/zero | tr '\\0' x; sleep 1",
            ),
            Step(name="end", run="echo end"),
        ]
    )


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Chaos:
    def __init__(self, work: Path, server: Any, *, faulty: bool) -> None:
        self.work = work
        self.server = server  # the store's server (PostgreSQL, Redis, none for SQLite)
        self.exclusive = server.exclusive  # DuckDB: let go while a subprocess has it
        self.data = work / ("chaos" if faulty else "bare")
        self._open()
        self.ws = work / "ws"
        self.ws.mkdir(exist_ok=True)
        self.counts = {"lost": 0, "wrong": 0, "duplicates": 0, "leftovers": 0}
        self.recover: dict[str, list[float]] = {}
        self.marker = work / "step.pid"
        self.repo = self._git_repo(work / "repo")
        self.small: Path | None = None

    def _open(self) -> Any:
        self.store = open_store(self.server.url)
        settings = Settings(data_dir=self.data, grace=1.0)
        self.runner = LocalRunner(store=self.store, settings=settings, secrets={}, store_retry=30.0)
        self.short = LocalRunner(store=self.store, settings=settings, secrets={}, store_retry=1.0)
        return self.store

    def _release(self) -> None:
        if self.exclusive:
            self.store.close()

    def _git_repo(self, path: Path) -> Path:
        path.mkdir(exist_ok=True)
        (path / ".sauci.yml").write_text(
            f"steps:\n  talk:\n    run: seq 1 3000; echo $$ > {self.marker}; sleep 30\n"
        )
        git = ["git", "-c", "user.name=c", "-c", "user.email=c@x"]
        for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-qm", "c"]):
            subprocess.run([*git, *args], cwd=path, check=True, capture_output=True)
        return path

    # -- faults ----------------------------------------------------------

    def _outage(self, down_for: float, box: dict[str, float]) -> threading.Thread:
        def run() -> None:
            time.sleep(0.3)
            self.server.stop()
            time.sleep(down_for)
            self.server.start()
            box["up"] = time.monotonic()

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    def build(self, i: int, fault: str) -> None:
        repo = f"/chaos/{i}"
        request = BuildRequest(repo=repo, event="push")
        self.marker.unlink(missing_ok=True)
        recovered: float | None = None
        if fault in ("none", "corrupt_log"):
            self.runner.run_pipeline(pipeline(self.marker), self.ws, request)
        elif fault == "store_brief":
            box: dict[str, float] = {}
            thread = self._outage(1.0, box)
            self.runner.run_pipeline(pipeline(self.marker), self.ws, request)
            thread.join()
            recovered = max(0.0, time.monotonic() - box["up"])
        elif fault == "store_deadline":
            box = {}
            thread = self._outage(3.0, box)
            self.short.run_pipeline(pipeline(self.marker), self.ws, request)
            thread.join()
            while pending_notes(self.data) or pending_journals(self.data):
                deliver_pending(self.store, self.data)
                time.sleep(0.05)
            recovered = time.monotonic() - box["up"]
        elif fault == "kill_run":
            repo = str(self.repo)
            recovered = self._kill_run()
        elif fault == "kill_serve":
            self._release()
            reopen = self._open if self.exclusive else None
            counts, recovered, note = kill_serve(
                self.work, self.store, self.server.url, i, reopen=reopen
            )
            for name, n in counts.items():
                self.counts[name] += n
            if note:
                self.notes.append(f"build {i} (kill_serve): {note}")
            self.recover.setdefault(fault, []).append(recovered)
            self.check_secondary(str(self.work / f"serve-{i}" / "origin.git"), fault, i)
            return
        elif fault == "disk_full":
            recovered = self._disk_full(request)
        self.check(repo, fault, i)
        if recovered is not None:
            self.recover.setdefault(fault, []).append(recovered)

    def _kill_run(self) -> float:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SAUCI_", "GIT_"))}
        env |= {"SAUCI_DATA_DIR": str(self.data), "SAUCI_STORE": self.server.url}
        env["PYTHONPATH"] = str(ROOT)
        self._release()
        run = subprocess.Popen(
            [sys.executable, "-m", "sauci", "run", str(self.repo)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while not (self.marker.exists() and self.marker.read_text().strip()):
            time.sleep(0.01)
        run.kill()
        run.wait()
        killed = time.monotonic()
        if self.exclusive:
            self._open()
        # What the next sauci run does first on this data dir (a new process's
        # stream view starts caught up; this long-lived one catches up first).
        self.settle()
        replay_journals(self.store, self.data)
        end_lost_runs(self.store)
        deliver_pending(self.store, self.data)
        return time.monotonic() - killed

    def _disk_full(self, request: BuildRequest) -> float | None:
        if self.small is None:
            self.small = self.work / "small"
            self.small.mkdir()
            mount = ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(self.small)]
            if subprocess.run(mount, capture_output=True).returncode != 0:
                self.small = None
                return None
        for child in self.small.iterdir():
            shutil.rmtree(child, ignore_errors=True)
        settings = Settings(data_dir=self.small / "data", grace=1.0)
        runner = LocalRunner(store=self.store, settings=settings, secrets={}, store_retry=30.0)
        ws = self.work / "ws-full"
        ws.mkdir(exist_ok=True)
        runner.run_pipeline(big_pipeline(self.marker), ws, request)
        return 0.0

    # -- the verdict -----------------------------------------------------

    def settle(self) -> None:
        """The stream store's view here, caught up with the other processes'
        writes (``sauci run`` in a subprocess); other stores read through."""
        catch_up = getattr(self.store, "catch_up", None)
        if catch_up is not None:
            catch_up()

    def check(self, repo: str, fault: str, i: int) -> None:
        self.settle()
        builds = self.store.list_builds(repo=repo, limit=1000)
        expected = len(self.done_kills) + 1 if fault == "kill_run" else 1
        if len(builds) < expected:
            self.counts["lost"] += 1
            self.notes.append(f"build {i} ({fault}): lost, {len(builds)} of {expected} builds")
            return
        if len(builds) > expected:
            self.counts["duplicates"] += 1
            self.notes.append(f"build {i} ({fault}): {len(builds)} builds for {expected}")
        build = builds[0]
        steps = self.store.list_steps(build.id)
        if fault == "kill_run":
            self.done_kills.append(i)
        left = not build.status.done or any(not s.status.done for s in steps)
        if self.marker.exists() and (text := self.marker.read_text().strip()):
            pid = int(text)
            for _ in range(100):  # the sweep's SIGKILL takes a moment to land
                if not alive(pid):
                    break
                time.sleep(0.02)
            left = left or alive(pid)
        left = left or bool(pending_notes(self.data)) or bool(pending_journals(self.data))
        for step in steps:
            path = Path(step.log_path) if step.log_path else None
            if (
                path is not None
                and path.exists()
                and fault != "corrupt_log"
                and self.store.read_log(build.id, step.name) != path.read_bytes()
            ):
                left = True
        if left:
            self.counts["leftovers"] += 1
            self.notes.append(f"build {i} ({fault}): left {build.status.value}")
        wrong = False
        logs = {s.name: self.store.read_log(build.id, s.name) for s in steps}
        if build.status is Status.PASSED:
            wrong = logs.get("talk") != TALK or logs.get("end") != b"end\n"
        if fault in ("none", "store_brief", "corrupt_log") and build.status is not Status.PASSED:
            wrong = True
        if fault == "store_deadline" and build.status is not Status.ERRORED:
            wrong = True
        if fault == "corrupt_log":
            talk = next(s for s in steps if s.name == "talk")
            with open(talk.log_path, "r+b") as fh:
                fh.truncate(100)
            path = trusted_log_file(self.store, talk)
            shown = path.read_bytes() if path else self.store.read_log(build.id, "talk")
            wrong = wrong or shown != TALK
        if wrong:
            self.counts["wrong"] += 1
            self.notes.append(f"build {i} ({fault}): wrong, {build.status.value}: {build.reason}")
        self.check_secondary(repo, fault, i)

    def check_secondary(self, repo: str, fault: str, i: int) -> None:
        """On a tee: once it has caught up, the secondary holds every build of
        the primary, with the same status, reason and logs."""
        if not self.server.secondary:
            return
        what, why, took = secondary_differs(self.store, repo, self.counted)
        if fault == "store_brief":
            self.recover.setdefault("secondary_caught_up", []).append(took)
        if what:
            self.counts[what] += 1
            self.notes.append(f"build {i} ({fault}): secondary {why}")

    done_kills: list[int]
    notes: list[str]
    counted: set[str]  # builds a tee check has counted already

    def close(self) -> None:
        if self.small is not None:
            subprocess.run(["umount", "-l", str(self.small)], check=False)
        self.store.close()


def run(work: Path, redis: Any, faults: list[str], *, faulty: bool) -> tuple[float, Chaos]:
    chaos = Chaos(work, redis, faulty=faulty)
    chaos.done_kills = []
    chaos.notes = []
    chaos.counted = set()
    started = time.monotonic()
    try:
        for i, fault in enumerate(faults):
            chaos.build(i, fault if faulty else "none")
    finally:
        chaos.close()
    return time.monotonic() - started, chaos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", choices=STORES, default="redis")
    parser.add_argument("--builds", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--faults", default=",".join(FAULTS))
    args = parser.parse_args()
    chosen = [f for f in args.faults.split(",") if f]
    # No server to stop (sqlite, duckdb), or no broker that rides out many
    # restarts (kafka, see _chaos_stores.OnKafka); a tee's outage is its
    # secondary's, past which the primary decides. The log file is SQLite's
    # only copy of a log, so a cut file cannot be repaired there.
    not_here = {
        "sqlite": (*OUTAGES, "corrupt_log"),
        "duckdb": OUTAGES,
        "kafka": OUTAGES,
        "tee": ("store_deadline",),
    }.get(args.store, ())
    dropped = [f for f in chosen if f in not_here]
    chosen = [f for f in chosen if f not in dropped]
    if dropped:
        print(f"not drawn on {args.store}: {', '.join(dropped)}")
    unknown = set(chosen) - set(FAULTS)
    if unknown:
        parser.error(f"unknown faults: {', '.join(sorted(unknown))}; known: {', '.join(FAULTS)}")
    rng = random.Random(args.seed)
    faults = [rng.choice(chosen) for _ in range(args.builds)]
    work = Path(tempfile.mkdtemp(prefix="sauci-chaos-"))
    try:
        results = {}
        for name, faulty in (("bare", False), ("chaos", True)):
            (work / name).mkdir()
            server = store_server(args.store, work / name)
            server.start()
            try:
                results[name] = run(work / name, server, faults, faulty=faulty)
            finally:
                server.close()
        bare_s, bare = results["bare"]
        chaos_s, chaos = results["chaos"]
        print(
            f"store: {args.store}; builds: {args.builds} (seed {args.seed}); faults drawn: ", end=""
        )
        print(", ".join(f"{f} {faults.count(f)}" for f in chosen))
        print(f"{'':12} {'lost':>5} {'wrong':>6} {'dups':>5} {'left':>5} {'seconds':>8}")
        for name, seconds, c in (("bare", bare_s, bare), ("chaos", chaos_s, chaos)):
            n = c.counts
            print(
                f"{name:12} {n['lost']:5d} {n['wrong']:6d} {n['duplicates']:5d}"
                f" {n['leftovers']:5d} {seconds:8.1f}"
            )
        print(f"chaos / bare wall time: {chaos_s / bare_s:.2f}x")
        for note in bare.notes + chaos.notes:
            print(f"  {note}")
        print("time to recover after each fault (median / max, s):")
        for fault, times in sorted(chaos.recover.items()):
            print(
                f"  {fault:15} {statistics.median(times):6.2f} / {max(times):6.2f}  ({len(times)})"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
