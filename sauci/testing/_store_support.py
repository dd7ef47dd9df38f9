"""What the modules of the Store conformance suite share: the base class of
every part's suite, a build id no test creates, a build request with
defaults, and a way to run a function in threads released at once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, ClassVar

from sauci.core.models import BuildRequest

__all__ = ["MISSING_ID", "StorePartConformance", "build_request", "race"]

MISSING_ID = 987_654  # a build id no test creates


class StorePartConformance:
    """The base of each part's suite. ``parts`` names the protocols of
    :mod:`sauci.typing` that the suite's tests use; the store must be an
    instance of each (StoreConformance names them all)."""

    parts: ClassVar[tuple[type, ...]] = ()

    def test_the_parts_are_implemented(self, store: Any) -> None:
        missing = [part.__name__ for part in self.parts if not isinstance(store, part)]
        assert [] == missing, f"the store does not implement {', '.join(missing)}"


def build_request(repo: str = "acme/app", **kw: Any) -> BuildRequest:
    """A BuildRequest for ``repo``, the other fields as given or their defaults."""
    return BuildRequest(repo=repo, **kw)


def race(count: int, target: Callable[[int], Any]) -> list[Any]:
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
