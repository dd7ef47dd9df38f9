"""A `sauci serve`-like process (server, UI, install()) scraped over real HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from monitoring_helpers import value
from polling import wait_for

from sauci.core.models import BuildRequest
from sauci.core.scheduler import Scheduler
from sauci.storage import open_store

pytest.importorskip("prometheus_client")
pytest.importorskip("waitress")

TOKEN = "wired-token"
GIT = ["git", "-c", "user.name=T", "-c", "user.email=t@example.com"]


def make_repo(path: Path, command: str) -> str:
    path.mkdir()
    subprocess.run([*GIT, "init", "-q", "-b", "main", str(path)], check=True)
    (path / ".sauci.yml").write_text(f"steps:\n  only:\n    run: {command}\n")
    subprocess.run([*GIT, "add", "."], cwd=path, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", "pipeline"], cwd=path, check=True)
    return str(path)


def get(url: str, token: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_done(store, count: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        builds = store.list_builds(limit=100)
        if len(builds) >= count and all(b.status.done for b in builds):
            return
        time.sleep(0.1)
    raise AssertionError(f"builds did not finish: {store.list_builds(limit=100)}")


@pytest.mark.slow
def test_metrics_and_readiness_of_a_serving_process(tmp_path):
    good = make_repo(tmp_path / "good", "echo fine")
    bad = make_repo(tmp_path / "bad", "exit 3")
    data = tmp_path / "data"
    env = {**os.environ, "SAUCI_METRICS_TOKEN": TOKEN, "SAUCI_MIXPANEL_TOKEN": ""}
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).parent / "monitoring_serve.py"), str(data)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = ""
        for line in proc.stdout:  # warnings (the sandbox chosen) may come first
            if line.startswith("SAUCI_UI_URL"):
                break
        assert line.startswith("SAUCI_UI_URL"), line
        url = line.split()[1]
        store = open_store(f"sqlite:///{data / 'sauci.db'}")
        scheduler = Scheduler(store)
        for n in range(3):
            scheduler.enqueue(BuildRequest(repo=good, ref="refs/heads/main", event="manual"))
            wait_done(store, n + 1)
        scheduler.enqueue(BuildRequest(repo=bad, ref="refs/heads/main", event="manual"))
        wait_done(store, 4)

        assert 401 == get(url + "metrics")[0]

        def every_build_counted() -> str | None:
            status, text = get(url + "metrics", TOKEN)
            assert 200 == status
            # The server counts a build once its end is in the store: a
            # scrape may come between the two.
            return text if 4 == value(text, "sauci_build_duration_seconds_count") else None

        text = wait_for(every_build_counted, "the four builds' ends counted in /metrics")
        assert 3 == value(text, "sauci_builds_total", repo=good, status="passed")
        assert 1 == value(text, "sauci_builds_total", repo=bad, status="failed")
        assert 4 == value(text, "sauci_step_duration_seconds_count")
        assert 4 == value(text, "sauci_queue_wait_seconds_count")
        assert 0 == value(text, "sauci_queue_depth")
        assert (
            value(
                text,
                "sauci_store_operation_seconds_count",
                backend="sqlite",
                operation="claim_build",
            )
            >= 4
        )

        status, body = get(url + "healthz")
        assert (200, {"alive": True}) == (status, json.loads(body))
        status, body = get(url + "readyz")
        assert 200 == status, body
        store.close()
    finally:
        proc.stdin.close()
        proc.wait(30)
