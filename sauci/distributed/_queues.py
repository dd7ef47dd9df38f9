"""Routing by labels: one broker queue per label set.

A build that runs on labels L goes to the queue named for L (sorted, joined
with ``+``); a worker with labels W listens on the queue of every subset of
W, so it takes exactly the builds whose labels it has all of.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import combinations

from sauci.core.config import parse_labels

__all__ = ["BASE_QUEUE", "queue_name", "worker_queues"]

BASE_QUEUE = "sauci"


def queue_name(labels: Iterable[str]) -> str:
    """``sauci`` for no labels, ``sauci.docker+linux`` for {linux, docker}."""
    unique = sorted(set(labels))
    return BASE_QUEUE if not unique else f"{BASE_QUEUE}.{'+'.join(unique)}"


def worker_queues(labels: Iterable[str]) -> list[str]:
    """The queues a worker with ``labels`` consumes: one per subset (2**n, n <= 8)."""
    unique = parse_labels(list(labels), "worker labels")  # checks the cap, with a clear error
    return [
        queue_name(subset)
        for size in range(len(unique) + 1)
        for subset in combinations(unique, size)
    ]
