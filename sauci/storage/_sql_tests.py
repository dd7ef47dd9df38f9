"""One page of a build's test results in portable SQL: filtered, failures first,
with the build's counts by status, so a 60k-test build's page reads 100 rows.

A mixin of :class:`sauci.storage._sql.SQLStoreBase`, kept apart so that
module stays readable.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from sauci.core.records import TestCase
from sauci.storage._sql_contract import like_pattern
from sauci.typing.store import TEST_STATUS_ORDER, TestPage, TestQuery, test_status_rank

if TYPE_CHECKING:
    from sauci.storage._sql_contract import Row, Transaction

__all__ = ["TestsSQL"]

_KNOWN = ", ".join(f"'{s}'" for s in TEST_STATUS_ORDER)
_COLS = "step, name, classname, status, duration, message, text, file"


def _where(query: TestQuery, params: dict[str, Any], *, folds_case: bool = False) -> str:
    clauses = ["build_id = :build_id"]
    for key in ("status", "name", "classname"):
        if getattr(query, key) is not None:
            clauses.append(f"{key} = :{key}")
            params[key] = getattr(query, key)
    if query.text:
        # LOWER on both sides: LIKE is case-sensitive on PostgreSQL and DuckDB.
        params["text"] = like_pattern(query.text)
        name, classname = (
            ("name", "classname") if folds_case else ("LOWER(name)", "LOWER(classname)")
        )
        clauses.append(f"({name} LIKE :text ESCAPE '\\' OR {classname} LIKE :text ESCAPE '\\')")
    return " AND ".join(clauses)


class TestsSQL:
    """page_test_results on the ``test_results`` table."""

    def _tx(self, what: str, *, write: bool = False) -> AbstractContextManager[Transaction]:
        raise NotImplementedError  # pragma: no cover - SQLStoreBase provides it

    def page_test_results(self, build_id: int, query: TestQuery) -> TestPage:
        params: dict[str, Any] = {"build_id": build_id}
        # An executor whose LIKE ignores case (SQLite's) says so: LOWER() costs.
        folds = bool(getattr(getattr(self, "_db", None), "like_folds_case", False))
        where = _where(query, params, folds_case=folds)
        counts_sql = "SELECT status, COUNT(*) AS n FROM test_results WHERE {} GROUP BY status"
        with self._tx(f"page test results of build {build_id}") as tx:
            counts = _counts(
                tx.fetchall(counts_sql.format("build_id = :build_id"), {"build_id": build_id})
            )
            if query.text:
                # A substring test reads every row of the build anyway: once,
                # for the matches' ids and statuses; then the page's rows by id.
                matching, rows = _by_text(tx, where, params, query.offset, query.limit)
            else:
                matching = counts
                if where != "build_id = :build_id":
                    matching = _counts(tx.fetchall(counts_sql.format(where), params))
                rows = _by_status(tx, where, params, matching, query.offset, query.limit)
        return TestPage(
            rows=tuple(
                (r["step"], TestCase(**{k: v for k, v in r.items() if k != "step"})) for r in rows
            ),
            matched=sum(matching.values()),
            counts=counts,
        )


def _counts(rows: list[Row]) -> dict[str, int]:
    return {r["status"]: int(r["n"]) for r in rows}


def _by_text(
    tx: Transaction, where: str, params: dict[str, Any], offset: int, limit: int
) -> tuple[dict[str, int], list[Row]]:
    found = tx.fetchall(f"SELECT id, status FROM test_results WHERE {where}", params)
    matching: dict[str, int] = {}
    for r in found:
        matching[r["status"]] = matching.get(r["status"], 0) + 1
    ranked = sorted(found, key=lambda r: (test_status_rank(r["status"]), r["id"]))
    ids = [r["id"] for r in ranked[offset : offset + limit]]
    if not ids:
        return matching, []
    names = {f"id{i}": v for i, v in enumerate(ids)}
    rows = tx.fetchall(
        f"SELECT id, {_COLS} FROM test_results WHERE id IN ({', '.join(':' + k for k in names)})",
        names,
    )
    by_id = {r["id"]: {k: v for k, v in r.items() if k != "id"} for r in rows}
    return matching, [by_id[i] for i in ids if i in by_id]


def _by_status(
    tx: Transaction,
    where: str,
    params: dict[str, Any],
    matching: dict[str, int],
    offset: int,
    limit: int,
) -> list[Row]:
    """The page, one status after another in rank order, each read in id order
    from the (build_id, status, id) index: no sort of the build's rows."""
    groups: list[tuple[str, int]] = [
        (f"status = '{s}'", matching.get(s, 0)) for s in TEST_STATUS_ORDER
    ]
    others = sum(n for s, n in matching.items() if s not in TEST_STATUS_ORDER)
    groups.append((f"status NOT IN ({_KNOWN})", others))
    rows: list[Row] = []
    for clause, count in groups:
        if len(rows) >= limit:
            break
        if offset >= count:
            offset -= count
            continue
        rows += tx.fetchall(
            f"SELECT {_COLS} FROM test_results WHERE {where} AND {clause}"
            " ORDER BY id LIMIT :limit OFFSET :offset",
            dict(params, limit=limit - len(rows), offset=offset),
        )
        offset = 0
    return rows
