"""Test helpers for SauCI and its plugins: conformance suites and fakes.

``StoreConformance`` is a mixin of tests every Store must pass;
``make_store_state_machine`` builds a Hypothesis state machine that checks a
store against MemoryStore, the reference model. They need pytest (and
Hypothesis for the state machine), from the ``test`` extra.
"""

from __future__ import annotations

from sauci.testing.store import StoreConformance, make_store_state_machine

__all__ = ["StoreConformance", "make_store_state_machine"]
