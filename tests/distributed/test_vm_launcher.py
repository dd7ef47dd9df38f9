"""Workers on demand in VM guests (``launcher = "vm"``): a server with a broker
and no worker boots a guest of the VM sandbox when a build waits; the
``sauci worker`` in it (the server's own Python, over 9p) reaches Redis,
PostgreSQL and the repository's git daemon on the host's 127.0.0.1 through
10.0.2.2, runs the build and ends after its idle time. Under emulation here
(no usable KVM): slow (about 3 minutes here, a minute of it the idle time),
so it runs only with SAUCI_VM_LAUNCHER=1 (and then fails without QEMU).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from polling import wait_for
from served_repo import served_repo

from sauci.core.models import BuildRequest, Status
from sauci.core.scheduler import Scheduler

pytestmark = pytest.mark.slow


def test_store_broker_and_git_urls_are_rewritten_to_the_host_as_the_guest_sees_it(tmp_path):
    from sauci.core.config import Settings
    from sauci.distributed._vm_launcher import VmLauncher, guest_urls

    assert "redis://10.0.2.2:6379/0" == guest_urls("redis://127.0.0.1:6379/0")
    assert "postgresql://u:p@10.0.2.2:5432/s" == guest_urls("postgresql://u:p@localhost:5432/s")
    assert "redis://cache.example:6379/0" == guest_urls("redis://cache.example:6379/0")
    settings = Settings(
        data_dir=tmp_path,
        store="postgresql://u:p@127.0.0.1:5432/s",
        broker="redis://127.0.0.1:1/0",
        secrets_file=tmp_path / "secrets.toml",
    )
    env = VmLauncher(settings, sandbox=object()).environment("launched-x-1")
    assert ("postgresql://u:p@10.0.2.2:5432/s", "redis://10.0.2.2:1/0") == (
        env["SAUCI_STORE"],
        env["SAUCI_BROKER"],
    )
    assert "SAUCI_SECRETS_FILE" not in env  # a host path
    assert "/workspace/data" == env["SAUCI_DATA_DIR"]
    rules = {
        env[f"GIT_CONFIG_VALUE_{i}"]: env[f"GIT_CONFIG_KEY_{i}"]
        for i in range(int(env["GIT_CONFIG_COUNT"]))
    }
    assert "url.git://10.0.2.2.insteadOf" == rules["git://127.0.0.1"]


@pytest.fixture
def git_daemon(tmp_path):
    with served_repo(
        tmp_path / "served", "steps:\n  hello:\n    run: echo built in $(uname -r)\n"
    ) as url:
        yield url


@pytest.mark.timeout(1200)
def test_a_build_with_no_worker_runs_in_a_booted_guest_that_then_ends(cluster, git_daemon):
    if not os.environ.get("SAUCI_VM_LAUNCHER"):
        pytest.skip("boots a worker in a VM under emulation (minutes): set SAUCI_VM_LAUNCHER=1")
    if shutil.which("qemu-system-x86_64") is None:
        pytest.fail("SAUCI_VM_LAUNCHER is set but qemu-system-x86_64 is not installed")
    from sauci.app.server import build_server
    from sauci.core.config import Settings
    from sauci.core.server import ServerOptions

    store = cluster.store()
    server = build_server(
        store=store,
        settings=Settings(
            data_dir=cluster.tmp / "server",
            store=cluster.pg.url(),
            broker=cluster.broker(),
            sandbox="local",
            lost_timeout=30.0,
            heartbeat_interval=2.0,
            launch_workers=1,
            launch_idle=60.0,  # the emulated worker is slow to be sent its first build
            launcher="vm",
            vm_allow_emulation=True,
        ),
        options=ServerOptions(poll_interval=3600),
    )
    server.start()
    cluster.servers.append(server)
    scaler = server.runner.autoscaler
    request = BuildRequest(repo=git_daemon, ref="refs/heads/main", event="push")
    build_id = Scheduler(store).enqueue(request).id

    def done():
        if scaler.failures:
            log = Path(cluster.tmp / "server" / "launched").glob("*.log")
            tails = [p.read_text()[-3000:] for p in log]
            pytest.fail(f"a launch failed: {scaler.last_failure}\n{tails}")
        build = store.get_build(build_id)
        return build if build.status.done else None

    build = wait_for(done, "the build to finish in the guest", timeout=600)
    assert Status.PASSED == build.status, build.reason
    assert build.claimed_by.startswith("launched-")
    assert "built in" in store.read_log(build_id, "hello").decode()
    wait_for(lambda: not scaler.launched, "the guest's worker to end when idle", timeout=300)
    assert (1, 0) == (scaler.started, scaler.failures)


class Refusing:
    """A sandbox whose guest does not come up, as VmSandbox names it."""

    def __init__(self):
        self.ended = []

    def run(self, step, workspace, log, *, env, cancel, label):
        from sauci.core.models import StepResult

        return StepResult(exit_code=None, reason="the guest did not come up within 90 s")

    def build_ended(self, workspace):
        self.ended.append(workspace)


def test_a_guest_that_does_not_come_up_is_a_failed_launch_named_and_counted(tmp_path):
    from sauci.core.config import Settings
    from sauci.distributed import Autoscaler
    from sauci.distributed._vm_launcher import VmLauncher
    from sauci.storage.memory import MemoryStore

    store = MemoryStore()
    store.create_build(BuildRequest(repo="r", ref="refs/heads/main", event="push"))
    sandbox = Refusing()
    launcher = VmLauncher(Settings(data_dir=tmp_path), sandbox=sandbox)
    scaler = Autoscaler(
        store=store,
        settings=Settings(data_dir=tmp_path),
        launcher=launcher,
        max_workers=1,
        live_workers=list,
    )
    scaler.tick()
    assert 1 == scaler.started
    wait_for(lambda: (scaler.tick(), scaler.failures)[1], "the failed launch to be counted")
    assert "ended before coming online: the guest did not come up within 90 s" in (
        scaler.last_failure or ""
    )
    # The server's Python was linked, not copied, into the guest's workspace.
    linked = tmp_path / "launched-vm" / scaler.last_failure.split(":")[0] / "py" / "bin"
    python = Path(os.path.realpath(sys.executable)).name
    assert (linked / python).stat().st_ino == Path(os.path.realpath(sys.executable)).stat().st_ino
    assert [linked.parent.parent] == sandbox.ended


def test_nothing_the_guest_could_write_is_linked_into_its_workspace(tmp_path, monkeypatch):
    """A link is the same file and the guest's workspace is writable: a file of
    QEMU's uid, or writable by group or others, is refused, and a server that
    is not root (QEMU would run as the server's own user) links nothing."""
    from sauci.distributed._vm_launcher import GUEST_UID, VmLauncher, _link_unwritable
    from sauci.exceptions import SauCIError

    if os.geteuid() != 0:
        pytest.skip("needs root to give a file to another uid")
    mine, theirs, loose = (tmp_path / n for n in ("mine", "theirs", "loose"))
    for path in (mine, theirs, loose):
        path.write_text("x")
        path.chmod(0o644)
    os.chown(theirs, GUEST_UID, GUEST_UID)
    loose.chmod(0o666)
    _link_unwritable(str(mine), str(tmp_path / "mine.link"))
    assert (tmp_path / "mine.link").stat().st_ino == mine.stat().st_ino
    for path in (theirs, loose):
        with pytest.raises(SauCIError, match="writable by the guest"):
            _link_unwritable(str(path), str(tmp_path / f"{path.name}.link"))
        assert not (tmp_path / f"{path.name}.link").exists()

    from sauci.core.config import Settings

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(SauCIError, match="the vm launcher needs root"):
        VmLauncher(Settings(data_dir=tmp_path / "data"), sandbox=Refusing())._prepare("w1")
    assert not (tmp_path / "data" / "launched-vm" / "w1" / "py").exists()
