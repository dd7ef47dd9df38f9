"""Whether a heartbeat is fresh, judged by this process's clock: worker hosts' clocks need not agree."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable

import attrs

__all__ = ["Liveness"]


@attrs.define(eq=False)
class Liveness:
    """How long each heartbeat value has stayed the same, by this process's clock."""

    timeout: float
    clock: Callable[[], float] = attrs.field(kw_only=True, default=time.time)
    monotonic: Callable[[], float] = attrs.field(kw_only=True, default=time.monotonic)
    _seen: dict[Hashable, tuple[float, float]] = attrs.field(
        init=False, factory=dict
    )  # key -> (value, since)

    def silent_for(self, key: Hashable, value: float | None) -> float:
        """Seconds since ``value`` (a heartbeat time) last changed for ``key``."""
        now = self.monotonic()
        value = value or 0.0
        seen = self._seen.get(key)
        if seen is None:
            age = min(max(self.clock() - value, 0.0), self.timeout / 2)
            self._seen[key] = (value, now - age)
        elif seen[0] != value:
            self._seen[key] = (value, now)
        return now - self._seen[key][1]

    def fresh(self, key: Hashable, value: float | None) -> bool:
        return self.silent_for(key, value) <= self.timeout

    def pause(self, seconds: float) -> None:
        """Count the last ``seconds`` as silence of no one (this process could not look)."""
        self._seen = {k: (value, since + seconds) for k, (value, since) in self._seen.items()}

    def keep_only(self, keys: Iterable[Hashable]) -> None:
        wanted = set(keys)
        for key in [k for k in self._seen if k not in wanted]:
            del self._seen[key]
