"""Routing by labels: one broker queue per label set.

A build that runs on labels L goes to the queue named for L (sorted, joined
with ``+``); a worker with labels W listens on the queue of every subset of
W, so it takes exactly the builds whose labels it has all of.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from itertools import combinations

from sauci.core.config import parse_labels

__all__ = ["BASE_QUEUE", "MAX_QUEUE_NAME", "own_queue", "queue_name", "worker_queues"]

BASE_QUEUE = "sauci"
# AMQP (RabbitMQ) refuses queue names over 255 bytes; eight labels of up to 64
# characters make up to 525. A longer name becomes a digest of itself ("~" is
# not a label character, so it cannot equal a plain name).
MAX_QUEUE_NAME = 255


def queue_name(labels: Iterable[str]) -> str:
    """``sauci`` for no labels, ``sauci.docker+linux`` for {linux, docker}."""
    unique = sorted(set(labels))
    name = BASE_QUEUE if not unique else f"{BASE_QUEUE}.{'+'.join(unique)}"
    if len(name) > MAX_QUEUE_NAME:
        name = f"{BASE_QUEUE}.~{hashlib.sha256(name.encode()).hexdigest()}"
    return name


def own_queue(worker: str) -> str:
    """``sauci@NAME``: the queue of worker NAME alone, where the dispatcher sends
    the builds it placed there by cost (``@`` is in no label queue's name)."""
    name = f"{BASE_QUEUE}@{worker}"
    if len(name.encode()) > MAX_QUEUE_NAME:
        name = f"{BASE_QUEUE}@~{hashlib.sha256(name.encode()).hexdigest()}"
    return name


def worker_queues(labels: Iterable[str]) -> list[str]:
    """The queues a worker with ``labels`` consumes: one per subset (2**n, n <= 8)."""
    unique = parse_labels(list(labels), "worker labels")  # checks the cap, with a clear error
    return [
        queue_name(subset)
        for size in range(len(unique) + 1)
        for subset in combinations(unique, size)
    ]
