"""The standalone server (``serve_ui``, as ``sauci serve`` runs it) over real HTTP:
the login throttle, the cookie flags and the security headers.

Each test starts tests/django/serve_helper.py in a process of its own (Django
is configured once per process) and talks to it with urllib.
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from sauci.contrib.django.project.serve import _proxy_options, project_settings
from sauci.core.config import Settings
from sauci.exceptions import ConfigError


def _start(tmp_path, repo, **env):
    (tmp_path / "d").mkdir(mode=0o700, exist_ok=True)
    proc = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).parent / "serve_helper.py"),
            str(tmp_path / "d"),
            str(repo),
            "right-password",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        # No build runs here (the repository has no pipeline): the local
        # sandbox spares the isolating sandbox's start-up probe.
        env={**os.environ, "SAUCI_LOG_LEVEL": "warning", "SAUCI_SANDBOX": "local", **env},
    )
    url = ""
    deadline = time.monotonic() + 60
    while not url and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("SAUCI_UI_URL "):
            url = line.split()[1]
    assert url.startswith("http://127.0.0.1:"), "the SauCI process did not start"
    return proc, url


@pytest.fixture
def served(tmp_path, git_repo):
    procs = []

    def start(**env):
        proc, url = _start(tmp_path, git_repo, **env)
        procs.append(proc)
        return url

    yield start
    for proc in procs:
        proc.stdin.close()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class _Browser:
    """A cookie-keeping client that does not follow redirects."""

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    def __init__(self, base):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), self._NoRedirect
        )

    def request(self, path, data=None):
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        req = urllib.request.Request(self.base + path.lstrip("/"), data=body)
        if body is not None:
            req.add_header("Referer", self.base)
        try:
            with self.opener.open(req, timeout=30) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers, exc.read()

    def login(self, password):
        _status, _, page = self.request("/accounts/login/")
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        form = {"username": "admin", "password": password, "csrfmiddlewaretoken": token}
        return self.request("/accounts/login/", form)


def _wait_for_admin(base):
    """Log in once with the right password: a login posted while the admin
    login is still being made (in a thread) waits for it."""
    status, _, _ = _Browser(base).login("right-password")
    assert 302 == status, "the admin login did not work"


def test_the_fifth_failed_login_is_locked_out_and_then_even_the_right_password(served):
    """django-axes against the real login view: 4 failures answer the form again, the 5th
    (AXES_FAILURE_LIMIT) answers 429, and so does the right password after it."""
    base = served()
    _wait_for_admin(base)  # a success resets the count (AXES_RESET_ON_SUCCESS)
    browser = _Browser(base)
    answers = [browser.login("wrong")[0] for _ in range(5)]
    assert [200, 200, 200, 200, 429] == answers
    assert 429 == browser.login("right-password")[0]
    # Another client from the same address is locked out too: the lock is on
    # (user name, address), not on the session.
    assert 429 == _Browser(base).login("right-password")[0]


def test_cookies_and_headers_of_the_standalone_server(served):
    """Plain HTTP (no SAUCI_SECURE_COOKIES): HttpOnly, SameSite=Lax, no Secure; the headers."""
    base = served()
    status, headers, _ = _Browser(base).request("/accounts/login/")
    assert 200 == status
    assert (
        "nosniff",
        "same-origin",
        "DENY",
    ) == (headers["X-Content-Type-Options"], headers["Referrer-Policy"], headers["X-Frame-Options"])
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    csrf = next(c for c in headers.get_all("Set-Cookie") if c.startswith("csrftoken="))
    assert ("httponly", "samesite=lax") == tuple(
        f for f in ("httponly", "samesite=lax") if f in csrf.lower()
    )
    assert "secure" not in csrf.lower().replace("samesite", "")
    _wait_for_admin(base)
    _, login_headers, _ = _Browser(base).login("right-password")
    session = next(c for c in login_headers.get_all("Set-Cookie") if c.startswith("sessionid="))
    assert {"httponly", "samesite=lax"} <= {p.strip().lower() for p in session.split(";")}


def test_secure_cookies_setting_marks_both_cookies_secure(served):
    """SAUCI_SECURE_COOKIES=1 (served behind TLS): the CSRF cookie is sent with Secure."""
    base = served(SAUCI_SECURE_COOKIES="1")
    _, headers, _ = _Browser(base).request("/accounts/login/")
    csrf = next(c for c in headers.get_all("Set-Cookie") if c.startswith("csrftoken="))
    assert "secure" in {p.strip().lower() for p in csrf.split(";")}


class TestProjectSettings:
    def test_secure_cookies_follow_the_variable(self, tmp_path, monkeypatch):
        monkeypatch.setenv("SAUCI_SECURE_COOKIES", "yes")
        found = project_settings(Settings(data_dir=tmp_path))
        assert (True, True, True, "Lax") == (
            found["SESSION_COOKIE_SECURE"],
            found["CSRF_COOKIE_SECURE"],
            found["SESSION_COOKIE_HTTPONLY"],
            found["SESSION_COOKIE_SAMESITE"],
        )

    def test_off_by_default(self, tmp_path, monkeypatch):
        monkeypatch.delenv("SAUCI_SECURE_COOKIES", raising=False)
        found = project_settings(Settings(data_dir=tmp_path))
        assert (False, False) == (found["SESSION_COOKIE_SECURE"], found["CSRF_COOKIE_SECURE"])

    def test_a_bad_value_is_a_clear_error(self, tmp_path, monkeypatch):
        monkeypatch.setenv("SAUCI_SECURE_COOKIES", "maybe")
        with pytest.raises(ConfigError, match="SAUCI_SECURE_COOKIES='maybe'"):
            project_settings(Settings(data_dir=tmp_path))

    def test_axes_and_the_error_log_are_wired(self, tmp_path):
        found = project_settings(Settings(data_dir=tmp_path))
        assert "axes" in found["INSTALLED_APPS"]
        assert "axes.middleware.AxesMiddleware" == found["MIDDLEWARE"][-1]
        assert "axes.backends.AxesStandaloneBackend" == found["AUTHENTICATION_BACKENDS"][0]
        assert "sauci.contrib.django.middleware.ErrorLogMiddleware" in found["MIDDLEWARE"]

    def test_forwarded_headers_are_trusted_only_from_the_named_proxy(self):
        assert {} == _proxy_options(None)
        options = _proxy_options("10.0.0.5")
        assert ("10.0.0.5", True) == (
            options["trusted_proxy"],
            options["clear_untrusted_proxy_headers"],
        )
        assert {"x-forwarded-for", "x-forwarded-proto"} == options["trusted_proxy_headers"]


def test_a_restart_with_nothing_to_migrate_serves_and_logs_in(tmp_path, git_repo):
    """The second start on one data dir skips `migrate` (nothing is due) and the
    UI still works: the login the first start made is there."""
    for start in ("first", "restart"):
        proc, url = _start(tmp_path, git_repo)
        try:
            if start == "first":
                _wait_for_admin(url)
            else:
                assert 302 == _Browser(url).login("right-password")[0]
        finally:
            proc.stdin.close()
            proc.wait(15)


def test_a_login_while_the_admin_login_is_being_made_waits_for_it(served):
    """The admin login is made beside the server's start; a login posted
    before it exists waits for it instead of failing (and counting as a
    failed attempt towards the lock-out)."""
    url = served(SAUCI_TEST_SLOW_ADMIN="1.5")
    status, headers, _ = _Browser(url).login("right-password")
    assert (302, "/") == (status, headers["Location"])


def test_a_server_stopped_while_the_admin_login_is_being_made_keeps_it(tmp_path, git_repo):
    """stop() waits for the login it is making (and whose password a first
    start prints): stopped in its first second, the server still keeps it."""
    import sqlite3

    proc, _ = _start(tmp_path, git_repo, SAUCI_TEST_SLOW_ADMIN="1.5")
    proc.stdin.close()  # serve_helper stops the UI and the server at once
    assert 0 == proc.wait(30)
    (database,) = (tmp_path / "d").rglob("ui.sqlite3")
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT username FROM auth_user WHERE is_superuser").fetchall()
    assert [("admin",)] == rows


def test_a_ui_that_cannot_take_its_port_makes_no_admin_login(tmp_path):
    """The port is taken: serve_ui says so, and leaves no login made with a
    password nobody was shown (the next start would not print one)."""
    import socket
    import sqlite3
    import textwrap

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    script = textwrap.dedent(
        f"""
        from sauci.contrib.django.project import serve_ui
        from sauci.core.config import Settings
        from sauci.exceptions import ConfigError
        try:
            serve_ui(Settings(data_dir={str(tmp_path / "d")!r}, sandbox="local"), port={port}, quiet=True)
        except ConfigError as exc:
            print("refused:", exc)
        """
    )
    try:
        out = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
        )
    finally:
        taken.close()
    assert "refused: cannot serve the web UI" in out.stdout, out.stderr
    (database,) = (tmp_path / "d").rglob("ui.sqlite3")
    with sqlite3.connect(database) as db:
        assert [] == db.execute("SELECT username FROM auth_user").fetchall()


def test_a_huge_body_is_refused_at_its_headers(served):
    """Hostile: an anonymous client announces a 1 GiB body. waitress took up
    to 1 GiB by default, spilled to a temporary file, before Django (and the
    webhook's own 1 MiB limit) saw the request: a connection each, a gigabyte
    of disk each. It answers 413 at the headers now, without waiting for the
    body."""
    import socket

    base = urllib.parse.urlsplit(served())
    with socket.create_connection((base.hostname, base.port), timeout=30) as sock:
        sock.sendall(
            b"POST /webhook/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1073741000\r\n\r\n{"
        )
        # Before: no answer at all until the whole gigabyte had been sent.
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
