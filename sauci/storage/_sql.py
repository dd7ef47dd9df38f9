"""The SQL of every relational store, written once as plain text.

Queries use ``:name`` parameters, which both stdlib sqlite3 and SQLAlchemy's
``text()`` accept, and only SQL that SQLite (>= 3.24) and PostgreSQL share.
:class:`SQLStoreBase` implements the Store protocol on top of a tiny executor
(:class:`Executor`): SQLiteStore runs it on stdlib sqlite3 connections,
SQLAlchemyStore on an SQLAlchemy Engine. This module imports neither
SQLAlchemy nor alembic, so the embedded store starts fast.

This module holds the executor contract and SQLStoreBase with repositories,
steps, logs, test results, artifacts and events; builds are in
``_sql_builds`` and workers in ``_sql_workers`` (its mixins).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

import attrs

from sauci.core.models import Artifact, EndedBy, Event, Repo, Status, StepRun, TestCase
from sauci.exceptions import NotFoundError
from sauci.storage._closing import Closing
from sauci.storage._log_reads import LogReads, slice_chunks
from sauci.storage._sql_builds import UPDATABLE_BUILD_FIELDS, BuildsSQL, check_update_fields
from sauci.storage._sql_contract import (
    ConflictError,
    Executor,
    Row,
    Transaction,
    fetchone,
    to_json,
    upsert_sql,
)
from sauci.storage._sql_tests import TestsSQL
from sauci.storage._sql_workers import WorkersSQL

__all__ = [
    "SQL_APPEND_LOG",
    "UPDATABLE_BUILD_FIELDS",
    "ConflictError",
    "Executor",
    "SQLStoreBase",
    "Transaction",
    "check_update_fields",
]


_STEP_FIELDS = (
    "build_id",
    "name",
    "position",
    "status",
    "reason",
    "ended_by",
    "exit_code",
    "signal",
    "attempt",
    "allow_failure",
    "needs",
    "started_at",
    "finished_at",
    "log_bytes",
    "log_path",
)
_STEP_COLS = ", ".join(_STEP_FIELDS)
_STEP_FIELDS_AS_IS = tuple(
    f for f in _STEP_FIELDS if f not in ("status", "ended_by", "allow_failure", "needs")
)


def _step(row: Row) -> StepRun:
    return StepRun(
        **{name: row[name] for name in _STEP_FIELDS_AS_IS},
        status=Status(row["status"]),
        ended_by=None if row["ended_by"] is None else EndedBy(row["ended_by"]),
        allow_failure=bool(row["allow_failure"]),
        needs=tuple(json.loads(row["needs"])) if row["needs"] else (),
    )


_SQL_UPSERT_STEP = upsert_sql("steps", _STEP_FIELDS, keys=2)
_SQL_LIST_STEPS = f"SELECT {_STEP_COLS} FROM steps WHERE build_id = :build_id"

# Chunk seq+1 starts where chunk seq ends. One statement finds the last
# chunk, checks that the build exists (no builds row: nothing inserted) and
# inserts the next one. SQLite serializes writers; on PostgreSQL the
# executor's append_lock serializes appends to one log, and a collision on
# the primary key that slips through anyway is a ConflictError, retried.
SQL_APPEND_LOG = (
    'INSERT INTO log_chunks (build_id, step, seq, "offset", size, data)'
    ' SELECT b.id, :step, COALESCE(prev.seq + 1, 0), COALESCE(prev."offset" + prev.size, 0),'
    " :size, :data"
    " FROM builds b LEFT JOIN ("
    'SELECT seq, "offset", size FROM log_chunks'
    " WHERE build_id = :build_id AND step = :step ORDER BY seq DESC LIMIT 1"
    ") prev ON 1 = 1"
    " WHERE b.id = :build_id"
)
_SQL_LOG_SIZE = (
    'SELECT "offset" + size AS log_end FROM log_chunks WHERE build_id = :build_id AND step = :step'
    " ORDER BY seq DESC LIMIT 1"
)
# Seek through the (build_id, step, offset) index to the chunk that holds
# byte :start, then read forward; {end} bounds the range when there is a limit.
_SQL_READ_LOG = (
    'SELECT "offset", data FROM log_chunks WHERE build_id = :build_id AND step = :step'
    ' AND "offset" >= COALESCE((SELECT MAX("offset") FROM log_chunks'
    ' WHERE build_id = :build_id AND step = :step AND "offset" <= :start), 0)'
    "{end}"
    ' ORDER BY "offset"'
)

_SQL_ADD_TEST = (
    "INSERT INTO test_results (build_id, step, name, classname, status, duration, message,"
    " text, file) VALUES (:build_id, :step, :name, :classname, :status, :duration, :message,"
    " :text, :file)"
)
_SQL_LIST_TESTS = (
    "SELECT step, name, classname, status, duration, message, text, file"
    " FROM test_results WHERE build_id = :build_id ORDER BY id"
)
_SQL_ADD_ARTIFACT = (
    "INSERT INTO artifacts (build_id, step, path, size, sha256)"
    " VALUES (:build_id, :step, :path, :size, :sha256)"
)
_SQL_LIST_ARTIFACTS = (
    "SELECT step, path, size, sha256 FROM artifacts WHERE build_id = :build_id ORDER BY id"
)
_SQL_UPSERT_REPO = upsert_sql("repos", ("id", "location", "hook", "poll_interval", "added_at"))
_SQL_RECORD_DELIVERY = (
    "INSERT INTO deliveries (id, at) VALUES (:id, :at) ON CONFLICT (id) DO NOTHING"
)
_SQL_ADD_EVENT = (
    "INSERT INTO events (kind, at, build_id, actor, data)"
    " VALUES (:kind, :at, :build_id, :actor, :data)"
)


class SQLStoreBase(BuildsSQL, TestsSQL, WorkersSQL, LogReads, Closing):
    """The Store protocol in portable SQL; subclasses set ``self._db``.

    Each write runs in one write transaction; each read is a single
    statement (one snapshot).
    """

    capabilities: frozenset[str] = frozenset({"atomic_claim", "analytics", "durable"})

    _db: Executor
    # Retries of an append that lost a race for the next chunk number (two
    # appends to one step's log at once, on a back end without append_lock).
    _APPEND_RETRIES = 5

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock

    def _tx(self, what: str, *, write: bool = False) -> AbstractContextManager[Transaction]:
        return self._db.transaction(what, write=write)

    def _open(self, db: Executor, migrate: bool) -> None:
        """Take ``db`` and bring its schema up to date; close it if that fails."""
        self._db = db
        try:
            self._ensure_schema(migrate)
        except BaseException:
            db.close()
            raise

    def _ensure_schema(self, migrate: bool) -> None:
        """Create or migrate the tables (or only check them: ``migrate=False``)."""
        raise NotImplementedError

    # registered repositories and webhook deliveries

    def save_repo(self, repo: Repo) -> Repo:
        params = attrs.asdict(repo)
        with self._tx(f"save repo {repo.id}", write=True) as tx:
            tx.execute(_SQL_UPSERT_REPO, params)
        return repo

    def list_registered_repos(self) -> list[Repo]:
        with self._tx("list registered repos") as tx:
            rows = tx.fetchall("SELECT id, location, hook, poll_interval, added_at FROM repos")
        repos = [Repo(**r) for r in rows]
        return sorted(repos, key=lambda r: r.id)  # by code point: collations differ

    def delete_repo(self, repo_id: str) -> None:
        with self._tx(f"delete repo {repo_id}", write=True) as tx:
            tx.execute("DELETE FROM repos WHERE id = :id", {"id": repo_id})

    def record_delivery(self, delivery_id: str) -> bool:
        params = {"id": delivery_id, "at": self._clock()}
        # One statement, so two servers handed the same delivery at once
        # cannot both see it as new.
        with self._tx("record webhook delivery", write=True) as tx:
            inserted = tx.execute(_SQL_RECORD_DELIVERY, params)
        return not inserted

    # steps

    def save_step(self, step: StepRun) -> StepRun:
        params = {
            "build_id": step.build_id,
            "name": step.name,
            "position": step.position,
            "status": Status(step.status).value,
            "reason": step.reason,
            "ended_by": None if step.ended_by is None else EndedBy(step.ended_by).value,
            "exit_code": step.exit_code,
            "signal": step.signal,
            "attempt": step.attempt,
            "allow_failure": bool(step.allow_failure),
            "needs": to_json(list(step.needs)),
            "started_at": step.started_at,
            "finished_at": step.finished_at,
            "log_bytes": step.log_bytes,
            "log_path": step.log_path,
        }
        with self._tx(f"save step {step.name!r} of build {step.build_id}", write=True) as tx:
            self._require_build(tx, step.build_id)
            tx.execute(_SQL_UPSERT_STEP, params)
        return step

    def list_steps(self, build_id: int) -> list[StepRun]:
        with self._tx(f"list steps of build {build_id}") as tx:
            rows = tx.fetchall(_SQL_LIST_STEPS, {"build_id": build_id})
        # Ordered here, ties by name in code-point order: collations differ.
        return sorted((_step(r) for r in rows), key=lambda s: (s.position, s.name))

    # logs

    def _check_append(self, tx: Transaction, build_id: int, step: str) -> None:
        """Raise to refuse an append, inside its transaction (a hook: SQLite's
        logs kept in files refuse chunks)."""

    def append_log(self, build_id: int, step: str, data: bytes) -> int:
        data = bytes(data)
        what = f"append to the log of step {step!r} of build {build_id}"
        if not data:
            with self._tx(what) as tx:
                self._require_build(tx, build_id)
                self._check_append(tx, build_id, step)
                return self._log_size(tx, build_id, step)
        params = {"build_id": build_id, "step": step, "size": len(data), "data": data}
        for attempt in range(1, self._APPEND_RETRIES + 1):
            try:
                with self._tx(what, write=True) as tx:
                    if self._db.append_lock:
                        tx.fetchall(self._db.append_lock, {"build_id": build_id, "step": step})
                    self._check_append(tx, build_id, step)
                    if self._db.returning:
                        sql = f'{SQL_APPEND_LOG} RETURNING "offset" + size AS log_end'
                        row = fetchone(tx, sql, params)
                        if row is None:
                            raise NotFoundError(f"build {build_id} not found")
                        return int(row["log_end"])
                    if not tx.execute(SQL_APPEND_LOG, params):
                        raise NotFoundError(f"build {build_id} not found")
                    return self._log_size(tx, build_id, step)
            except ConflictError:
                if attempt == self._APPEND_RETRIES:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _log_size(tx: Transaction, build_id: int, step: str) -> int:
        row = fetchone(tx, _SQL_LOG_SIZE, {"build_id": build_id, "step": step})
        return 0 if row is None else int(row["log_end"])

    def _read_log(self, build_id: int, step: str, offset: int, limit: int | None) -> bytes:
        params: dict[str, Any] = {"build_id": build_id, "step": step, "start": offset}
        end = ""
        if limit is not None:
            end = ' AND "offset" < :end'
            params["end"] = offset + limit
        with self._tx(f"read the log of step {step!r} of build {build_id}") as tx:
            rows = tx.fetchall(_SQL_READ_LOG.format(end=end), params)
        if not rows:
            return b""
        return slice_chunks(int(rows[0]["offset"]), (bytes(r["data"]) for r in rows), offset, limit)

    def log_size(self, build_id: int, step: str) -> int:
        with self._tx(f"get the log size of step {step!r} of build {build_id}") as tx:
            return self._log_size(tx, build_id, step)

    # test results, artifacts, events

    def _add_rows(
        self, what: str, table: str, sql: str, build_id: int, step: str, rows: list[dict[str, Any]]
    ) -> None:
        # The step's rows are replaced, in one transaction: a write sent again
        # after its answer was lost leaves one copy.
        with self._tx(f"add {what} of build {build_id}", write=True) as tx:
            self._require_build(tx, build_id)
            tx.execute(
                f"DELETE FROM {table} WHERE build_id = :build_id AND step = :step",
                {"build_id": build_id, "step": step},
            )
            if rows:
                tx.executemany(sql, rows)

    def add_test_results(self, build_id: int, step: str, cases: Sequence[TestCase]) -> None:
        key = {"build_id": build_id, "step": step}
        rows = [key | attrs.asdict(c) | {"duration": float(c.duration)} for c in cases]
        self._add_rows("test results", "test_results", _SQL_ADD_TEST, build_id, step, rows)

    def list_test_results(self, build_id: int) -> list[tuple[str, TestCase]]:
        with self._tx(f"list test results of build {build_id}") as tx:
            rows = tx.fetchall(_SQL_LIST_TESTS, {"build_id": build_id})
        return [(r["step"], TestCase(**{k: v for k, v in r.items() if k != "step"})) for r in rows]

    def add_artifacts(self, build_id: int, step: str, artifacts: Sequence[Artifact]) -> None:
        key = {"build_id": build_id, "step": step}
        rows = [key | attrs.asdict(a) for a in artifacts]
        self._add_rows("artifacts", "artifacts", _SQL_ADD_ARTIFACT, build_id, step, rows)

    def list_artifacts(self, build_id: int) -> list[tuple[str, Artifact]]:
        with self._tx(f"list artifacts of build {build_id}") as tx:
            rows = tx.fetchall(_SQL_LIST_ARTIFACTS, {"build_id": build_id})
        return [
            (r["step"], Artifact(path=r["path"], size=r["size"], sha256=r["sha256"])) for r in rows
        ]

    def add_event(self, event: Event) -> None:
        params = {
            "kind": event.kind,
            "at": float(event.at),
            "build_id": event.build_id,
            "actor": event.actor,
            "data": to_json(dict(event.data)),
        }
        with self._tx(f"add event {event.kind!r}", write=True) as tx:
            tx.execute(_SQL_ADD_EVENT, params)

    def list_events(self, *, build_id: int | None = None, limit: int = 100) -> list[Event]:
        if limit < 0:
            raise ValueError(f"limit must be >= 0, not {limit}")
        params: dict[str, Any] = {"limit": limit}
        sql = "SELECT kind, at, build_id, actor, data FROM events"
        if build_id is not None:
            sql += " WHERE build_id = :build_id"
            params["build_id"] = build_id
        # Newest = most recently recorded: callers' clocks may disagree.
        sql += " ORDER BY id DESC LIMIT :limit"
        with self._tx("list events") as tx:
            rows = tx.fetchall(sql, params)
        return [Event(**{**r, "data": json.loads(r["data"])}) for r in rows]

    def close(self) -> None:
        """Release the connections; the store cannot be used afterwards."""
        self._db.close()
