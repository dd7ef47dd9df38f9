"""The namespace sandbox's per-build HOME and /tmp, its network policy, and the note
a step gets when it failed on a network error with the network off."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sauci import Pipeline, Status, Step, run_pipeline
from sauci.core.config import Settings
from sauci.core.models import StepResult
from sauci.sandbox._netnote import NetworkErrorWatch
from sauci.sandbox._scratch import scratch_path
from sauci.sandbox.namespace import NamespaceSandbox
from sauci.testing.sandbox import MemoryLog

pytestmark = pytest.mark.usefixtures("require_bwrap")

PREFIX = f"sauci-nss{os.getpid()}-"


@pytest.fixture
def area() -> Iterator[Path]:
    """A directory the step's unprivileged host uid can pass through (tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="sauci-nss-", dir="/tmp"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _ws(area: Path, name: str = "ws") -> Path:
    ws = area / name
    ws.mkdir()
    return ws


def _no_mount_points(out: str, ws: Path) -> str:
    """``ls`` output without the directory bwrap makes in /tmp to mount the workspace
    on (the tests' workspaces are under /tmp; a server's are not)."""
    top = ws.parts[2]
    return "".join(line for line in out.splitlines(keepends=True) if line.strip() != top)


def make(**kw: object) -> NamespaceSandbox:
    return NamespaceSandbox(grace=0.5, cgroup_prefix=PREFIX, **kw)  # type: ignore[arg-type]


def run(
    sandbox: NamespaceSandbox, script: str, workspace: Path, **step: object
) -> tuple[StepResult, str]:
    log = MemoryLog()
    result = sandbox.run(
        Step(name="t", run=script, **step),  # type: ignore[arg-type]
        workspace,
        log,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/root"},
        cancel=threading.Event(),
        label="nss-test",
    )
    return result, bytes(log.data).decode(errors="replace")


# -- HOME and /tmp -------------------------------------------------------------


def test_home_and_tmp_are_writable_shared_by_a_build_s_steps_and_removed_at_its_end(
    area: Path,
) -> None:
    sandbox, ws = make(), _ws(area)
    result, out = run(
        sandbox,
        'echo "$HOME"; mkdir -p ~/.cache && echo x > ~/.cache/x && echo y > /tmp/y',
        ws,
    )
    assert (0, "/home/sauci\n") == (result.exit_code, out)
    # The next step of the same build finds both.
    result, out = run(sandbox, "cat ~/.cache/x /tmp/y", ws)
    assert (0, "x\ny\n") == (result.exit_code, out)
    assert scratch_path(ws).is_dir()
    sandbox.build_ended(ws)
    assert not scratch_path(ws).exists()
    # The next build in the same workspace starts with empty ones.
    result, out = run(sandbox, "ls -A ~ /tmp", ws)
    assert (0, "/home/sauci:\n\n/tmp:\n") == (result.exit_code, _no_mount_points(out, ws))
    sandbox.close()
    assert not scratch_path(ws).exists()


def test_a_real_pipeline_makes_a_venv_and_writes_its_home_and_tmp(area: Path) -> None:
    """A whole build through the executor: HOME and /tmp writable, a venv with pip
    inside the workspace, and the scratch space gone when the build ends."""
    ws = _ws(area)
    steps = [
        Step(name="home", run="mkdir -p ~/.cache && echo x > ~/.cache/x && echo y > /tmp/y"),
        Step(name="venv", run="python3 -m venv .venv && .venv/bin/pip --version"),
        Step(name="check", run="cat ~/.cache/x /tmp/y"),
    ]
    outcome = run_pipeline(
        Pipeline(steps=steps),
        ws,
        sandbox=make(),
        settings=Settings(data_dir=area / "data", grace=0.5),
        secrets={},
    )
    assert [Status.PASSED] * 3 == [s.status for s in outcome.steps], [
        (s.name, s.reason) for s in outcome.steps
    ]
    assert (ws / ".venv" / "bin" / "pip").exists()
    assert not scratch_path(ws).exists()


def test_two_builds_do_not_see_each_other_s_tmp_or_home(area: Path) -> None:
    sandbox = make()
    first, second = _ws(area, "a"), _ws(area, "b")
    result, _ = run(sandbox, "echo secret > /tmp/from-a && echo secret > ~/from-a", first)
    assert 0 == result.exit_code
    result, out = run(sandbox, "ls -A /tmp ~; cat /tmp/from-a ~/from-a 2>&1 || true", second)
    assert 0 == result.exit_code, out
    assert "secret" not in out
    assert "from-a" not in out.replace("/tmp/from-a", "").replace("/from-a:", "")
    sandbox.close()


def test_the_host_s_tmp_and_root_stay_hidden(area: Path) -> None:
    """Hostile: a step looks for the host's /tmp, /root and HOME files."""
    marker = f"sauci-host-secret-{os.getpid()}"
    host_tmp = Path("/tmp") / marker
    host_tmp.write_text("HOSTSECRET")
    Path("/root").mkdir(exist_ok=True)
    host_root = Path("/root") / marker
    host_root.write_text("HOSTSECRET")
    try:
        script = (
            f"ls -A /tmp /root /home; cat /tmp/{marker} /root/{marker} 2>/dev/null || true; "
            "find / -xdev -name 'sauci-host-secret-*' 2>/dev/null || true"
        )
        result, out = run(make(), script, _ws(area))
    finally:
        host_tmp.unlink()
        host_root.unlink()
    assert 0 == result.exit_code
    assert "HOSTSECRET" not in out
    assert marker not in out
    listing = _no_mount_points(out, area / "ws")
    assert "/home:\nsauci\n\n/root:\n\n/tmp:\n" == listing, out


def test_what_a_step_leaves_in_its_scratch_space_cannot_reach_the_host(area: Path) -> None:
    """Hostile: symlinks out of HOME and unreadable directories in /tmp; removing the
    scratch space follows no link and leaves nothing behind."""
    outside = area / "outside"
    outside.mkdir()
    (outside / "keep").write_text("keep")
    sandbox, ws = make(), _ws(area)
    script = (
        f"ln -s {outside} ~/link && ln -s {outside}/keep /tmp/keep-link && "
        "mkdir -p /tmp/locked/deeper && touch /tmp/locked/deeper/f && chmod 000 /tmp/locked"
    )
    result, out = run(sandbox, script, ws)
    assert 0 == result.exit_code, out
    sandbox.build_ended(ws)
    assert not scratch_path(ws).exists()
    assert "keep" == (outside / "keep").read_text()


def test_a_scratch_dir_left_by_a_crash_is_replaced(area: Path) -> None:
    ws = _ws(area)
    stale = scratch_path(ws) / "tmp"
    stale.mkdir(parents=True)
    (stale / "old").write_text("from a crashed build")
    result, out = run(make(), "ls -A /tmp", ws)
    assert (0, "") == (result.exit_code, _no_mount_points(out, ws))


# -- network -------------------------------------------------------------------


def _interfaces(out: str) -> set[str]:
    return {line.split(":")[0].strip() for line in out.splitlines() if ":" in line}


class _Listener:
    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash for /dev/tcp")
def test_network_is_on_by_default_and_off_by_policy_or_pipeline(area: Path) -> None:
    listener = _Listener()
    probe = f"exec 3<>/dev/tcp/127.0.0.1/{listener.port} && echo CONNECTED"
    try:
        on, _ = run(make(), probe, _ws(area, "on"))
        policy_off, _ = run(make(network=False), probe, _ws(area, "off"))
        # The pipeline cannot widen the policy, even from a step made in Python.
        widened, _ = run(make(network=False), probe, _ws(area, "wide"), network=True)
        narrowed, _ = run(make(), probe, _ws(area, "narrow"), network=False)
    finally:
        listener.close()
    assert [0, 1, 1, 1] == [
        on.exit_code,
        policy_off.exit_code,
        widened.exit_code,
        narrowed.exit_code,
    ]


def test_off_means_only_loopback(area: Path) -> None:
    result, out = run(make(network=False), "cat /proc/net/dev", _ws(area))
    assert 0 == result.exit_code
    assert _interfaces(out) - {"Inter-|   Receive", " face |bytes"} <= {"lo"}


@pytest.mark.parametrize(
    ("policy", "step_network", "why"),
    [(False, None, "server policy"), (True, False, "pipeline network: false")],
)
def test_a_network_failure_with_the_network_off_says_so(
    area: Path, policy: bool, step_network: bool | None, why: str
) -> None:
    script = "python3 -c \"import socket; socket.getaddrinfo('pypi.org', 443)\""
    result, out = run(make(network=policy), script, _ws(area), network=step_network)
    assert 1 == result.exit_code, out
    assert f"network is off for this step ({why})" == result.reason, out


def test_no_note_when_the_failure_is_not_about_the_network(area: Path) -> None:
    result, _ = run(make(network=False), "echo 'assert 1 == 2'; exit 1", _ws(area))
    assert (1, None) == (result.exit_code, result.reason)


def test_no_note_when_the_step_passed_despite_a_network_message(area: Path) -> None:
    result, _ = run(make(network=False), "echo 'Could not resolve host: x'", _ws(area))
    assert (0, None) == (result.exit_code, result.reason)


def test_the_watch_sees_a_message_split_across_writes() -> None:
    log = MemoryLog()
    watch = NetworkErrorWatch(log)
    watch.write(b"x" * 70000 + b"pip: Failed to establish a new conn")
    assert not watch.seen
    watch.write(b"ection: [Errno 101] Network is unreach")
    watch.write(b"able\n")
    assert watch.seen
    assert 70000 + 35 + 38 + 5 == len(log.data)


def _pypi_reachable() -> bool:
    try:
        with socket.create_connection(("pypi.org", 443), timeout=5):
            return True
    except OSError:
        return False


def test_pip_downloads_a_real_package_from_pypi_with_the_default_network(area: Path) -> None:
    if not _pypi_reachable():
        pytest.skip("PyPI is not reachable from this machine")
    ws, sandbox = _ws(area), make()
    script = (
        "python3 -m venv .venv && .venv/bin/pip download --no-deps -d dl six==1.16.0 && "
        ".venv/bin/pip install six==1.16.0 && .venv/bin/python -c 'import six; print(six.__version__)'"
    )
    result, out = run(sandbox, script, ws, timeout=300)
    assert 0 == result.exit_code, out
    assert [p.name for p in (ws / "dl").iterdir()] == ["six-1.16.0-py2.py3-none-any.whl"]
    assert out.endswith("1.16.0\n")
    sandbox.close()
