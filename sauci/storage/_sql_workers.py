"""Worker records (``sauci worker`` processes) in portable SQL. The conversion
of a Worker to and from plain JSON values, which every store uses, is in
:mod:`sauci.storage._fields` (importable from here too).

A mixin of :class:`sauci.storage._sql.SQLStoreBase`, kept apart so that
module stays readable.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from sauci.storage._fields import WORKER_FIELDS, worker_from_dict, worker_to_dict
from sauci.storage._sql_contract import upsert_sql

if TYPE_CHECKING:
    from sauci.core.records import Worker
    from sauci.storage._sql_contract import Transaction

__all__ = ["WORKER_FIELDS", "WorkersSQL", "worker_from_dict", "worker_to_dict"]

_COLS = ", ".join(WORKER_FIELDS)

_SQL_UPSERT_WORKER = upsert_sql("workers", WORKER_FIELDS)
_SQL_LIST_WORKERS = f"SELECT {_COLS} FROM workers"


def _worker(row: Mapping[str, Any]) -> Worker:
    values = dict(row)
    values["labels"] = json.loads(values["labels"])
    values["running"] = json.loads(values["running"])
    return worker_from_dict(values)


class WorkersSQL:
    """save_worker, list_workers and delete_worker on the ``workers`` table."""

    def _tx(self, what: str, *, write: bool = False) -> AbstractContextManager[Transaction]:
        raise NotImplementedError  # pragma: no cover - SQLStoreBase provides it

    def save_worker(self, worker: Worker) -> Worker:
        params = worker_to_dict(worker)
        params["labels"] = json.dumps(params["labels"])
        params["running"] = json.dumps(params["running"])
        with self._tx(f"save worker {worker.name}", write=True) as tx:
            tx.execute(_SQL_UPSERT_WORKER, params)
        return worker

    def list_workers(self) -> list[Worker]:
        with self._tx("list workers") as tx:
            rows = tx.fetchall(_SQL_LIST_WORKERS)
        # Sorted here, by code point: database collations differ.
        return sorted((_worker(r) for r in rows), key=lambda w: w.name)

    def delete_worker(self, name: str) -> None:
        with self._tx(f"delete worker {name}", write=True) as tx:
            tx.execute("DELETE FROM workers WHERE name = :name", {"name": name})
