"""Random operation sequences: every SQL store must behave exactly like MemoryStore."""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from sauci.storage.sqlalchemy import SQLAlchemyStore
from sauci.storage.sqlite import SQLiteStore
from sauci.testing import make_store_state_machine
from sauci.typing import Store

SETTINGS = settings(
    max_examples=50,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def _run(factory: Callable[[Callable[[], float]], Store], **overrides: int) -> None:
    run_state_machine_as_test(
        make_store_state_machine(factory), settings=settings(SETTINGS, **overrides)
    )


def _copies(template: Path, directory: Path) -> Callable[[], Path]:
    counter = itertools.count()

    def fresh() -> Path:
        path = directory / f"{next(counter)}.db"
        shutil.copyfile(template, path)
        return path

    return fresh


def test_sqlite_store_behaves_like_memory_store(sqlite_template: Path, tmp_path: Path) -> None:
    fresh = _copies(sqlite_template, tmp_path)
    _run(lambda clock: SQLiteStore(fresh(), clock=clock))


def test_sqlite_store_without_returning_behaves_like_memory_store(
    sqlite_template: Path, tmp_path: Path
) -> None:
    fresh = _copies(sqlite_template, tmp_path)

    def factory(clock: Callable[[], float]) -> Store:
        store = SQLiteStore(fresh(), clock=clock)
        store._db.returning = False
        return store

    _run(factory, max_examples=10)


def test_sqlalchemy_store_on_sqlite_behaves_like_memory_store(
    sqlite_template: Path, tmp_path: Path
) -> None:
    fresh = _copies(sqlite_template, tmp_path)
    _run(lambda clock: SQLAlchemyStore(f"sqlite:///{fresh()}", clock=clock), max_examples=10)


@pytest.mark.postgres
def test_postgres_store_behaves_like_memory_store(
    postgres_url: str, truncate_postgres: Callable[[], None]
) -> None:
    def factory(clock: Callable[[], float]) -> Store:
        truncate_postgres()
        return SQLAlchemyStore(postgres_url, clock=clock)

    _run(factory, max_examples=25)
