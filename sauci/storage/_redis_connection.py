"""The Redis side of RedisStore: the connection (bounded timeouts and retries),
its Lua scripts, key names under the prefix, and Redis errors as StoreError."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit, urlunsplit

from sauci.exceptions import MissingDependencyError, NotFoundError, StoreError
from sauci.storage._redis_scripts import APPEND, CLAIM, OWNED, READ, REPLACE_ROWS, UPDATE

__all__ = ["RedisConnection"]


class RedisConnection:
    """One Redis database, the scripts loaded on it, and the key prefix."""

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "sauci",
        clock: Callable[[], float] = time.time,
        socket_timeout: float = 5.0,
    ) -> None:
        try:
            import redis
            from redis.backoff import ExponentialBackoff
            from redis.retry import Retry
        except ImportError as exc:
            raise MissingDependencyError("redis", "redis") from exc
        self._redis_error = redis.RedisError
        self._clock = clock
        self.url = url
        self.p = prefix
        # Bounded timeouts and retries: a dead server is a StoreError in
        # seconds, never a hang; the pool reconnects once it is back.
        self._r: Any = redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=min(2.0, socket_timeout),
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 2),
            health_check_interval=30,
        )
        self._claim = self._r.register_script(CLAIM)
        self._update = self._r.register_script(UPDATE)
        self._owned = self._r.register_script(OWNED)
        self._append = self._r.register_script(APPEND)
        self._replace_rows = self._r.register_script(REPLACE_ROWS)
        self._read = self._r.register_script(READ)

    @classmethod
    def from_url(cls, url: str, **kw: Any) -> Self:
        """``redis://host:port/db``; ``?prefix=name`` picks the key prefix."""
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        prefix = query.pop("prefix", ["sauci"])[0]
        rest = "&".join(f"{k}={v[0]}" for k, v in query.items())
        return cls(urlunsplit(parts._replace(query=rest)), prefix=prefix, **kw)

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except self._redis_error as exc:
            raise StoreError(f"{what}: Redis at {self.url}: {exc}") from exc

    def _k(self, *parts: Any) -> str:
        return ":".join([self.p, *map(str, parts)])

    def _require_build(self, build_id: int) -> None:
        if not self._r.exists(self._k("build", build_id)):
            raise NotFoundError(f"build {build_id} not found")
