"""Free-text search over builds through the database's own index (migration 0006).

SQLite: the FTS5 table ``builds_search`` (trigram tokenizer) answers "which
builds have this text in their message, author, ref or sha" from its index;
the user's text goes in as one quoted FTS5 phrase (``"`` doubled), so FTS5
syntax in it (``NEAR(``, ``*``, ``OR``, a lone ``"``) is matched as literal
text, never parsed. A text shorter than 3 characters has no trigram: the
store scans with LIKE, as it does where the table is missing (an SQLite
without FTS5). PostgreSQL needs nothing here: its pg_trgm indexes serve the
``LOWER(col) LIKE`` the store already writes. DuckDB, memory, Redis and the
stream store scan.

Stdlib only: the embedded store imports it on ``sauci run``'s start-up path.
"""

from __future__ import annotations

from typing import Any

from sauci.storage._sql_contract import Transaction, fetchone

__all__ = [
    "CUSTOM_PLAN",
    "TRIGRAM",
    "fts_phrase",
    "has_search_table",
    "is_postgres",
    "is_sqlite",
    "search_source",
]

TRIGRAM = 3  # the shortest text the trigram index can find

_SQL_HAS_TABLE = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'builds_search'"


def is_sqlite(db: Any) -> bool:
    """True for the SQLite executors (both say their LIKE folds ASCII case)."""
    return bool(getattr(db, "like_folds_case", False))


# PostgreSQL plans a search for its pattern, not once for any: a generic plan
# (psycopg prepares a statement run 5 times) cannot know that '%rare text%'
# finds few rows, and walks every build by id instead of the trigram indexes.
CUSTOM_PLAN = "SET LOCAL plan_cache_mode = force_custom_plan"


def is_postgres(db: Any) -> bool:
    """True for the SQLAlchemy executor on PostgreSQL."""
    engine = getattr(db, "engine", None)
    return getattr(getattr(engine, "dialect", None), "name", "") == "postgresql"


def has_search_table(tx: Transaction) -> bool:
    """Whether this SQLite database has ``builds_search`` (0006 made it)."""
    return fetchone(tx, _SQL_HAS_TABLE) is not None


def fts_phrase(text: str) -> str | None:
    """``text`` as one literal FTS5 phrase, or None when too short for the trigram index."""
    if len(text) < TRIGRAM or "\x00" in text:
        return None
    return '"' + text.replace('"', '""') + '"'


def search_source(
    params: dict[str, Any], *, before_id: int | None = None, after_id: int | None = None
) -> tuple[str, str]:
    """The FROM clause of a builds query and the id to order it by. With a text
    for the index (``params["fts"]``), the matches drive the query, newest first
    and within the page's bounds, and each one's row is read by its id: a page
    stops after its last row, the counts read only the matches (a subquery that
    shows only ``sid``, so ``ref`` and the others name the builds' columns)."""
    if "fts" not in params:
        return "builds", "id"
    bounds = "".join(
        f" AND rowid {op} :{key}"
        for op, key, value in (("<", "before_id", before_id), (">", "after_id", after_id))
        if value is not None
    )
    match = f"SELECT rowid AS sid FROM builds_search WHERE builds_search MATCH :fts{bounds}"
    # CROSS JOIN keeps the matches the outer loop: SQLite's planner would
    # otherwise walk every build and ask the index about each one.
    return f"({match}) AS s CROSS JOIN builds ON id = s.sid", "s.sid"
