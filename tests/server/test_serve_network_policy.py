"""`sauci serve --no-network` with its default namespace sandbox, end to end: the start
line says the policy, a pushed `network: true` is refused at file:line:col, and a step
failing on a network error says the network was off, with its last log lines shown by
`sauci show`."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from polling import wait_for

from sauci.core.models import Status
from sauci.storage import open_store

GIT = ["git", "-c", "user.name=Pusher", "-c", "user.email=p@example.com"]

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")

FAILS_ON_DNS = """\
steps:
  resolve:
    run: |
      echo '<script>alert("tail")</script>'
      python3 -c "import socket; socket.getaddrinfo('pypi.org', 443)"
"""

WIDENS = """\
steps:
  install:
    run: pip download six
    network: true
"""


def git(cwd: Path, *args: str) -> None:
    subprocess.run([*GIT, *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def area() -> Iterator[Path]:
    """A data dir the namespace sandbox's unprivileged uid can pass through."""
    path = Path(tempfile.mkdtemp(prefix="sauci-nsnet-"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _builds(data: Path, n: int):
    store = open_store(f"sqlite:///{data / 'sauci.db'}")
    try:
        builds = store.list_builds(limit=10)
        if len(builds) >= n and all(b.status.done for b in builds):
            return [(b, store.list_steps(b.id)) for b in reversed(builds)]
        return None
    finally:
        store.close()


def _pypi_reachable() -> bool:
    import socket

    try:
        with socket.create_connection(("pypi.org", 443), timeout=5):
            return True
    except OSError:
        return False


REAL = """\
steps:
  install:
    run: |
      python3 -m venv .venv
      .venv/bin/pip install six==1.16.0
      mkdir -p ~/.cache/sauci-test && echo kept > ~/.cache/sauci-test/x && echo kept > /tmp/y
  test:
    run: .venv/bin/python -c 'import six; print("six", six.__version__)' && cat ~/.cache/sauci-test/x /tmp/y
"""


def test_default_serve_runs_a_real_install_and_test_pipeline(area: Path, tmp_path: Path) -> None:
    """`sauci serve` with no flags: the namespace sandbox, the network on, a HOME and
    /tmp that the build's steps share: a venv and a pip install from PyPI work."""
    if not _pypi_reachable():
        pytest.skip("PyPI is not reachable from this machine")
    bare, work, data = tmp_path / "origin.git", tmp_path / "work", area / "data"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    git(tmp_path, "clone", "-q", str(bare), str(work))
    git(work, "checkout", "-q", "-b", "main")
    (work / ".sauci.yml").write_text(REAL)
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "real")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAUCI_")}
    argv = [sys.executable, "-m", "sauci", "serve", "--no-ui"]
    proc = subprocess.Popen(
        [*argv, "--repo", str(bare), "--data-dir", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**env, "SAUCI_GRACE": "1s"},
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(b"sauci serve: watching"):
                assert b"namespace sandbox, network on" in line, line
                break
        git(work, "push", "-q", "origin", "main")
        ((_, steps),) = wait_for(lambda: _builds(data, 1), timeout=300)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    logs = [Path(s.log_path or "").read_text() for s in steps]
    assert [Status.PASSED, Status.PASSED] == [s.status for s in steps], logs
    assert "six 1.16.0\nkept\nkept\n" == logs[1]
    assert not list((data / "workspaces").glob("**/*-scratch")), "scratch left behind"


def test_no_network_server_end_to_end(area: Path, tmp_path: Path) -> None:
    bare, work, data = tmp_path / "origin.git", tmp_path / "work", area / "data"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    git(tmp_path, "clone", "-q", str(bare), str(work))
    git(work, "checkout", "-q", "-b", "main")
    (work / ".sauci.yml").write_text(FAILS_ON_DNS)
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "dns")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAUCI_")}
    argv = [sys.executable, "-m", "sauci", "serve", "--no-ui", "--no-network"]
    proc = subprocess.Popen(
        [*argv, "--repo", str(bare), "--data-dir", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**env, "SAUCI_GRACE": "1s"},
    )
    try:
        assert proc.stdout is not None
        start = b""
        for line in proc.stdout:
            if line.startswith(b"sauci serve: watching"):
                start = line
                break
        text = start.decode()
        assert f"data in {data}" in text, text
        assert "steps run in the namespace sandbox, network off (server policy)" in text, text
        git(work, "push", "-q", "origin", "main")
        wait_for(lambda: _builds(data, 1), timeout=60)
        (work / ".sauci.yml").write_text(WIDENS)
        git(work, "commit", "-q", "-am", "widen")
        git(work, "push", "-q", "origin", "main")
        (dns, dns_steps), (widen, _) = wait_for(lambda: _builds(data, 2), timeout=60)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    (step,) = dns_steps
    assert Status.FAILED == step.status
    assert "exit code 1; network is off for this step (server policy)" == step.reason
    # Hostile: the pushed pipeline asked for the network the operator turned off.
    assert Status.ERRORED == widen.status
    assert ".sauci.yml:4:14" in (widen.reason or "")
    assert "network is off on this server" in (widen.reason or "")

    shown = subprocess.run(
        [sys.executable, "-m", "sauci", "show", str(dns.id), "--data-dir", str(data)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    assert "network is off for this step (server policy)" in shown
    assert "resolve: the last" in shown
    assert "socket.gaierror" in shown
    assert '<script>alert("tail")</script>' in shown  # a terminal shows text as text


def test_the_policy_event_names_the_sandbox_network_and_data_dir(area: Path) -> None:
    from sauci.core.config import Settings
    from sauci.sandbox.policy import server_sandboxes
    from sauci.testing.logs import capture_logs

    settings = Settings(data_dir=area / "data", network=False)
    with capture_logs() as logs:
        chosen = server_sandboxes(settings, cgroup_prefix="sauci-t-")
    (event,) = [e for e in logs if e["event"] == "sandbox_policy"]
    assert ("namespace", ["namespace"], False, str(area / "data")) == (
        event["default"],
        event["allowed"],
        event["network"],
        event["data_dir"],
    )
    assert chosen.default.network is False  # type: ignore[attr-defined]


def test_serve_and_worker_take_no_network() -> None:
    import argparse

    from sauci.app.flags import add_policy_options, policy_overrides

    parser = argparse.ArgumentParser()
    add_policy_options(parser)
    assert policy_overrides(parser.parse_args(["--no-network"]))["network"] is False
    assert policy_overrides(parser.parse_args([]))["network"] is None  # not given
