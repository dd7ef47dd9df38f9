"""Conformance tests for Store adapters, and a state machine that checks a
store against MemoryStore.

Use them in a plugin's test suite::

    import pytest
    from sauci.testing import StoreConformance, make_store_state_machine

    class TestMyStore(StoreConformance):
        @pytest.fixture
        def store(self, tmp_path):
            s = MyStore(tmp_path / "db")
            yield s
            s.close()

    def test_my_store_behaves_like_memory_store(tmp_path):
        from hypothesis import settings
        from hypothesis.stateful import run_state_machine_as_test

        machine = make_store_state_machine(lambda clock: MyStore(..., clock=clock))
        run_state_machine_as_test(machine, settings=settings(max_examples=25))

The ``store`` fixture must give an empty store for each test.

The suite is put together here from one mixin a store part (see
``sauci.typing``), each in a private module and each usable alone, with the
same ``store`` fixture, for a store that implements only that part:
``BuildStoreConformance``, ``QueueStoreConformance``,
``StepStoreConformance``, ``LogStoreConformance``, ``ResultStoreConformance``,
``RepoStoreConformance``, ``WorkerStoreConformance`` and
``EventStoreConformance`` (all in ``sauci.testing``); the state machine is in
``_store_state_machine``.
"""

from __future__ import annotations

from typing import ClassVar

from sauci.testing._store_builds import BuildStoreConformance
from sauci.testing._store_events import EventStoreConformance
from sauci.testing._store_logs import LogStoreConformance
from sauci.testing._store_queue import QueueStoreConformance
from sauci.testing._store_repos import RepoStoreConformance
from sauci.testing._store_results import ResultStoreConformance
from sauci.testing._store_steps import StepStoreConformance
from sauci.testing._store_workers import WorkerStoreConformance
from sauci.typing import STORE_PARTS, Store

__all__ = ["StoreConformance"]


# pytest collects a base class's tests before its subclass's (reverse MRO), so
# the parts run from the last listed to the first, then the checks below.
class StoreConformance(
    EventStoreConformance,
    WorkerStoreConformance,
    RepoStoreConformance,
    ResultStoreConformance,
    LogStoreConformance,
    StepStoreConformance,
    QueueStoreConformance,
    BuildStoreConformance,
):
    """Tests every Store must pass. Subclass it and provide a ``store`` fixture
    that yields a new, empty store (and closes it afterwards)."""

    parts: ClassVar[tuple[type, ...]] = STORE_PARTS

    # protocol and capabilities

    def test_store_satisfies_the_protocol(self, store: Store) -> None:
        assert isinstance(store, Store)
        assert isinstance(store.capabilities, frozenset)
        assert all(isinstance(c, str) for c in store.capabilities)
        # The suite checks claims under threads, so every store must claim atomically.
        assert "atomic_claim" in store.capabilities

    def test_close_twice_is_harmless(self, store: Store) -> None:
        store.close()
        store.close()
