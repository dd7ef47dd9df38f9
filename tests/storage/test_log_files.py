"""The embedded store's ``log_files`` capability: a step's log served from its
file on disk, and the LogSink that records it instead of copying the bytes."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from sauci.core.logsink import LogSink
from sauci.core.models import BuildRequest
from sauci.exceptions import NotFoundError, StoreError
from sauci.storage.memory import MemoryStore
from sauci.storage.sqlalchemy import SQLAlchemyStore
from sauci.storage.sqlite import SQLiteStore
from sauci.storage.tee import TeeStore


@pytest.fixture
def store(sqlite_path: Path) -> Any:
    s = SQLiteStore(sqlite_path)
    yield s
    s.close()


def _chunk_rows(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM log_chunks").fetchone()[0])


def test_read_log_serves_the_recorded_part_of_the_file(store: SQLiteStore, tmp_path: Path) -> None:
    data = random.Random(1).randbytes(5000)
    log = tmp_path / "step.log"
    log.write_bytes(b"older output" + data)
    build = store.create_build(BuildRequest(repo="r"))
    assert store.record_log_file(build.id, "test", str(log), start=12, size=3000)
    assert 3000 == store.log_size(build.id, "test")
    visible = data[:3000]  # only what the writer said is there, from its start
    assert visible == store.read_log(build.id, "test")
    rng = random.Random(2)
    for _ in range(50):
        offset, limit = rng.randrange(0, 3100), rng.choice([None, rng.randrange(0, 3100)])
        expected = visible[offset:] if limit is None else visible[offset : offset + limit]
        assert expected == store.read_log(build.id, "test", offset, limit)
    assert store.record_log_file(build.id, "test", str(log), start=12, size=5000)  # it grew
    assert data == store.read_log(build.id, "test")
    assert b"" == store.read_log(build.id, "other")  # other steps: chunks, none yet


def test_a_log_is_chunks_or_a_file_never_both(store: SQLiteStore, tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(b"from the file")
    build = store.create_build(BuildRequest(repo="r"))
    store.append_log(build.id, "chunked", b"in chunks")
    assert store.record_log_file(build.id, "chunked", str(log), size=13) is False
    assert b"in chunks" == store.read_log(build.id, "chunked")
    assert store.record_log_file(build.id, "filed", str(log), size=13) is True
    for data in (b"more", b""):
        with pytest.raises(StoreError, match="kept in the file"):
            store.append_log(build.id, "filed", data)
    assert b"from the file" == store.read_log(build.id, "filed")


def test_record_log_file_of_a_missing_build_raises_not_found(
    store: SQLiteStore, tmp_path: Path
) -> None:
    with pytest.raises(NotFoundError):
        store.record_log_file(987_654, "s", str(tmp_path / "x.log"), size=0)
    with pytest.raises(ValueError):
        store.record_log_file(1, "s", str(tmp_path / "x.log"), size=-1)


def test_a_missing_file_is_a_store_error_that_names_it(store: SQLiteStore, tmp_path: Path) -> None:
    build = store.create_build(BuildRequest(repo="r"))
    store.record_log_file(build.id, "s", str(tmp_path / "gone.log"), size=10)
    with pytest.raises(StoreError, match=r"gone\.log"):
        store.read_log(build.id, "s")


def test_absorbed_logs_survive_their_files(
    store: SQLiteStore, sqlite_path: Path, tmp_path: Path
) -> None:
    build = store.create_build(BuildRequest(repo="r"))
    big = random.Random(3).randbytes(2_500_000)  # more than one absorbed chunk
    (tmp_path / "a.log").write_bytes(big + b"not yet recorded")
    (tmp_path / "b.log").write_bytes(b"short")
    store.record_log_file(build.id, "a", str(tmp_path / "a.log"), size=len(big))
    store.record_log_file(build.id, "b", str(tmp_path / "b.log"), size=5)
    assert len(big) + 5 == store.absorb_log_files(build.id)
    (tmp_path / "a.log").unlink()
    (tmp_path / "b.log").unlink()
    assert (big, b"short") == (store.read_log(build.id, "a"), store.read_log(build.id, "b"))
    assert _chunk_rows(sqlite_path) == 4  # 3 chunks of at most 1 MiB, and 1
    assert len(big) + 3 == store.append_log(build.id, "a", b"end")  # chunks again
    assert 0 == store.absorb_log_files(build.id)


# The LogSink with the capability


def test_the_sink_records_its_file_instead_of_copying_the_bytes(
    store: SQLiteStore, sqlite_path: Path, tmp_path: Path
) -> None:
    build = store.create_build(BuildRequest(repo="r"))
    path = tmp_path / "logs" / "test.log"
    with LogSink(
        path, store=store, build_id=build.id, step="test", secrets=["s3cret"], flush_interval=0
    ) as sink:
        sink.write(b"token s3c")
        sink.write(b"ret here s3")
        # Live: what the sink has written is readable; only an end that may
        # begin a secret waits.
        assert b"token *** here " == store.read_log(build.id, "test")
        sink.write(b"x" * 100_000)
    assert path.read_bytes() == store.read_log(build.id, "test")
    assert len(path.read_bytes()) == store.log_size(build.id, "test")
    assert 0 == _chunk_rows(sqlite_path)


def test_a_silent_step_costs_no_store_write(
    store: SQLiteStore, sqlite_path: Path, tmp_path: Path
) -> None:
    build = store.create_build(BuildRequest(repo="r"))
    with LogSink(tmp_path / "quiet.log", store=store, build_id=build.id, step="s"):
        pass
    with sqlite3.connect(sqlite_path) as conn:
        assert [(0,)] == conn.execute("SELECT COUNT(*) FROM log_files").fetchall()
    assert (b"", 0) == (store.read_log(build.id, "s"), store.log_size(build.id, "s"))


def test_a_step_with_chunks_already_gets_chunks_from_the_sink(
    store: SQLiteStore, sqlite_path: Path, tmp_path: Path
) -> None:
    build = store.create_build(BuildRequest(repo="r"))
    store.append_log(build.id, "s", b"copied in before; ")
    path = tmp_path / "s.log"
    with LogSink(path, store=store, build_id=build.id, step="s", flush_interval=3600) as sink:
        sink.write(b"first part, ")
        sink.flush()  # the store declines the file: these bytes are sent from it
        sink.write(b"then chunks")
    assert b"copied in before; first part, then chunks" == store.read_log(build.id, "s")
    assert sink.store_error is None
    assert 3 == _chunk_rows(sqlite_path)


def test_the_sink_keeps_the_cap_through_the_file(store: SQLiteStore, tmp_path: Path) -> None:
    build = store.create_build(BuildRequest(repo="r"))
    path = tmp_path / "capped.log"
    path.write_bytes(b"an earlier run\n")  # the sink appends; the log starts after it
    with LogSink(path, store=store, build_id=build.id, step="s", limit=10) as sink:
        sink.write(b"0123456789abcdef")
    stored = store.read_log(build.id, "s")
    assert stored.startswith(b"0123456789\nsauci: log exceeded 10 bytes")
    assert path.read_bytes() == b"an earlier run\n" + stored


def test_stores_without_the_capability_still_receive_chunks(
    sqlite_path: Path, tmp_path: Path
) -> None:
    # A store that may be on another host (SQLAlchemyStore), and a tee whose
    # secondaries need the bytes, get chunks even when the primary is SQLite.
    remote = SQLAlchemyStore(f"sqlite:///{sqlite_path}")
    secondary = MemoryStore()
    tee = TeeStore(SQLiteStore(tmp_path / "primary.db"), [secondary])
    for target in (remote, tee):
        assert "log_files" not in target.capabilities
        build = target.create_build(BuildRequest(repo="r"))
        with LogSink(
            tmp_path / f"{id(target)}.log", store=target, build_id=build.id, step="s"
        ) as s:
            s.write(b"hello")
        assert b"hello" == target.read_log(build.id, "s")
    assert 1 == _chunk_rows(sqlite_path)
    assert b"hello" == secondary.read_log(1, "s")
    remote.close()
    tee.close()


def test_a_store_that_fails_to_record_the_file_keeps_the_disk_log(tmp_path: Path) -> None:
    class Failing:
        capabilities = frozenset({"log_files"})

        def record_log_file(self, *args: Any, **kw: Any) -> bool:
            raise StoreError("down")

    path = tmp_path / "s.log"
    with LogSink(path, store=Failing(), build_id=1, step="s") as sink:
        sink.write(b"kept")
    assert isinstance(sink.store_error, StoreError)
    assert b"kept" == path.read_bytes()
