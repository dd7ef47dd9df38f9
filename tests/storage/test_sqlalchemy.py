"""SQLAlchemyStore on SQLite and on a PostgreSQL server started by the tests."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from sauci.core.models import BuildRequest, Status
from sauci.exceptions import StoreError
from sauci.storage._revision import HEAD
from sauci.storage.sqlalchemy import SQLAlchemyStore, normalize_url
from sauci.testing import StoreConformance

postgres = pytest.mark.postgres


class TestSQLAlchemyStoreOnSQLite(StoreConformance):
    @pytest.fixture
    def store(self, sqlite_path: Path) -> Iterator[SQLAlchemyStore]:
        s = SQLAlchemyStore(f"sqlite:///{sqlite_path}")
        yield s
        s.close()


@postgres
class TestSQLAlchemyStoreOnPostgres(StoreConformance):
    @pytest.fixture
    def store(self, clean_postgres: str) -> Iterator[SQLAlchemyStore]:
        s = SQLAlchemyStore(clean_postgres)
        yield s
        s.close()


def test_capabilities() -> None:
    assert frozenset({"atomic_claim", "analytics", "durable"}) == SQLAlchemyStore.capabilities


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg"),
        ("postgres://u@h/db", "postgresql+psycopg"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg"),
        ("sqlite:///x.db", "sqlite"),
    ],
)
def test_plain_postgresql_urls_mean_psycopg_3(url: str, driver: str) -> None:
    assert driver == normalize_url(url).drivername


def test_a_new_sqlite_database_is_migrated(tmp_path: Path) -> None:
    store = SQLAlchemyStore(f"sqlite:///{tmp_path / 'new.db'}")
    with store.engine.connect() as conn:
        assert HEAD == conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    store.close()


def test_a_given_engine_is_used_and_left_open(sqlite_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{sqlite_path}")
    store = SQLAlchemyStore(engine)
    build = store.create_build(BuildRequest(repo="r"))
    store.close()
    with engine.connect() as conn:  # still usable
        assert build.id == conn.execute(sa.text("SELECT id FROM builds")).scalar()
    engine.dispose()


def test_an_unreachable_database_is_a_store_error() -> None:
    with pytest.raises(StoreError, match=r"127\.0\.0\.1") as info:
        SQLAlchemyStore(
            "postgresql://nobody@127.0.0.1:9/nothing", connect_args={"connect_timeout": 2}
        )
    assert isinstance(info.value.__cause__, sa.exc.SQLAlchemyError)


def test_migrate_false_refuses_a_database_without_schema(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="schema revision None"):
        SQLAlchemyStore(f"sqlite:///{tmp_path / 'empty.db'}", migrate=False)


@postgres
def test_a_new_postgres_database_is_migrated_to_the_schema(fresh_postgres_database: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from sauci.storage.schema import include_name, metadata

    store = SQLAlchemyStore(fresh_postgres_database)
    with store.engine.connect() as conn:
        assert HEAD == MigrationContext.configure(conn).get_current_revision()
        assert [] == compare_metadata(
            MigrationContext.configure(conn, opts={"include_name": include_name}), metadata
        )
    store.close()


@postgres
def test_concurrent_first_opens_of_a_postgres_database(fresh_postgres_database: str) -> None:
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            SQLAlchemyStore(fresh_postgres_database).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [] == errors


@postgres
def test_several_stores_claim_each_build_once_on_postgres(clean_postgres: str) -> None:
    stores = [SQLAlchemyStore(clean_postgres, pool_size=3) for _ in range(4)]
    created = {stores[0].create_build(BuildRequest(repo="r", priority=i % 4)).id for i in range(80)}
    claimed: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(12)

    def claim(store: SQLAlchemyStore) -> None:
        barrier.wait()
        while (build := store.claim_build("w")) is not None:
            with lock:
                claimed.append(build.id)

    threads = [threading.Thread(target=claim, args=(s,)) for s in stores for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for s in stores:
        s.close()
    assert sorted(created) == sorted(claimed)


@postgres
def test_the_store_recovers_after_a_postgres_restart(postgres_server, clean_postgres: str) -> None:  # type: ignore[no-untyped-def]
    store = SQLAlchemyStore(clean_postgres)
    build = store.create_build(BuildRequest(repo="r"))
    postgres_server.stop()
    try:
        with pytest.raises(StoreError) as info:
            store.get_build(build.id)
        assert isinstance(info.value.__cause__, sa.exc.SQLAlchemyError)
    finally:
        postgres_server.start()
    assert build == store.get_build(build.id)  # pool_pre_ping replaced the dead connections
    assert store.create_build(BuildRequest(repo="r")).id > build.id
    store.close()


@postgres
def test_several_stores_claim_by_id_and_finish_each_build_once_on_postgres(
    clean_postgres: str,
) -> None:
    # Every thread tries to claim every build by id, then (sharing its store's
    # worker name with two other threads) to finish every build: the compare
    # and set lets exactly one claim and one finish through per build.
    stores = [SQLAlchemyStore(clean_postgres, pool_size=3) for _ in range(4)]
    ids = [stores[0].create_build(BuildRequest(repo="r")).id for _ in range(30)]
    claims: list[tuple[int, str]] = []
    finishes: list[tuple[int, str]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(12)

    def work(k: int, seed: int) -> None:
        store, worker, order = stores[k], f"store-{k}", ids[:]
        random.Random(seed).shuffle(order)
        barrier.wait()
        for build_id in order:
            if store.claim_build(worker, build_id=build_id) is not None:
                with lock:
                    claims.append((build_id, worker))
        barrier.wait()
        for build_id in order:
            done = store.finish_build(
                build_id, worker, status=Status.PASSED, reason=f"{seed}", finished_at=1.0
            )
            if done is not None:
                with lock:
                    finishes.append((build_id, worker))

    threads = [
        threading.Thread(target=work, args=(k, 3 * k + j)) for k in range(4) for j in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    builds = {b.id: b for b in stores[0].list_builds(limit=100)}
    for s in stores:
        s.close()
    assert sorted(ids) == sorted(b for b, _ in claims)  # each claimed once
    assert sorted(claims) == sorted(finishes)  # each finished once, by its owner
    assert all(Status.PASSED == b.status for b in builds.values())
