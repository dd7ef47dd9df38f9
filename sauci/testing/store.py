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

The suite is put together here from one mixin an area, each in a private
module: builds (``_store_builds``), steps (``_store_steps``), logs, test
results and artifacts (``_store_outputs``), events, statistics, repositories
and deliveries (``_store_server``) and distributed runs (``_store_runs``);
the state machine is in ``_store_state_machine``.
"""

from __future__ import annotations

from sauci.testing._store_builds import BuildsConformance
from sauci.testing._store_outputs import OutputsConformance
from sauci.testing._store_runs import RunsConformance
from sauci.testing._store_server import ServerConformance
from sauci.testing._store_state_machine import make_store_state_machine
from sauci.testing._store_steps import StepsConformance
from sauci.typing import Store

__all__ = ["StoreConformance", "make_store_state_machine"]


# pytest collects a base class's tests before its subclass's (reverse MRO), so
# the areas are listed last first: they run in their old order (runs, builds,
# steps, outputs, server records), then the protocol checks below.
class StoreConformance(
    ServerConformance, OutputsConformance, StepsConformance, BuildsConformance, RunsConformance
):
    """Tests every Store must pass. Subclass it and provide a ``store`` fixture
    that yields a new, empty store (and closes it afterwards)."""

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
