"""Helpers shared by the modules of the Store conformance suite: a build id no
test creates, a build request with defaults, and a way to run a function in
threads released at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from sauci.core.models import BuildRequest

__all__ = ["MISSING_ID", "_race", "_request"]

MISSING_ID = 987_654  # a build id no test creates


def _request(repo: str = "acme/app", **kw: Any) -> BuildRequest:
    return BuildRequest(repo=repo, **kw)


def _race(count: int, target: Callable[[int], Any]) -> list[Any]:
    """Run ``target(i)`` in ``count`` threads released at once; their results."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = target(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise errors[0]
    return results
