"""The event logs a StreamStore stands on: a Redis stream (RedisLog) or a
one-partition Kafka topic (KafkaLog). Both append an event, read the entries
after a position, wait for new ones, count them, and say which client
exceptions mean the broker failed (``errors``), so the store never sees
redis or confluent_kafka directly.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

from sauci.exceptions import MissingDependencyError, StoreError

__all__ = ["KafkaLog", "RedisLog"]


class RedisLog:
    """The event log on a Redis stream; positions are entry ids (bytes)."""

    def __init__(self, url: str, name: str, *, timeout: float) -> None:
        try:
            import redis
        except ImportError as exc:
            raise MissingDependencyError("redis", "redis") from exc
        self.errors: tuple[type[Exception], ...] = (redis.RedisError,)
        self.name = name
        self._r: Any = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=min(2.0, timeout)
        )

    def append(self, payload: bytes, data: bytes) -> bytes:
        return self._r.xadd(self.name, {"e": payload, "d": data})  # type: ignore[no-any-return]

    def read(self, after: bytes | None, until: bytes | None) -> list[tuple[bytes, bytes, bytes]]:
        start = "-" if after is None else b"(" + after
        entries = self._r.xrange(self.name, min=start, count=500)
        return [(i, f[b"e"], f.get(b"d", b"")) for i, f in entries]

    def wait(self, after: bytes | None, timeout: float) -> None:
        self._r.xread({self.name: after or b"0-0"}, count=1, block=int(timeout * 1000))

    def added(self) -> int:
        if not self._r.exists(self.name):
            return 0
        return int(self._r.xinfo_stream(self.name)["entries-added"])

    def age(self, after: bytes | None) -> float:
        first = self.read(after, None)[:1]
        if not first:
            return 0.0
        return max(0.0, time.time() - int(first[0][0].split(b"-")[0]) / 1000)

    def close(self) -> None:
        self._r.close()


class KafkaLog:
    """The event log on a one-partition Kafka topic (one total order, which
    the views need); positions are offsets. Manual assignment: no consumer
    group to join."""

    def __init__(self, url: str, name: str, *, timeout: float) -> None:
        try:
            from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
            from confluent_kafka.admin import AdminClient, NewTopic
        except ImportError as exc:
            raise MissingDependencyError("confluent-kafka", "kafka") from exc
        self.errors: tuple[type[Exception], ...] = (KafkaException,)
        self.name = name
        self._timeout = timeout
        self._tp = TopicPartition
        servers = urlsplit(url).netloc
        try:
            admin = AdminClient({"bootstrap.servers": servers})
            topics = admin.list_topics(timeout=timeout).topics
            if name not in topics:
                for future in admin.create_topics([NewTopic(name, 1, 1)]).values():
                    try:
                        future.result(timeout)
                    except KafkaException as exc:
                        if "TOPIC_ALREADY_EXISTS" not in str(exc):
                            raise
        except KafkaException as exc:
            raise StoreError(f"open Kafka topic {name} at {servers}: {exc}") from exc
        self._producer = Producer(
            {
                "bootstrap.servers": servers,
                "linger.ms": 0,
                "enable.idempotence": False,
                "message.timeout.ms": int(timeout * 1000),
            }
        )
        self._consumer = Consumer(
            {
                "bootstrap.servers": servers,
                "group.id": f"sauci-{name}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": 10,  # answer a catch-up now, not in 500 ms
            }
        )
        self._next: int | None = None  # offset the consumer is assigned at

    def append(self, payload: bytes, data: bytes) -> int:
        delivered: list[Any] = []
        self._producer.produce(
            self.name,
            value=payload,
            headers={"d": data},
            on_delivery=lambda err, msg: delivered.append((err, msg)),
        )
        self._producer.flush(self._timeout)
        if not delivered:
            raise StoreError(f"event not acknowledged by Kafka within {self._timeout} s")
        err, msg = delivered[0]
        if err is not None:
            raise StoreError(f"Kafka refused the event: {err}")
        return int(msg.offset())

    def read(self, after: int | None, until: int | None) -> list[tuple[int, bytes, bytes]]:
        start = 0 if after is None else after + 1
        target = (until + 1) if until is not None else self.added()
        if start >= target:
            return []
        if self._next != start:
            self._consumer.assign([self._tp(self.name, 0, start)])
        messages: list[Any] = self._consumer.consume(min(500, target - start), self._timeout)
        out: list[tuple[int, bytes, bytes]] = []
        for m in messages:
            if m.error() is not None:
                raise StoreError(f"read Kafka topic {self.name}: {m.error()}")
            data = dict(m.headers() or ()).get("d") or b""
            out.append((int(m.offset()), m.value(), data))
        self._next = out[-1][0] + 1 if out else None
        return out

    def wait(self, after: int | None, timeout: float) -> None:
        time.sleep(min(timeout, 0.1))  # the follower polls the high watermark

    def added(self) -> int:
        return int(self._consumer.get_watermark_offsets(self._tp(self.name, 0), self._timeout)[1])

    def age(self, after: int | None) -> float:
        return 0.0  # entries only: reading a message's timestamp would move the consumer

    def close(self) -> None:
        self._producer.flush(self._timeout)
        self._consumer.close()
