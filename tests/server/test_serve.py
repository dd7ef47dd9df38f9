"""Push to a repository and it builds: `sauci serve` with real git, real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from polling import wait_for

from sauci.app.server import build_server
from sauci.core.config import Settings
from sauci.core.models import Status
from sauci.core.server import Server, ServerOptions
from sauci.storage import open_store
from sauci.triggers import install_hook

GIT = ["git", "-c", "user.name=Pusher", "-c", "user.email=p@example.com"]


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run([*GIT, *args], cwd=cwd, capture_output=True, text=True)
    # git's own words in the failure (a push once failed in CI without them)
    assert done.returncode == 0, f"git {' '.join(args)}: exit {done.returncode}: {done.stderr}"
    return done.stdout


def make_origin(tmp: Path, pipeline: str) -> tuple[Path, Path]:
    """A bare repository and a clone of it with one commit on main (not pushed yet)."""
    bare = tmp / "origin.git"
    git(tmp, "init", "-q", "--bare", "-b", "main", str(bare))
    work = tmp / "work"
    git(tmp, "clone", "-q", str(bare), str(work))
    git(work, "checkout", "-q", "-b", "main")
    (work / ".sauci.yml").write_text(pipeline)
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "first")
    return bare, work


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", grace=1.0, sandbox="local")


def start_server(settings: Settings, repo: Path, **options) -> Server:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(settings.store_url)
    install_hook(repo, settings.data_dir / "spool", "receive")
    server = build_server(
        store=store, settings=settings, repos=[str(repo)], options=ServerOptions(**options)
    )
    server.start()
    return server


def finished(store, n: int):
    builds = store.list_builds(limit=500)
    done = [b for b in builds if b.status.done]
    return builds if len(builds) >= n and len(done) == len(builds) else None


def test_push_three_branches_builds_three(tmp_path, settings):
    bare, work = make_origin(tmp_path, "steps:\n  hello:\n    run: echo built $SAUCI_BRANCH\n")
    server = start_server(settings, bare)
    try:
        git(work, "push", "-q", "origin", "main")
        for branch in ("feature-a", "feature-b"):
            git(work, "checkout", "-q", "-b", branch)
            (work / f"{branch}.txt").write_text(branch)
            git(work, "add", ".")
            git(work, "commit", "-q", "-m", branch)
            git(work, "push", "-q", "origin", branch)
        builds = wait_for(lambda: finished(server.store, 3))
    finally:
        server.stop()
    assert sorted(b.branch for b in builds) == ["feature-a", "feature-b", "main"]
    assert {b.status for b in builds} == {Status.PASSED}
    assert {b.event for b in builds} == {"push"}
    for build in builds:
        step = server.store.list_steps(build.id)[0]
        log = Path(step.log_path)
        assert log.is_file()
        assert log.parent == settings.logs_dir / log.parent.parent.name / f"{build.id}-{build.uuid}"
        assert log.read_text() == f"built {build.branch}\n"


def test_push_while_server_is_down_is_built_at_start(tmp_path, settings):
    bare, work = make_origin(tmp_path, "steps:\n  s:\n    run: 'true'\n")
    settings.data_dir.mkdir(parents=True)
    install_hook(bare, settings.data_dir / "spool", "receive")
    git(work, "push", "-q", "origin", "main")  # nobody is listening
    server = start_server(settings, bare)
    try:
        builds = wait_for(lambda: finished(server.store, 1))
    finally:
        server.stop()
    assert [b.status for b in builds] == [Status.PASSED]


def test_burst_of_100_pushes_loses_none_and_supersedes(tmp_path, settings):
    bare, work = make_origin(tmp_path, "steps:\n  s:\n    run: sleep 0.2\n")
    settings.data_dir.mkdir(parents=True)
    install_hook(bare, settings.data_dir / "spool", "receive")
    shas = []
    for i in range(100):
        (work / "n.txt").write_text(str(i))
        git(work, "add", ".")
        git(work, "commit", "-q", "-m", f"c{i}")
        git(work, "push", "-q", "origin", "main")
        shas.append(git(work, "rev-parse", "HEAD").strip())
    assert len(list((settings.data_dir / "spool" / "new").iterdir())) == 100
    server = start_server(settings, bare, cancel_superseded=True)
    try:
        builds = wait_for(lambda: finished(server.store, 100), timeout=120)
    finally:
        server.stop()
    assert sorted(b.sha for b in builds) == sorted(shas)
    newest = next(b for b in builds if b.sha == shas[-1])
    assert newest.status is Status.PASSED
    others = [b for b in builds if b.sha != shas[-1]]
    assert all(b.status is Status.CANCELLED for b in others)
    assert all(b.reason.startswith("superseded by build") for b in others)


def test_rerun_failed_reuses_passed_steps(tmp_path, settings):
    pipeline = (
        "steps:\n  ok:\n    run: echo ran >> ../ran-ok\n    needs: []\n"
        "  flaky:\n    run: test -e ../fixed\n    needs: []\n"
    )
    bare, work = make_origin(tmp_path, pipeline)
    server = start_server(settings, bare)
    ws_parent = settings.workspaces_dir
    try:
        git(work, "push", "-q", "origin", "main")
        first = wait_for(lambda: finished(server.store, 1))[0]
        assert first.status is Status.FAILED
        (ws_parent / "fixed").write_text("")
        again = server.scheduler.rerun(first.id, failed_only=True, actor="tester")
        wait_for(lambda: server.store.get_build(again.id).status.done)
    finally:
        server.stop()
    final = server.store.get_build(again.id)
    steps = {s.name: s for s in server.store.list_steps(again.id)}
    assert final.status is Status.PASSED
    assert steps["ok"].reason == f"reused from build {first.id}"
    assert (ws_parent / "ran-ok").read_text() == "ran\n"  # the passed step did not run again
    assert [e.kind for e in server.store.list_events(build_id=again.id)] == ["build_rerun"]


def _sauci_serve(data: Path, repo: Path, *extra: str) -> subprocess.Popen:
    """`sauci serve` in the background, returned once it has installed its hook."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sauci",
            "serve",
            "--no-ui",
            "--repo",
            str(repo),
            "--data-dir",
            str(data),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        # The steps write markers into the test's directory: trusted, so local.
        env={**os.environ, "SAUCI_GRACE": "1s", "SAUCI_SANDBOX": "local"},
    )
    for line in proc.stdout:
        if line.startswith(b"sauci serve: watching"):
            return proc
    raise AssertionError(f"sauci serve did not start (exit {proc.wait()})")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_kill_9_during_a_build_then_restart_requeues_and_ends_leftovers(tmp_path):
    marker = tmp_path / "step.pid"
    pipeline = f"steps:\n  slow:\n    run: echo $$ > {marker}; sleep 300; echo never\n"
    bare, work = make_origin(tmp_path, pipeline)
    data = tmp_path / "data"
    serve = _sauci_serve(data, bare)
    try:
        git(work, "push", "-q", "origin", "main")
        wait_for(lambda: marker.exists() and marker.read_text().strip())
        step_pid = int(marker.read_text())
        serve.send_signal(signal.SIGKILL)
        serve.wait(10)
        assert _alive(step_pid), "the step should outlive a kill -9 of its server until the restart"
        marker.unlink()
        restarted = _sauci_serve(data, bare)
        try:
            wait_for(lambda: not _alive(step_pid), timeout=30)
            # the requeued build starts the step again
            wait_for(lambda: marker.exists() and marker.read_text().strip(), timeout=30)
            store = open_store(f"sqlite:///{data / 'sauci.db'}")
            builds = {b.id: b for b in store.list_builds()}
            assert builds[1].status is Status.ERRORED
            assert builds[1].reason == "SauCI restarted during the build; requeued as build 2"
            (left,) = store.list_steps(1)  # not "running" forever
            assert (left.status, left.reason) == (
                Status.ERRORED,
                "SauCI restarted during the build",
            )
            assert builds[2].status is Status.RUNNING
        finally:
            restarted.send_signal(signal.SIGTERM)
            restarted.wait(30)
        final = open_store(f"sqlite:///{data / 'sauci.db'}").get_build(2)
        assert final.status is Status.CANCELLED
        assert final.reason == "SauCI server stopped"
    finally:
        if serve.poll() is None:
            serve.kill()


def test_cancel_from_another_process_reaches_the_running_build(tmp_path):
    pipeline = "steps:\n  slow:\n    run: sleep 300\n"
    bare, work = make_origin(tmp_path, pipeline)
    data = tmp_path / "data"
    serve = _sauci_serve(data, bare)
    try:
        git(work, "push", "-q", "origin", "main")
        store = open_store(f"sqlite:///{data / 'sauci.db'}")
        wait_for(
            lambda: (
                [s for s in store.list_steps(1) if s.status is Status.RUNNING]
                if store.list_builds()
                else None
            )
        )
        result = subprocess.run(
            [sys.executable, "-m", "sauci", "cancel", "1", "--data-dir", str(data)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        build = wait_for(lambda: (b := store.get_build(1)).status.done and b, timeout=30)
        assert build.status is Status.CANCELLED
        assert build.reason.startswith("cancelled by")
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(30)


def test_cron_schedule_in_the_pipeline_queues_a_cron_build(tmp_path, settings):
    from datetime import UTC, datetime

    from sauci.triggers.due import CronTrigger

    pipeline = (
        "schedule:\n  - cron: '*/5 * * * *'\n    branch: main\nsteps:\n  s:\n    run: 'true'\n"
    )
    bare, work = make_origin(tmp_path, pipeline)
    git(work, "push", "-q", "origin", "main")
    settings.data_dir.mkdir(parents=True)
    install_hook(bare, settings.data_dir / "spool", "receive")  # no polls: cron alone
    server = build_server(
        store=open_store(settings.store_url), settings=settings, repos=[str(bare)]
    )
    (cron,) = [t for t in server.triggers if isinstance(t, CronTrigger)]
    assert cron.schedules() == [(str(bare), "*/5 * * * *", "main")]
    server.tick()  # reads the schedules; the first run is in the future
    key = (str(bare), "*/5 * * * *", "main")
    assert cron.next_times[key] > datetime.now(UTC)
    cron.next_times[key] = datetime(2000, 1, 1, tzinfo=UTC)  # as if that time had come
    server.tick()
    builds = server.store.list_builds()
    assert [(b.event, b.ref, b.priority) for b in builds] == [("cron", "refs/heads/main", 0)]
    assert cron.next_times[key] > datetime.now(UTC)


def test_step_slots_are_shared_and_weighted():
    from sauci.core.executor import SlotPool

    pool = SlotPool(4)
    assert pool.try_acquire(3)
    assert not pool.try_acquire(2)
    assert pool.try_acquire(1)
    assert pool.in_use == 4
    pool.release(3)
    assert not pool.try_acquire(10)  # needs the whole pool; one slot is still taken
    pool.release(1)
    assert pool.try_acquire(10)  # heavier than the pool: takes all of it, runs alone
    assert not pool.try_acquire(1)


def test_heavy_steps_of_two_builds_do_not_overlap(tmp_path, settings):
    """Two builds whose steps each weigh the whole pool run one step at a time."""
    step = "[ -e ../busy ] && exit 9; touch ../busy; sleep 0.3; rm ../busy"
    pipeline = f"steps:\n  heavy:\n    run: |\n      {step}\n    weight: 4\n"
    bare, work = make_origin(tmp_path, pipeline)
    settings.data_dir.mkdir(parents=True)
    install_hook(bare, settings.data_dir / "spool", "receive")
    git(work, "push", "-q", "origin", "main")
    git(work, "checkout", "-q", "-b", "other")
    (work / "x").write_text("x")
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "x")
    git(work, "push", "-q", "origin", "other")
    server = start_server(settings, bare, max_builds=2, step_slots=4)
    try:
        builds = wait_for(lambda: finished(server.store, 2))
    finally:
        server.stop()
    assert [(b.status, b.reason) for b in builds] == [(Status.PASSED, None), (Status.PASSED, None)]


def test_trigger_status_and_repo_commands(tmp_path):
    bare, work = make_origin(tmp_path, "steps:\n  s:\n    run: 'true'\n")
    git(work, "push", "-q", "origin", "main")
    data = tmp_path / "data"

    def sauci(*args):
        return subprocess.run(
            [sys.executable, "-m", "sauci", *args, "--data-dir", str(data), "--color", "never"],
            capture_output=True,
            text=True,
            timeout=60,
        )

    added = sauci("repo", "add", str(bare))
    assert added.returncode == 0, added.stderr
    assert "receive hook" in added.stdout
    assert (bare / "hooks" / "post-receive").exists()
    assert str(bare) in sauci("repo", "list").stdout
    queued = sauci("trigger", str(bare), "--ref", "main", "--param", "target=staging")
    assert queued.returncode == 0 and "queued build #1" in queued.stdout
    status = sauci("status")
    assert "server: not running" in status.stdout and "queue: 1 waiting" in status.stdout
    build = open_store(f"sqlite:///{data / 'sauci.db'}").get_build(1)
    assert (build.event, build.ref, dict(build.params), build.priority) == (
        "manual",
        "refs/heads/main",
        {"target": "staging"},
        20,
    )
    bad = sauci("trigger", str(bare), "--param", "oops")
    assert bad.returncode == 2 and "KEY=VALUE" in bad.stderr
    assert sauci("cancel", "1").returncode == 0
    assert "cancelled" in sauci("show", "1").stdout
    removed = sauci("repo", "remove", str(bare))
    assert removed.returncode == 0, removed.stderr
    assert not (bare / "hooks" / "post-receive").exists()


def test_the_same_commit_on_the_same_ref_is_queued_once(tmp_path):
    from sauci.core.models import BuildRequest
    from sauci.core.scheduler import Scheduler
    from sauci.storage.memory import MemoryStore

    scheduler = Scheduler(MemoryStore())
    request = BuildRequest(repo="/r", ref="refs/heads/main", sha="a" * 40, event="push")
    first = scheduler.enqueue(request)
    again = scheduler.enqueue(request)
    other_ref = scheduler.enqueue(
        BuildRequest(repo="/r", ref="refs/heads/dev", sha="a" * 40, event="push")
    )
    assert again.id == first.id
    assert other_ref.id != first.id
    assert first.priority == 10  # push
    assert scheduler.trigger("/r").priority == 20  # manual runs before pushes


def test_a_remote_url_is_built_from_a_cached_mirror(tmp_path, settings):
    from sauci.app import LocalRunner
    from sauci.core.models import BuildRequest

    bare, work = make_origin(
        tmp_path, "steps:\n  s:\n    run: test -f .sauci.yml && echo from-mirror\n"
    )
    git(work, "push", "-q", "origin", "main")
    settings.data_dir.mkdir(parents=True)
    store = open_store(settings.store_url)
    url = f"file://{bare}"
    store.create_build(BuildRequest(repo=url, ref="refs/heads/main", event="webhook"))
    runner = LocalRunner(store=store, settings=settings, secrets={})
    build = runner.run_next()
    assert (build.status, build.reason) == (Status.PASSED, None)
    assert build.sha == git(work, "rev-parse", "HEAD").strip()
    assert build.author.startswith("Pusher")
    assert list((settings.data_dir / "mirrors").iterdir()), "no mirror was kept"
    step = store.list_steps(build.id)[0]
    assert Path(step.log_path).read_text() == "from-mirror\n"


def test_a_repository_without_a_hook_is_polled(tmp_path, settings):
    bare, work = make_origin(tmp_path, "steps:\n  s:\n    run: 'true'\n")
    git(work, "push", "-q", "origin", "main")
    settings.data_dir.mkdir(parents=True)
    server = build_server(
        store=open_store(settings.store_url),
        settings=settings,
        repos=[str(bare)],
        options=ServerOptions(poll_interval=0.2),
    )
    server.start()
    try:
        first = wait_for(
            lambda: finished(server.store, 1)
        )  # the first poll builds the default branch
        (work / "more").write_text("x")
        git(work, "add", ".")
        git(work, "commit", "-q", "-m", "more")
        git(work, "push", "-q", "origin", "main")  # no hook: only the poller can see it
        builds = wait_for(lambda: finished(server.store, 2))
    finally:
        server.stop()
    assert [b.event for b in first] == ["push"]
    assert builds[0].sha == git(work, "rev-parse", "HEAD").strip()
    assert builds[0].pusher == "poller"


def test_schedules_in_sauci_toml(tmp_path):
    from sauci.core.config import load_settings
    from sauci.exceptions import ConfigError

    (tmp_path / "sauci.toml").write_text(
        '[[sauci.schedules]]\nrepo = "/srv/app.git"\ncron = "@daily"\n\n'
        '[[sauci.schedules]]\nrepo = "/srv/lib.git"\ncron = "*/10 * * * *"\nbranch = "dev"\n'
    )
    settings = load_settings(cwd=tmp_path, environ={})
    assert settings.schedules == (
        ("/srv/app.git", "@daily", "main"),
        ("/srv/lib.git", "*/10 * * * *", "dev"),
    )
    (tmp_path / "sauci.toml").write_text('[[sauci.schedules]]\nrepo = "/x"\ncron = "61 * * * *"\n')
    with pytest.raises(ConfigError, match="schedule 1"):
        load_settings(cwd=tmp_path, environ={})


def test_no_retry_interrupted_only_marks_the_build(tmp_path, settings):
    from sauci.core.models import BuildRequest

    settings.data_dir.mkdir(parents=True)
    store = open_store(settings.store_url)
    build = store.create_build(
        BuildRequest(repo="/r", ref="refs/heads/main", sha="b" * 40, event="push")
    )
    store.update_build(build.id, status=Status.RUNNING, claimed_by="serve:elsewhere-host:1")
    store.update_build(build.id, claimed_by=f"serve:{__import__('socket').gethostname()}:999999999")
    server = build_server(
        store=store, settings=settings, options=ServerOptions(retry_interrupted=False)
    )
    assert server.recover() == []
    after = store.get_build(build.id)
    assert (after.status, after.reason) == (Status.ERRORED, "SauCI restarted during the build")
    assert len(store.list_builds()) == 1


needs_bwrap = pytest.mark.skipif(
    __import__("shutil").which("bwrap") is None and not os.environ.get("SAUCI_REQUIRE_SANDBOXES"),
    reason="bubblewrap is not installed (set SAUCI_REQUIRE_SANDBOXES=1 to make this an error)",
)


@needs_bwrap
def test_serve_uses_the_namespace_sandbox_when_it_can(tmp_path):
    import shutil
    import tempfile

    from sauci.exceptions import ConfigError
    from sauci.sandbox.namespace import NamespaceSandbox
    from sauci.sandbox.policy import server_sandboxes

    # pytest's tmp_path is under a 0700 directory: a dropped uid cannot reach
    # it, and the server says so instead of running steps unisolated.
    if os.geteuid() == 0:
        hidden = Settings(data_dir=tmp_path / "data")
        with pytest.raises(ConfigError, match="cannot reach the workspace"):
            server_sandboxes(hidden, cgroup_prefix="sauci-t-")
    reachable = Path(tempfile.mkdtemp(prefix="sauci-ns-"))
    try:
        reachable.chmod(0o711)
        settings = Settings(data_dir=reachable / "data", grace=1.0)
        sandbox = server_sandboxes(settings, cgroup_prefix="sauci-t-").default
        assert isinstance(sandbox, NamespaceSandbox)
        bare, work = make_origin(
            tmp_path, "steps:\n  who:\n    run: id -u; touch /etc/escaped || echo refused\n"
        )
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        install_hook(bare, settings.data_dir / "spool", "receive")
        server = build_server(
            store=open_store(settings.store_url), settings=settings, repos=[str(bare)]
        )
        assert isinstance(server.runner.local.sandbox, NamespaceSandbox)
        server.start()
        try:
            git(work, "push", "-q", "origin", "main")
            builds = wait_for(lambda: finished(server.store, 1))
        finally:
            server.stop()
        assert [(b.status, b.reason) for b in builds] == [(Status.PASSED, None)]
        step = server.store.list_steps(builds[0].id)[0]
        assert Path(step.log_path).read_text().split()[0] == "1000"
        assert "refused" in Path(step.log_path).read_text()
        assert not Path("/etc/escaped").exists()
    finally:
        shutil.rmtree(reachable, ignore_errors=True)
