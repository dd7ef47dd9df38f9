"""The fault suite: the real PostgreSQL and Redis servers the storage tests
start (their fixtures, reused), and :func:`assert_sound`, what every case
checks once its fault is over."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

from sauci.core.models import Status

_STORAGE = Path(__file__).parent.parent / "storage"
sys.path.insert(0, str(_STORAGE))

from redis_server import RedisServer, redis_server  # noqa: E402

_spec = importlib.util.spec_from_file_location("storage_fixtures", _STORAGE / "conftest.py")
assert _spec is not None and _spec.loader is not None
_storage = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_storage)
postgres_server = _storage.postgres_server
postgres_url = _storage.postgres_url
truncate_postgres = _storage.truncate_postgres
clean_postgres = _storage.clean_postgres

__all__ = [
    "RedisServer",
    "assert_sound",
    "clean_postgres",
    "persistent_redis",
    "postgres_server",
    "postgres_url",
    "redis_server",
    "truncate_postgres",
]


@pytest.fixture
def persistent_redis(redis_server, tmp_path):
    """A Redis server of this test's own that keeps its data across a restart,
    as a real one would."""
    server = RedisServer(redis_server.binary, persist_dir=str(tmp_path))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def assert_sound(store, *, pids=()) -> None:
    """After a fault: no build "passed" with missing data, no build or step left
    running, no duplicate build, no process left, and every byte of every log
    on disk also in the store."""
    builds = store.list_builds(limit=1000)
    uuids = [b.uuid for b in builds]
    assert len(uuids) == len(set(uuids)), f"duplicate builds: {uuids}"
    for build in builds:
        assert build.status.done, f"build {build.id} left {build.status.value}"
        for step in store.list_steps(build.id):
            assert step.status.done, f"step {step.name} of build {build.id} left running"
            path = Path(step.log_path) if step.log_path else None
            on_disk = path.read_bytes() if path is not None and path.exists() else b""
            stored = store.read_log(build.id, step.name)
            assert stored == on_disk, (
                f"build {build.id} ({build.status.value}) step {step.name}: "
                f"{len(stored)} bytes stored, {len(on_disk)} on disk"
            )
            if build.status is Status.PASSED:
                assert step.status in (Status.PASSED, Status.SKIPPED), step
    left = [pid for pid in pids if _alive(pid)]
    assert left == [], f"processes left: {left}"


@pytest.fixture
def sound():
    """:func:`assert_sound`, for the test modules (a conftest is not imported by name)."""
    return assert_sound
