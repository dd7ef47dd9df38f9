"""Builds in portable SQL: creating, claiming, updating and listing them, the
statistics over them. ``check_update_fields`` and ``UPDATABLE_BUILD_FIELDS``
(in :mod:`sauci.storage._fields`, which every store uses) stay importable
from here and from :mod:`sauci.storage._sql`.

A mixin of :class:`sauci.storage._sql.SQLStoreBase`. Stdlib and attrs models only: the embedded store
imports it on ``sauci run``'s start-up path.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any

from sauci.core.models import Build, BuildRequest, EndedBy, Status
from sauci.exceptions import NotFoundError, StoreError
from sauci.storage._fields import (
    UPDATABLE_BUILD_FIELDS,
    check_update_fields,
    finish_fields,
    request_fields,
)
from sauci.storage._sql_contract import (
    Executor,
    Row,
    Transaction,
    fetchone,
    like_pattern,
    to_json,
)
from sauci.storage._sql_search import (
    CUSTOM_PLAN,
    fts_phrase,
    has_search_table,
    is_postgres,
    is_sqlite,
    search_source,
)
from sauci.typing import BuildQuery

__all__ = ["UPDATABLE_BUILD_FIELDS", "BuildsSQL", "check_update_fields"]

_BUILD_COLS = (
    "id, repo, ref, sha, event, status, reason, priority, params, author, message, pusher,"
    " old_sha, queued_at, started_at, finished_at, claimed_by, reuse_from, cancel_requested,"
    " runs_on, attempt, heartbeat_at, uuid"
)


def _build(row: Row) -> Build:
    return Build(
        **{
            **row,
            "status": Status(row["status"]),
            "params": json.loads(row["params"]) if row["params"] else {},
            "runs_on": json.loads(row["runs_on"]) if row["runs_on"] else (),
        }
    )


def _value(v: Any) -> Any:
    # Enum members as their string value: drivers want plain str.
    return v.value if isinstance(v, Status | EndedBy) else v


_SQL_BUILD_EXISTS = "SELECT 1 FROM builds WHERE id = :build_id"

_SQL_INSERT_BUILD = (
    "INSERT INTO builds (repo, ref, sha, event, status, priority, params, author,"
    " message, pusher, old_sha, queued_at, reuse_from, runs_on, attempt, uuid)"
    " VALUES (:repo, :ref, :sha, :event, :status, :priority, :params, :author,"
    " :message, :pusher, :old_sha, :queued_at, :reuse_from, '[]', :attempt, :uuid)"
)

_SQL_GET_BUILD = f"SELECT {_BUILD_COLS} FROM builds WHERE id = :build_id"

_SQL_PICK_QUEUED = (
    "SELECT id FROM builds WHERE status = 'queued' ORDER BY priority DESC, id LIMIT 1{lock}"
)
# One statement: picking and taking the build cannot be split by another
# claimer. "AND status = 'queued'" makes a lost race change no row. The
# reason a queued build waited with goes in the same write.
_SQL_TAKE = (
    "UPDATE builds SET status = 'running', claimed_by = :worker, started_at = :now,"
    " heartbeat_at = :now, reason = NULL"
)
_SQL_CLAIM = f"{_SQL_TAKE} WHERE id = ({{pick}}) AND status = 'queued' RETURNING {_BUILD_COLS}"
# A claim by id, and the second half of a claim without RETURNING.
_SQL_CLAIM_ID = f"{_SQL_TAKE} WHERE id = :build_id AND status = 'queued'"
# Compare and set: only the owner of a running build may touch it. On
# PostgreSQL a concurrent writer of the row waits for the first one and then
# re-checks the WHERE against the committed row, so exactly one wins.
_SQL_OWNED = " WHERE id = :build_id AND status = 'running' AND claimed_by = :worker"
_SQL_HEARTBEAT = f"UPDATE builds SET heartbeat_at = :now{_SQL_OWNED}"
_SQL_FINISH = (
    f"UPDATE builds SET status = :status, reason = :reason, finished_at = :finished_at{_SQL_OWNED}"
)


class BuildsSQL:
    """The ``builds`` table: create, get, update, claim, heartbeat, finish and
    list builds, list_repos and build_stats."""

    _db: Executor
    _clock: Callable[[], float]
    _search_index: bool | None = None

    def _tx(self, what: str, *, write: bool = False) -> AbstractContextManager[Transaction]:
        raise NotImplementedError  # pragma: no cover - SQLStoreBase provides it

    @staticmethod
    def _require_build(tx: Transaction, build_id: int) -> None:
        if fetchone(tx, _SQL_BUILD_EXISTS, {"build_id": build_id}) is None:
            raise NotFoundError(f"build {build_id} not found")

    # builds

    def create_build(self, request: BuildRequest, *, status: Status = Status.QUEUED) -> Build:
        params = {
            **request_fields(request),
            "status": Status(status).value,
            "params": to_json(dict(request.params)),
            "queued_at": self._clock(),
        }
        with self._tx("create build", write=True) as tx:
            if self._db.returning:
                row = fetchone(tx, f"{_SQL_INSERT_BUILD} RETURNING {_BUILD_COLS}", params)
            else:
                tx.execute(_SQL_INSERT_BUILD, params)
                row = fetchone(tx, _SQL_GET_BUILD, {"build_id": tx.lastrowid})
        if row is None:  # the insert gave no row back: the driver failed us
            raise StoreError("create build: the new build could not be read back")
        return _build(row)

    def get_build(self, build_id: int) -> Build:
        with self._tx(f"get build {build_id}") as tx:
            row = fetchone(tx, _SQL_GET_BUILD, {"build_id": build_id})
        if row is None:
            raise NotFoundError(f"build {build_id} not found")
        return _build(row)

    def update_build(self, build_id: int, **changes: Any) -> Build:
        values = check_update_fields(changes)
        if not values:
            return self.get_build(build_id)
        params = {k: _value(v) for k, v in values.items()}
        if "runs_on" in params:
            params["runs_on"] = to_json(list(params["runs_on"]))
        params["build_id"] = build_id
        # Column names come from the whitelist above, never from the caller.
        sql = f"UPDATE builds SET {', '.join(f'{k} = :{k}' for k in values)} WHERE id = :build_id"
        with self._tx(f"update build {build_id}", write=True) as tx:
            if self._db.returning:
                row = fetchone(tx, f"{sql} RETURNING {_BUILD_COLS}", params)
            else:
                changed = tx.execute(sql, params)
                row = fetchone(tx, _SQL_GET_BUILD, params) if changed else None
        if row is None:
            raise NotFoundError(f"build {build_id} not found")
        return _build(row)

    def claim_build(self, worker: str, *, build_id: int | None = None) -> Build | None:
        params: dict[str, Any] = {"worker": worker, "now": self._clock()}
        pick = _SQL_PICK_QUEUED.format(lock=self._db.lock_clause)
        with self._tx("claim build", write=True) as tx:
            if build_id is not None:
                params["build_id"] = build_id
                return self._write_returning(tx, _SQL_CLAIM_ID, params)
            if self._db.returning:
                row = fetchone(tx, _SQL_CLAIM.format(pick=pick), params)
            else:
                # Pick, take and read back inside one write transaction
                # (SQLite's BEGIN IMMEDIATE makes it exclusive).
                row = None
                picked = fetchone(tx, pick)
                if picked is not None:
                    params["build_id"] = picked["id"]
                    if tx.execute(_SQL_CLAIM_ID, params):
                        row = fetchone(tx, _SQL_GET_BUILD, params)
        return None if row is None else _build(row)

    def _write_returning(self, tx: Transaction, sql: str, params: dict[str, Any]) -> Build | None:
        """Run an UPDATE of one build (by :build_id); the new row, or None when
        its WHERE matched nothing. One statement: the check and the change
        cannot be split by another writer."""
        if self._db.returning:
            row = fetchone(tx, f"{sql} RETURNING {_BUILD_COLS}", params)
        else:  # read back inside the same write transaction
            row = fetchone(tx, _SQL_GET_BUILD, params) if tx.execute(sql, params) else None
        return None if row is None else _build(row)

    def heartbeat_build(self, build_id: int, worker: str) -> bool:
        params = {"build_id": build_id, "worker": worker, "now": self._clock()}
        with self._tx(f"heartbeat build {build_id}", write=True) as tx:
            if tx.execute(_SQL_HEARTBEAT, params):
                return True
            self._require_build(tx, build_id)
        return False

    def finish_build(
        self, build_id: int, worker: str, *, status: Status, reason: str | None, finished_at: float
    ) -> Build | None:
        params = {
            "build_id": build_id,
            "worker": worker,
            **finish_fields(status, reason, finished_at),
        }
        with self._tx(f"finish build {build_id}", write=True) as tx:
            build = self._write_returning(tx, _SQL_FINISH, params)
            if build is None:
                self._require_build(tx, build_id)
        return build

    def list_builds(self, query: BuildQuery | None = None, /, **filters: Any) -> list[Build]:
        q = BuildQuery.of(query, **filters)
        where, params = self._build_where(q)
        if q.before_id is not None:
            where.append("id < :before_id")
            params["before_id"] = q.before_id
        if q.after_id is not None:
            where.append("id > :after_id")
            params["after_id"] = q.after_id
        params["limit"] = q.limit
        source, order = search_source(params, before_id=q.before_id, after_id=q.after_id)
        sql = f"SELECT {_BUILD_COLS} FROM {source}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        # A newer page is the builds nearest above after_id: read upwards.
        sql += f" ORDER BY {order} {'ASC' if q.after_id is not None else 'DESC'} LIMIT :limit"
        with self._tx("list builds") as tx:
            self._plan_for_text(tx, q)
            rows = tx.fetchall(sql, params)
        builds = [_build(r) for r in rows]
        return builds[::-1] if q.after_id is not None else builds

    def _build_where(self, q: BuildQuery) -> tuple[list[str], dict[str, Any]]:
        """The conditions of ``q``'s filters (not its page). Only the filters
        given become conditions: plans that use the indexes, and no untyped
        NULL parameters (PostgreSQL rejects those)."""
        params: dict[str, Any] = {}
        where = []
        for key in ("repo", "ref", "status", "event", "author"):
            value = getattr(q, key)
            if value is not None:
                where.append(f"{key} = :{key}")
                params[key] = _value(value)
        phrase = fts_phrase(q.text) if q.text and self._has_search() else None
        if q.text and "\x00" in q.text:
            # No build's text holds NUL (git ends a message there; PostgreSQL
            # refuses it; FTS5 and LIKE would read the text only up to it).
            where.append("1 = 0")
        elif phrase:
            params["fts"] = phrase  # the index answers it: search_source() reads it
        elif q.text:
            params["text"] = like_pattern(q.text)
            # SQLite's LIKE ignores ASCII case already; LOWER() costs a call a row.
            folds = bool(getattr(getattr(self, "_db", None), "like_folds_case", False))
            cols = ("message", "author", "ref", "sha")
            likes = [f"{c if folds else f'LOWER({c})'} LIKE :text ESCAPE '\\'" for c in cols]
            where.append("(" + " OR ".join(likes) + ")")
        return where, params

    def _plan_for_text(self, tx: Transaction, q: BuildQuery | None) -> None:
        if q is not None and q.text and is_postgres(getattr(self, "_db", None)):
            tx.execute(CUSTOM_PLAN)

    def _has_search(self) -> bool:
        """Whether an FTS5 index answers text searches here (SQLite at 0006); asked once."""
        found = getattr(self, "_search_index", None)
        if found is None:
            found = is_sqlite(getattr(self, "_db", None))
            if found:
                with self._tx("look for the search index") as tx:
                    found = has_search_table(tx)
            self._search_index = found
        return found

    def list_repos(self) -> list[str]:
        with self._tx("list repos") as tx:
            rows = tx.fetchall("SELECT DISTINCT repo FROM builds")
        # Sorted here, by code point: database collations differ.
        return sorted(r["repo"] for r in rows)

    # analytics

    def build_stats(
        self, *, repo: str | None = None, query: BuildQuery | None = None
    ) -> Mapping[str, Any]:
        conditions, params = self._build_where(query or BuildQuery())
        if repo is not None:
            conditions.append("repo = :repo_")
            params["repo_"] = repo
        where = " WHERE " + " AND ".join(conditions) if conditions else ""
        # One statement, so the counts and the mean come from one snapshot.
        timed = "finished_at IS NOT NULL AND started_at IS NOT NULL"
        sql = (
            "SELECT status, COUNT(*) AS builds,"
            f" SUM(CASE WHEN {timed} THEN finished_at - started_at END) AS seconds,"
            f" SUM(CASE WHEN {timed} THEN 1 ELSE 0 END) AS timed"
            f" FROM {search_source(params)[0]}{where} GROUP BY status"
        )
        with self._tx("compute build stats") as tx:
            self._plan_for_text(tx, query)
            rows = sorted(tx.fetchall(sql, params), key=lambda r: str(r["status"]))
        seconds = sum(float(r["seconds"]) for r in rows if r["seconds"] is not None)
        timed_count = sum(int(r["timed"]) for r in rows)
        return {
            "total": sum(int(r["builds"]) for r in rows),
            "by_status": {str(r["status"]): int(r["builds"]) for r in rows},
            "mean_duration": seconds / timed_count if timed_count else None,
        }
