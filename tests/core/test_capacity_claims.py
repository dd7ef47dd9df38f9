"""The in-process runner claims by declared cost within its capacity, and
records why a queued build waits."""

from __future__ import annotations

import threading

from sauci.core.capacity import CapacityClaims
from sauci.core.models import Build, BuildRequest, Status
from sauci.core.resources import Resources
from sauci.core.threaded import ThreadedRunner
from sauci.storage.memory import MemoryStore

GIB = 2**30


class Held:
    """A LocalRunner stand-in whose builds run until released."""

    def __init__(self, store: MemoryStore) -> None:
        self.name = "serve:test:1"
        self.store = store
        self.release: dict[int, threading.Event] = {}
        self.started: list[int] = []

    def run_build(self, build: Build) -> Build:
        self.started.append(build.id)
        self.release.setdefault(build.id, threading.Event()).wait(10)
        return self.store.update_build(build.id, status=Status.PASSED)

    def cancel(self, build_id: int, *, reason: str = "cancelled") -> None:
        self.release.setdefault(build_id, threading.Event()).set()


def test_builds_are_claimed_by_declared_cost_and_a_waiting_one_says_why() -> None:
    store = MemoryStore()
    costs = {"/heavy": Resources(cpus=2, memory=GIB), "/light": Resources(cpus=0.5, memory=GIB)}
    heavy = [
        store.create_build(BuildRequest(repo="/heavy", ref=f"refs/heads/h{i}")) for i in range(2)
    ]
    light = store.create_build(BuildRequest(repo="/light", ref="refs/heads/main"))
    local = Held(store)
    claims = CapacityClaims(
        store=store,
        name=local.name,
        capacity=Resources(cpus=2.5, memory=8 * GIB),
        max_builds=8,
        cost_of=lambda builds: [costs[b.repo] for b in builds],
        hold_after=60,
    )
    runner = ThreadedRunner(local=local, max_builds=8, claims=claims)  # type: ignore[arg-type]
    try:
        runner.tick()
        assert {heavy[0].id, light.id} == set(runner.running())
        waiting = store.get_build(heavy[1].id)
        assert (Status.QUEUED, "waiting: no worker with 2 CPUs free") == (
            waiting.status,
            waiting.reason,
        )
        assert {"cpus": 2.5, "memory": 8 * GIB, "cpus_used": 2.5, "memory_used": 2 * GIB} == (
            runner.room()
        )
        local.cancel(heavy[0].id)
        for _ in range(100):
            if heavy[0].id not in runner.running():
                break
            threading.Event().wait(0.05)
        runner.tick()
        assert heavy[1].id in runner.running()
        assert store.get_build(heavy[1].id).reason is None  # its waiting reason went
    finally:
        runner.stop(reason="test over", timeout=5)


def test_a_build_costs_what_its_pipeline_declares_at_its_commit(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess

    from sauci.app import git_sources
    from sauci.core.capacity import cost_from_source
    from sauci.core.config import Settings
    from sauci.core.resources import DEFAULT_RESOURCES

    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.name=T", "-c", "user.email=t@e", "-C", str(repo)]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    (repo / ".sauci.yml").write_text(
        "steps:\n  - {name: a, run: 'true', resources: {cpus: 1.5, memory: 3GiB}}\n"
    )
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], check=True)
    (repo / ".sauci.yml").write_text("steps: [not a step")
    subprocess.run([*git, "commit", "-q", "-am", "broken"], check=True)
    cost = cost_from_source(git_sources(Settings(data_dir=tmp_path / "data")))
    first = subprocess.run([*git, "rev-parse", "HEAD~1"], capture_output=True, text=True).stdout
    build = MemoryStore().create_build(BuildRequest(repo=str(repo), sha=first.strip()))
    assert [Resources(cpus=1.5, memory=3 * GIB)] == cost([build])
    broken = MemoryStore().create_build(BuildRequest(repo=str(repo), ref="refs/heads/main"))
    assert [DEFAULT_RESOURCES] == cost([broken])  # its runner reports the problem when it runs


def test_sauci_status_shows_the_server_capacity_and_use(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json
    import os
    import subprocess
    import sys
    import time

    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    room = {"cpus": 2.0, "memory": 4 * GIB, "cpus_used": 1.5, "memory_used": GIB}
    status = {"name": "serve:x:1", "pid": 1, "started_at": time.time(), "heartbeat": time.time()}
    (data / "server.json").write_text(json.dumps({**status, "capacity": room}))
    shown = subprocess.run(
        [sys.executable, "-m", "sauci", "status", "--color", "never"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SAUCI_DATA_DIR": str(data), "SAUCI_STORE": ""},
    )
    assert "capacity: 1.5/2 CPUs, 1.0/4.0 GiB in use" in shown.stdout, shown.stdout + shown.stderr


def test_builds_that_declare_nothing_run_max_builds_at_once_on_a_small_machine(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Four undeclared builds on two CPUs with --max-builds 4 all start: the
    default cost is one slot's share, not one CPU (which ran only two)."""
    import subprocess
    import types

    from sauci.app import git_sources
    from sauci.core.capacity import capacity_claims, slot_share
    from sauci.core.config import Settings

    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.name=T", "-c", "user.email=t@e", "-C", str(repo)]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    (repo / ".sauci.yml").write_text("steps:\n  - {name: a, run: 'true'}\n")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], check=True)
    store = MemoryStore()
    builds = [
        store.create_build(BuildRequest(repo=str(repo), ref=f"refs/heads/b{i}")) for i in range(5)
    ]
    options = types.SimpleNamespace(capacity=Resources(cpus=2, memory=8 * GIB), max_builds=4)
    claims = capacity_claims(
        store, "serve:test:1", options, git_sources(Settings(data_dir=tmp_path / "data"))
    )
    assert Resources(cpus=0.5, memory=2 * GIB) == slot_share(options.capacity, 4)
    assert [b.id for b in builds[:4]] == [b.id for b in claims.claim()]
    assert store.get_build(builds[4].id).reason == "waiting: every worker runs its --max-builds"


def test_a_build_s_end_tells_the_history_to_read_its_repository_again() -> None:
    from sauci.core.durations import DurationHistory

    now = [1000.0]
    store = MemoryStore(clock=lambda: now[0])
    history = DurationHistory(store, clock=lambda: now[0])
    claims = CapacityClaims(
        store=store,
        name="serve:test:1",
        capacity=Resources(cpus=2, memory=4 * GIB),
        max_builds=2,
        cost_of=lambda builds: [Resources(cpus=1, memory=GIB) for _ in builds],
        clock=lambda: now[0],
        history=history,
    )
    store.create_build(BuildRequest(repo="/r", ref="refs/heads/main"))
    (build,) = claims.claim()
    now[0] += 3.0
    store.finish_build(build.id, claims.name, status=Status.PASSED, reason=None, finished_at=now[0])
    claims.ended(build.id)
    assert {"/r": 3.0} == dict(history.forecast(["/r"]).durations)  # not 30 s later
