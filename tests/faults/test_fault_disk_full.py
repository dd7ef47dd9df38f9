"""A data dir that fills up in the middle of a step (a 1 MiB tmpfs, the store
elsewhere): the build is never "passed", no step stays running, the step's
processes end, and what the store has of the log is what the disk has."""

from __future__ import annotations

import subprocess
import time

import pytest

from sauci import BuildRequest, Pipeline, Status, Step
from sauci.app import LocalRunner
from sauci.core.config import Settings
from sauci.storage import open_store


@pytest.fixture
def small_data_dir(tmp_path):
    path = tmp_path / "data"
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture(params=["sqlite", "redis"])
def store(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url = request.getfixturevalue("persistent_redis").url
    store = open_store(url)
    yield store
    store.close()


def test_a_full_data_dir_errors_the_build_and_leaves_nothing(
    small_data_dir, store, tmp_path, sound
):
    marker = tmp_path / "step.pid"
    pipeline = Pipeline(
        steps=[
            Step(
                name="big",
                run=f"echo $$ > {marker}; head -c 3000000 /dev/zero | tr '\\0' x; sleep 30",
            ),
            Step(name="after", run="echo after"),
        ]
    )
    settings = Settings(data_dir=small_data_dir, grace=1.0)
    runner = LocalRunner(store=store, settings=settings, secrets={}, store_retry=5.0)
    ws = tmp_path / "ws"
    ws.mkdir()
    started = time.monotonic()
    outcome = runner.run_pipeline(pipeline, ws, BuildRequest(repo="/repo", event="push"))
    assert time.monotonic() - started < 25, "the step was not ended when its log could not be kept"
    build = store.get_build(outcome.build.id)
    assert build.status is Status.ERRORED, build.reason
    steps = {s.name: s for s in store.list_steps(build.id)}
    assert "No space left on device" in (steps["big"].reason or ""), steps["big"].reason
    pid = int(marker.read_text())
    sound(store, pids=[pid])
