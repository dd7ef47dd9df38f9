"""The store stopped while two steps end (one with test results), then
``kill -9`` of ``sauci run`` while it waits for the store: the step end and
the test results it had written to its build's journal reach the store when
it is back and the next ``sauci run`` starts; the build is never "passed",
no test is recorded twice, no step is left running."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sauci.core.journal import pending_journals
from sauci.core.models import Status
from sauci.storage import open_store

GIT = ["git", "-c", "user.name=Tester", "-c", "user.email=t@example.com"]
JUNIT = (
    '<testsuite name="s"><testcase classname="c" name="ok"/>'
    '<testcase classname="c" name="bad"><failure message="no"/></testcase></testsuite>'
)


def _repo(path: Path, pipeline: str) -> Path:
    path.mkdir()
    (path / ".sauci.yml").write_text(pipeline)
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "c"]):
        subprocess.run([*GIT, *args], cwd=path, check=True, capture_output=True)
    return path


def _wait(predicate, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture(params=["postgresql", "redis"])
def server(request):
    """(store url, stop, start) of a real server that keeps its data across a restart."""
    if request.param == "postgresql":
        pg = request.getfixturevalue("postgres_server")
        return request.getfixturevalue("clean_postgres"), pg.stop, pg.start
    redis = request.getfixturevalue("persistent_redis")
    return redis.url, redis.stop, redis.start


def _journal_entries(data: Path) -> list[dict]:
    """Every whole entry of the pending journals (a line still being written is skipped)."""
    entries = []
    for path in pending_journals(data):
        for line in path.read_text(errors="replace").splitlines():
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue
    return entries


def _journaled(data: Path) -> bool:
    """The test step's results and the other step's passed end are in the journal
    (its start, also an entry named "other", is not enough: CI stop 30's run
    killed the process between the two, and the step rightly ended "runner lost")."""
    entries = _journal_entries(data)
    tests = any(e.get("op") == "tests" and e.get("name") == "test" for e in entries)
    other = any(
        e.get("op") == "step"
        and e.get("step", {}).get("name") == "other"
        and e.get("step", {}).get("status") == "passed"
        for e in entries
    )
    return tests and other


def test_kill_9_while_the_store_is_down_loses_no_step_end_nor_test(server, tmp_path, sound):
    url, stop, start = server
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAUCI_", "GIT_"))}
    env |= {"SAUCI_DATA_DIR": str(data), "SAUCI_STORE": url}
    go, ready = tmp_path / "go", tmp_path / "ready"
    wait_go = f"touch {ready}.$SAUCI_STEP; while [ ! -e {go} ]; do sleep 0.05; done"
    repo = _repo(
        tmp_path / "repo",
        "steps:\n"
        f"  test:\n    run: |\n      {wait_go}\n      echo '{JUNIT}' > report.xml\n"
        "    junit: [report.xml]\n"
        f"  other:\n    needs: []\n    run: |\n      {wait_go}\n      true\n",
    )
    run = subprocess.Popen(
        [sys.executable, "-m", "sauci", "run", str(repo)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait(
            lambda: Path(f"{ready}.test").exists() and Path(f"{ready}.other").exists(),
            "both steps to start",
        )
        stop()
        go.touch()
        # Both ends are written down (then retried against the stopped store).
        _wait(lambda: _journaled(data), "the journal to hold the test results and the step end")
        run.kill()
        run.wait(10)
    finally:
        if run.poll() is None:
            run.kill()
        start()
    assert len(pending_journals(data)) == 1

    quick = _repo(tmp_path / "quick", "steps:\n  s:\n    run: echo fine\n")
    second = subprocess.run(
        [sys.executable, "-m", "sauci", "run", str(quick), "--color", "never"],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert second.returncode == 0, second.stderr.decode()
    assert pending_journals(data) == []
    store = open_store(url)
    try:
        (killed,) = store.list_builds(repo=str(repo))
        assert killed.status is Status.ERRORED and "runner lost" in killed.reason
        steps = {s.name: s for s in store.list_steps(killed.id)}
        assert steps["other"].status is Status.PASSED  # its end, from the journal
        assert steps["test"].status is Status.ERRORED  # its end was never decided
        tests = sorted((step, c.name, c.status) for step, c in store.list_test_results(killed.id))
        assert tests == [("test", "bad", "failed"), ("test", "ok", "passed")]
        sound(store)
    finally:
        store.close()
