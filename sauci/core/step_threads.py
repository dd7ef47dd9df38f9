"""The threads an executor runs its steps on, kept from one build to the next.

A build used to make a thread pool of its own and shut it down at its end:
one new thread per step (started, then joined), which cost 2-3 ms of the
server's wall time per build while a wave of builds handed over at once
(issue 'Operations that tell the truth', item 1). These threads are started
when no idle one is free and kept for the next step; a build still waits for
every step it submitted before it returns (sauci.core.executor), so no
step's work outlives its build, only an idle thread does.

While a thread runs a step it is named ``sauci-b<build>-<step>`` (what
py-spy and a test looking for a build's threads see); idle it is
``sauci-step_<n>``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import ParamSpec, TypeVar

__all__ = ["StepThreads"]

P = ParamSpec("P")
T = TypeVar("T")

# Not a limit on steps (the executor's jobs and slots are): a pool of
# ThreadPoolExecutor reuses an idle thread before it starts one, so this is
# only where it would stop starting threads.
_MOST = 1024


class StepThreads:
    """Threads for steps, made when first needed and reused across builds.

    Its threads end when the owner is dropped (ThreadPoolExecutor's weak
    reference) or at :meth:`close`, and at interpreter exit once idle.
    """

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def submit(
        self, label: str, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> Future[T]:
        """Run ``fn`` on an idle thread (or a new one), named ``label`` meanwhile."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(_MOST, thread_name_prefix="sauci-step")
            pool = self._pool
        return pool.submit(_named, label, fn, *args, **kwargs)

    def close(self) -> None:
        """End the idle threads; a step still running finishes first."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)


def _named(label: str, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    this = threading.current_thread()
    idle = this.name
    this.name = label
    try:
        return fn(*args, **kwargs)
    finally:
        this.name = idle
