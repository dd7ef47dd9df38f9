"""A real `sauci serve` with its web UI, attacked by pushes and over HTTP.

A pushed build full of hostile text (markup and escapes in its step names,
log, test report, artifact names and commit message; a colour code of 5,000
digits; a test's time of 1e400; a file name that is not UTF-8) is walked page
by page as the admin: no page answers 500 and none carries the markup raw. A
branch name no store can keep does not stop the pushes after it, and a signed
webhook resent under new delivery ids builds its commit once.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import http.cookiejar
import json
import re
import socket
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest
from polling import wait_for
from security_helpers import GIT, Origin, Served, clean_env

from sauci.core.models import Status

PASSWORD = "admin-pw-for-the-walk"
SECRET = "webhook-s3cret"

PIPELINE = r"""steps:
  "<script>alert('step')</script> é☃":
    run: |
      printf '\033[%sm colour\n' "$(head -c 5000 /dev/zero | tr '\0' 9)"
      printf '<img src=x onerror=alert(1)>\n'
      printf '\033]8;;javascript:alert(2)\033\\link\033]8;;\033\\\n'
      printf '\377\376 not utf-8\n'
      printf 'Error: the first error\n'
      mkdir -p out
      echo a > "out/<img src=x onerror=alert(6)>.txt"
      echo b > "out/$(printf '\377')"
      cat > report.xml <<'EOF'
      <testsuite name="&lt;script&gt;alert(3)&lt;/script&gt;"><testcase name="&lt;img src=x onerror=alert(4)&gt;" time="1e400"><failure message="&lt;b&gt;x&lt;/b&gt;">&lt;script&gt;alert(5)&lt;/script&gt;</failure></testcase></testsuite>
      EOF
      exit 1
    artifacts: out
    junit: report.xml
  second:
    run: echo second
"""
# What no page may hold: each is written escaped, or not at all.
RAW = [b"<script>alert", b"<img src=x", b"<b>x</b>", b'href="javascript:']


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServedUI(Served):
    """``sauci serve`` with its web UI on a free port, local steps, a webhook secret."""

    def start(self) -> None:
        self.port = _free_port()
        argv = [sys.executable, "-m", "sauci", "serve", "--repo", str(self.repo)]
        argv += ["--data-dir", str(self.data), "--sandbox", "local", "--port", str(self.port)]
        argv += ["--admin-password", PASSWORD, *self.args]
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=self.env
        )
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(b"sauci: web UI on"):
                return
        raise AssertionError(f"sauci serve did not start its UI (exit {self.proc.wait()})")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


class Browser:
    """A logged-in visitor that does not follow redirects."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _NoRedirect
        )
        _, _, page = self.get("accounts/login/")
        found = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert found is not None
        form = {"username": "admin", "password": PASSWORD, "csrfmiddlewaretoken": found.group(1)}
        status, _, _ = self.get("accounts/login/", data=urllib.parse.urlencode(form).encode())
        assert 302 == status, "the admin login did not work"

    def get(
        self, path: str, *, data: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, str, bytes]:
        request = urllib.request.Request(self.base + path.lstrip("/"), data=data)
        for name, value in {"Referer": self.base, **(headers or {})}.items():
            request.add_header(name, value)
        try:
            with self.opener.open(request, timeout=120) as response:
                return response.status, response.headers.get("Content-Type", ""), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers.get("Content-Type", ""), exc.read()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServedUI, Origin]]:
    tmp = tmp_path_factory.mktemp("web")
    origin = Origin(tmp)
    data = tmp / "data"
    server = ServedUI(data, origin.bare, env=clean_env(SAUCI_WEBHOOK_SECRET=SECRET))
    try:
        yield server, origin
    finally:
        server.stop()


def test_every_page_of_a_hostile_build_answers_without_500_or_raw_markup(served):
    """Before: the log page was a 500 (int() of 5,000 digits), so was the tests
    page (int(inf)), and the step ended errored, its results lost, because
    the store refused the artifact name that is not UTF-8."""
    server, origin = served
    sha = origin.commit(PIPELINE, message="<script>alert('msg')</script>\x1b]0;title\x07 fix")
    origin.push("refs/heads/main")
    build = server.build_of(sha, timeout=120)
    browser = Browser(server.base)
    seen: set[str] = set()
    todo = ["", f"builds/{build.id}/"]
    failures = []
    while todo and len(seen) < 200:
        path = todo.pop(0)
        if path in seen:
            continue
        seen.add(path)
        status, kind, body = browser.get(path)
        if status >= 500:
            failures.append(f"{status} {path}")
        if "html" in kind:  # a raw log is text/plain (and nosniff): it is the step's own
            failures += [f"{raw!r} in {path}" for raw in RAW if raw in body]
            for href in re.findall(rb'href="(/[^"]*)"', body):
                link = html.unescape(href.decode()).split("#")[0].lstrip("/")
                if not link.startswith(("static", "accounts/logout")) and "log-stream" not in link:
                    todo.append(link)
    steps = list(server.step_statuses(build).values())
    assert ([], [Status.FAILED, Status.SKIPPED]) == (failures, steps)
    assert any(p.startswith(f"builds/{build.id}/log/") for p in seen)
    assert f"builds/{build.id}/tests/" in seen and f"builds/{build.id}/artifacts/" in seen


def test_a_branch_name_no_store_can_keep_does_not_stop_later_pushes(served):
    """Before: SQLite refused `bad\\xff` in every spool round, before the pushes
    after it, so nothing pushed afterwards was built."""
    server, origin = served
    sha = origin.commit("steps:\n  hi:\n    run: echo hi\n", message="ordinary")
    subprocess.run(
        [*GIT, "push", "-q", "-f", "origin", b"HEAD:refs/heads/bad\xff\xfe"],
        cwd=origin.work,
        check=True,
        capture_output=True,
    )
    origin.push("refs/heads/after")
    assert Status.PASSED is server.build_of(sha, "refs/heads/after", timeout=60).status


def test_a_signed_webhook_resent_under_new_delivery_ids_builds_once(served):
    """The delivery id is a header the signature does not cover."""
    server, origin = served
    sha = origin.commit("steps:\n  hi:\n    run: echo hook\n", message="by webhook")
    body = json.dumps(
        {
            "ref": "refs/heads/hooked",
            "before": "0" * 40,
            "after": sha,
            "repository": {"clone_url": str(origin.bare)},
            "head_commit": {"id": sha, "message": "by webhook"},
        }
    ).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    origin.push("refs/heads/elsewhere")  # the commit is in the repository, not on the ref
    browser = Browser(server.base)
    answers = []
    for n in range(3):
        status, _, reply = browser.get(
            "webhook/",
            data=body,
            headers={
                "Content-Type": "application/json",
                "X-GitHub-Event": "push",
                "X-GitHub-Delivery": f"replayed-{n}",
                "X-Hub-Signature-256": signature,
            },
        )
        answers.append((status, json.loads(reply)["message"].split(":")[0]))
    assert [(202, f"queued refs/heads/hooked at {sha[:12]}")] + [
        (200, "duplicate delivery ignored")
    ] * 2 == answers
    wait_for(lambda: server.build_of(sha, "refs/heads/hooked"), "the webhook's build", timeout=60)
    hooked = [b for b in server.store().list_builds(limit=50) if b.ref == "refs/heads/hooked"]
    assert 1 == len(hooked)
