"""`sauci store copy` between every pair of built-in stores, on the real
servers: whatever Hypothesis writes into the source (builds, steps, logs with
any bytes, tests, artifacts, events) arrives whole in the destination, and a
second copy with --merge changes nothing (copy twice = copy once)."""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis_server import RedisServer, redis_server  # noqa: F401

from sauci.core.models import Artifact, BuildRequest, Event, StepRun, TestCase
from sauci.storage.copy import copy_store, store_digest
from sauci.storage.memory import MemoryStore
from sauci.storage.sqlite import SQLiteStore
from sauci.typing import Store

pytest.importorskip("redis")
pytest.importorskip("duckdb")
pytest.importorskip("psycopg")

KINDS = ("memory", "sqlite", "postgresql", "duckdb", "redis", "stream")

_step = st.tuples(
    st.sampled_from(["build", "test", "lint"]),
    st.lists(st.binary(max_size=300), max_size=3),  # the log, in chunks
    st.integers(0, 2),  # test cases
    st.booleans(),  # an artifact
)
_build = st.tuples(
    st.sampled_from(["app", "lib"]),
    st.sampled_from(["queued", "running", "passed", "failed", "errored"]),
    st.dictionaries(st.sampled_from("abc"), st.text(max_size=5), max_size=2),
    st.lists(_step, max_size=3, unique_by=lambda s: s[0]),
)
WORKLOAD = st.lists(_build, min_size=1, max_size=4)


def _write(store: Store, workload: list[Any]) -> None:
    for repo, status, params, steps in workload:
        b = store.create_build(BuildRequest(repo=repo, params=params))
        store.update_build(b.id, status=status, started_at=1.5, finished_at=2.25)
        store.add_event(Event(kind="build_queued", at=1.0, build_id=b.id, data={"p": params}))
        for position, (name, chunks, tests, artifact) in enumerate(steps):
            store.save_step(StepRun(build_id=b.id, name=name, position=position, status=status))
            for chunk in chunks:
                if chunk:
                    store.append_log(b.id, name, chunk)
            if tests:
                cases = [TestCase(name=f"{name}{i}", duration=0.5 * i) for i in range(tests)]
                store.add_test_results(b.id, name, cases)
            if artifact:
                store.add_artifacts(b.id, name, [Artifact(path=f"{name}.tar", size=7)])


@pytest.fixture(scope="module")
def postgres_pair(postgres_server: Any) -> Iterator[tuple[str, str]]:
    """Two databases of their own (a pair copies from one into the other)."""
    import psycopg

    admin = postgres_server.url.replace("postgresql+psycopg://", "postgresql://")
    names = [f"sauci_pairs_{os.getpid()}_{n}" for n in range(2)]
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in names:
            conn.execute(f"CREATE DATABASE {name}")
    yield postgres_server.url_for(names[0]), postgres_server.url_for(names[1])
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in names:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="module")
def make_store(
    redis_server: RedisServer,  # noqa: F811
    postgres_pair: tuple[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[str, int], Store]]:
    """``make_store(kind, side)``: a new, empty store of that kind; ``side``
    (0 source, 1 destination) keeps the two PostgreSQL stores apart."""
    from sauci.storage.duckdb import DuckDBStore
    from sauci.storage.redis import RedisStore
    from sauci.storage.sqlalchemy import SQLAlchemyStore
    from sauci.storage.stream import StreamStore

    tmp = tmp_path_factory.mktemp("pairs")
    numbers = itertools.count()
    opened: list[Store] = []
    engines: dict[int, SQLAlchemyStore] = {}

    def make(kind: str, side: int) -> Store:
        n = next(numbers)
        prefix = f"p{uuid.uuid4().hex[:10]}"
        store: Store
        if kind == "memory":
            store = MemoryStore()
        elif kind == "sqlite":
            store = SQLiteStore(tmp / f"{n}.db")
        elif kind == "duckdb":
            store = DuckDBStore(tmp / f"{n}.duckdb")
        elif kind == "redis":
            store = RedisStore.from_url(f"{redis_server.url}?prefix={prefix}")
        elif kind == "stream":
            store = StreamStore(redis_server.url, prefix=prefix, follow=False)
        else:  # one store per database for the module, emptied for each example
            if side not in engines:
                engines[side] = SQLAlchemyStore(postgres_pair[side])
            store = engines[side]
            with store.engine.begin() as conn:
                import sqlalchemy as sa

                from sauci.storage.schema import metadata

                names = ", ".join(t.name for t in metadata.sorted_tables)
                conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            return store
        opened.append(store)
        return store

    yield make
    for store in opened + list(engines.values()):
        store.close()


@pytest.mark.parametrize(("source", "target"), list(itertools.product(KINDS, KINDS)))
def test_copy_between_every_pair_keeps_everything_and_merging_again_changes_nothing(
    make_store: Callable[[str, int], Store], source: str, target: str
) -> None:
    @settings(
        max_examples=2,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(workload=WORKLOAD)
    def check(workload: list[Any]) -> None:
        src, dst = make_store(source, 0), make_store(target, 1)
        _write(src, workload)
        first = copy_store(src, dst)
        assert store_digest(src) == store_digest(dst)
        assert (len(workload), 0) == (first.copied_builds, first.resumed_after)
        second = copy_store(src, dst, merge=True)
        assert (0, len(workload)) == (second.copied_builds, second.resumed_after)
        assert store_digest(src) == store_digest(dst)
        log_bytes = sum(len(c) for _, _, _, steps in workload for _, cs, _, _ in steps for c in cs)
        assert log_bytes == store_digest(dst)[0]["log_bytes"]

    check()


def test_a_merge_into_a_store_of_another_history_keeps_both(
    make_store: Callable[[str, int], Store],
) -> None:
    src, dst = make_store("sqlite", 0), make_store("redis", 1)
    _write(src, [("app", "passed", {}, [("test", [b"src log"], 1, True)])])
    _write(dst, [("app", "failed", {}, [("test", [b"dst log"], 0, False)])])
    copy_store(src, dst, merge=True)
    copy_store(src, dst, merge=True)
    logs = sorted(dst.read_log(b.id, "test") for b in dst.list_builds())
    assert [b"dst log", b"src log"] == logs
