"""Logs kept in files: the ``log_files`` capability of the embedded store.

A step's log is written to a file on disk anyway (the LogSink's). When the
store lives on the same machine, copying those bytes into the database as
well costs more than running the step (a 50 MB log: ~250 ms of SQLite blob
writes against ~110 ms for the command itself). So a store with this
capability records instead *where* the log is: a file, the offset in it where
the step's output starts, and how many bytes of it are the log so far. The
LogSink updates that size as it flushes (by time, every 100 ms by default),
and ``read_log`` / ``log_size`` serve that prefix of the file: the same
answers, live, as chunks would give. Stores on another host (PostgreSQL,
Redis, a stream) do not have the capability and keep receiving chunks.

A step's log is either chunks or a file, never both: ``record_log_file``
declines (returns False) when chunks exist, and ``append_log`` refuses a
step whose log is a file. Before the files of a build are deleted (retention),
``absorb_log_files`` copies them into chunks, so its logs stay readable.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from sauci.exceptions import StoreError
from sauci.storage._sql import SQL_APPEND_LOG
from sauci.storage._sql_contract import upsert_sql

if TYPE_CHECKING:
    from sauci.storage._sql_contract import Transaction

__all__ = ["LogFilesSQL"]

_SQL_GET = "SELECT path, start, size FROM log_files WHERE build_id = :build_id AND step = :step"
_SQL_HAS_CHUNKS = "SELECT 1 FROM log_chunks WHERE build_id = :build_id AND step = :step LIMIT 1"
_SQL_OF_BUILD = "SELECT step, path, start, size FROM log_files WHERE build_id = :build_id"
_SQL_FORGET = "DELETE FROM log_files WHERE build_id = :build_id AND step = :step"
_ABSORB_CHUNK = 1024 * 1024
_SQL_UPSERT = upsert_sql("log_files", ("build_id", "step", "path", "start", "size"), keys=2)


class LogFilesSQL:
    """A mixin before :class:`~sauci.storage._sql.SQLStoreBase`: record_log_file,
    and read_log / log_size / append_log that know about logs kept in files."""

    _tx: Any
    _require_build: Any

    def record_log_file(
        self, build_id: int, step: str, path: str, *, start: int = 0, size: int
    ) -> bool:
        """Record that the log of ``step`` is bytes ``start`` to ``start + size``
        of the file ``path`` (absolute) on this machine; call again as it grows.
        False, and nothing recorded, when the step already has chunks in the
        store (the caller then sends chunks). NotFoundError without the build."""
        if start < 0 or size < 0:
            raise ValueError(f"start and size must be >= 0, not {start} and {size}")
        params = {"build_id": build_id, "step": step}
        what = f"record the log file of step {step!r} of build {build_id}"
        with self._tx(what, write=True) as tx:
            self._require_build(tx, build_id)
            if tx.fetchall(_SQL_HAS_CHUNKS, params):
                return False
            path = os.path.abspath(path)
            tx.execute(_SQL_UPSERT, params | {"path": path, "start": start, "size": size})
        return True

    def absorb_log_files(self, build_id: int) -> int:
        """Copy the logs of a build that are kept in files into the store as
        chunks, so that they no longer need the files (call it before deleting
        them); returns the number of bytes copied. A file that cannot be read
        is a StoreError, and its log stays as it was."""
        copied = 0
        with self._tx(f"list the log files of build {build_id}") as tx:
            rows = tx.fetchall(_SQL_OF_BUILD, {"build_id": build_id})
        for row in rows:
            step, path, start, size = row["step"], row["path"], row["start"], row["size"]
            try:
                with open(path, "rb") as fh:
                    fh.seek(int(start))
                    data = fh.read(int(size))
            except OSError as exc:
                raise StoreError(f"absorb the log file {path} of build {build_id}: {exc}") from exc
            params = {"build_id": build_id, "step": step}
            with self._tx(f"absorb the log file {path} of build {build_id}", write=True) as tx:
                tx.execute(_SQL_FORGET, params)
                for offset in range(0, len(data), _ABSORB_CHUNK):
                    chunk = data[offset : offset + _ABSORB_CHUNK]
                    tx.execute(SQL_APPEND_LOG, params | {"size": len(chunk), "data": chunk})
            copied += len(data)
        return copied

    def _check_append(self, tx: Transaction, build_id: int, step: str) -> None:
        rows = tx.fetchall(_SQL_GET, {"build_id": build_id, "step": step})
        if rows:
            raise StoreError(
                f"the log of step {step!r} of build {build_id} is kept in the file "
                f"{rows[0]['path']}, not in chunks: it grows only through its writer"
            )

    def _log_file(self, build_id: int, step: str) -> tuple[str, int, int] | None:
        with self._tx(f"find the log file of step {step!r} of build {build_id}") as tx:
            rows = tx.fetchall(_SQL_GET, {"build_id": build_id, "step": step})
        if not rows:
            return None
        return rows[0]["path"], int(rows[0]["start"]), int(rows[0]["size"])

    def log_size(self, build_id: int, step: str) -> int:
        found = self._log_file(build_id, step)
        if found is None:
            return super().log_size(build_id, step)  # type: ignore[misc, no-any-return]
        return found[2]

    def _read_log(self, build_id: int, step: str, offset: int, limit: int | None) -> bytes:
        found = self._log_file(build_id, step)
        if found is None:
            return super()._read_log(build_id, step, offset, limit)  # type: ignore[misc, no-any-return]
        path, start, size = found
        count = size - offset if limit is None else min(limit, size - offset)
        if count <= 0:
            return b""
        try:
            with open(path, "rb") as fh:
                fh.seek(start + offset)
                return fh.read(count)
        except OSError as exc:
            raise StoreError(
                f"read the log of step {step!r} of build {build_id} from {path}: {exc}"
            ) from exc
