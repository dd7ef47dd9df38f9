"""Test helpers for SauCI and its plugins: conformance suites and fakes.

``StoreConformance`` is a mixin of tests every Store must pass, made of one
mixin a store part (``BuildStoreConformance``, ``QueueStoreConformance``, ...);
``make_store_state_machine`` builds a Hypothesis state machine that checks a
store against MemoryStore, the reference model. They need pytest (and
Hypothesis for the state machine), from the ``test`` extra.
"""

from __future__ import annotations

from sauci.testing._store_builds import BuildStoreConformance
from sauci.testing._store_events import EventStoreConformance
from sauci.testing._store_logs import LogStoreConformance
from sauci.testing._store_queue import QueueStoreConformance
from sauci.testing._store_repos import RepoStoreConformance
from sauci.testing._store_results import ResultStoreConformance
from sauci.testing._store_state_machine import make_store_state_machine
from sauci.testing._store_steps import StepStoreConformance
from sauci.testing._store_workers import WorkerStoreConformance
from sauci.testing.store import StoreConformance

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
