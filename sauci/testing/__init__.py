"""Test helpers for SauCI and its plugins: conformance suites and fakes.

``StoreConformance`` is a mixin of tests every Store must pass, made of one
mixin a store part (``BuildStoreConformance``, ``QueueStoreConformance``, ...);
``make_store_state_machine`` builds a Hypothesis state machine that checks a
store against MemoryStore, the reference model. They need pytest (and
Hypothesis for the state machine), from the ``test`` extra.
"""

from __future__ import annotations

from sauci.testing.store import (
    BuildStoreConformance,
    EventStoreConformance,
    LogStoreConformance,
    QueueStoreConformance,
    RepoStoreConformance,
    ResultStoreConformance,
    StepStoreConformance,
    StoreConformance,
    WorkerStoreConformance,
    make_store_state_machine,
)

__all__ = [
    "BuildStoreConformance",
    "EventStoreConformance",
    "LogStoreConformance",
    "QueueStoreConformance",
    "RepoStoreConformance",
    "ResultStoreConformance",
    "StepStoreConformance",
    "StoreConformance",
    "WorkerStoreConformance",
    "make_store_state_machine",
]
