"""`sauci demo --serve`: the sample build, then its page in the web UI until Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from sauci.exceptions import ConfigError


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_demo_serves_its_build_until_ctrl_c(tmp_path):
    pytest.importorskip("django")
    pytest.importorskip("waitress")
    port = free_port()
    env = {**os.environ, "SAUCI_DATA_DIR": str(tmp_path / "data"), "NO_COLOR": "1"}
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "sauci", "demo", "--serve", "--port", str(port)),
            *("--dir", str(tmp_path / "demo"), "--color", "never"),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("the build's page:"):
                break
        page = lines[-1].split()[3]
        assert page == f"http://127.0.0.1:{port}/builds/1/", lines

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.build_opener(NoRedirect).open(page, timeout=10)
        assert 302 == answer.value.code  # the page is there, behind the login
        assert "/accounts/login/" in answer.value.headers["Location"]
        assert any("created the login 'admin'" in line for line in lines)
        proc.send_signal(signal.SIGINT)
        assert 0 == proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_without_the_web_ui_packages_the_demo_says_what_to_install(monkeypatch):
    import importlib.util

    from sauci.cli import _demo

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "waitress" else real(name, *a)
    )
    with pytest.raises(ConfigError, match=r"waitress missing.*pip install -e '\.\[django\]'"):
        _demo._check_ui_packages()


def test_a_taken_port_is_a_one_line_error(tmp_path):
    pytest.importorskip("django")
    pytest.importorskip("waitress")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "SAUCI_DATA_DIR": str(tmp_path / "data")}
        done = subprocess.run(
            [
                *(sys.executable, "-m", "sauci", "demo", "--serve", "--port", str(port)),
                *("--dir", str(tmp_path / "demo"), "--color", "never"),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert 2 == done.returncode
    assert f"sauci: error: cannot serve the web UI on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr
