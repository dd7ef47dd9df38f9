"""The event logs a StreamStore stands on: a Redis stream (RedisLog) or a
one-partition Kafka topic (KafkaLog). Both append an event, read the entries
after a position, wait for new ones, count them, and say which client
exceptions mean the broker failed (``errors``), so the store never sees
redis or confluent_kafka directly.

A read that finds entries missing after the position it reads from (the
broker lost or trimmed part of its log) raises :class:`LogGap`, unless the
hole ends at or before ``accepted`` (an operator accepted it with ``sauci
store rebuild``). Every entry is at most ``PIECE`` bytes of payload and data
together: larger events are split by the store (``_stream_pieces``), since a
Kafka broker refuses a message over about 1 MB (MSG_SIZE_TOO_LARGE).
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

from sauci.exceptions import MissingDependencyError, StoreError

__all__ = ["PIECE", "KafkaLog", "LogGap", "RedisLog"]

PIECE = 512 * 1024
# How long a view catching up afresh on Kafka waits for the broker to say
# that it reached the end.
_READ_ON_BOUND = 1.0


class LogGap(Exception):  # a signal inside the stream store, never raised out of it
    """Entries are missing from the log after the position a view read from.
    ``through``: the last missing position (None when the log lost its tail:
    it ends before what the view applied, so no later entry can fill it)."""

    def __init__(self, missing: str, through: Any) -> None:
        super().__init__(missing)
        self.missing = missing
        self.through = through


# What a reader needs of XINFO STREAM, without the first and last entries'
# bodies that it answers with (a log chunk each): entries added, length, the
# last deleted id and the first entry's id; nil when there is no stream.
_INFO = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local out = {}
for i = 1, #info, 2 do out[info[i]] = info[i + 1] end
local first = out['first-entry']
return {out['entries-added'], out['length'], out['max-deleted-entry-id'],
        first and first[1] or ''}
"""


def _redis_order(position: Any) -> tuple[int, int]:
    text = position.decode() if isinstance(position, bytes) else str(position)
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


class _Ordered:
    """Comparing a log's positions, by the key its ``order`` gives."""

    order: Any  # position -> a comparable key

    def later(self, a: Any, b: Any) -> bool:
        """Whether position ``a`` comes after ``b`` (None: before the first)."""
        if a is None:
            return False
        return b is None or self.order(a) > self.order(b)


class RedisLog(_Ordered):
    """The event log on a Redis stream; positions are entry ids (bytes)."""

    order = staticmethod(_redis_order)

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
        self._info = self._r.register_script(_INFO)

    def append(self, payload: bytes, data: bytes) -> bytes:
        return self._r.xadd(self.name, {"e": payload, "d": data})  # type: ignore[no-any-return]

    def read(
        self,
        after: bytes | None,
        until: bytes | None,
        accepted: Any = None,
        count: int = 0,
        check: bool = True,
    ) -> list[tuple[bytes, bytes, bytes]]:
        """Entries after ``after``; ``count``: how many the reader has read
        (to tell a stream that lost entries it had not read). The check costs
        the server a copy of the stream's first and last entries (XINFO), so
        it is made only when ``check`` is set, and on a view's first read."""
        start = "-" if after is None else b"(" + after
        if after is not None and not check:
            entries = self._r.xrange(self.name, min=start, count=500)
            return [(i, f[b"e"], f.get(b"d", b"")) for i, f in entries]
        pipe = self._r.pipeline(transaction=False)
        pipe.xrange(self.name, min=start, count=500)
        self._info(keys=[self.name], client=pipe)
        entries, info = pipe.execute(raise_on_error=False)
        for answer in (entries, info):
            if isinstance(answer, Exception):
                raise answer
        if info:
            self._check(info, after, accepted, count)
        elif count:  # no stream where there were entries
            raise LogGap(f"all {count} entries (the stream is gone)", None)
        return [(i, f[b"e"], f.get(b"d", b"")) for i, f in entries]

    def _check(self, info: list[Any], after: Any, accepted: Any, count: int) -> None:
        """Raise LogGap when entries after ``after`` were deleted or trimmed."""
        added, length, deleted, first = int(info[0]), int(info[1]), info[2], info[3] or None
        if added < count:
            raise LogGap(f"entries {added + 1} to {count} (the stream was made again)", None)
        since = "the start" if after is None else f"entry {after.decode()}"
        if deleted != b"0-0" and self.later(deleted, after) and self.later(deleted, accepted):
            raise LogGap(f"entries after {since} up to {deleted.decode()}", deleted)
        # Trimmed (XTRIM, MAXLEN): every entry before the first is gone; those
        # this reader did not read are the removed ones beyond its count.
        if (
            first is not None
            and added - length > count
            and self.later(first, after)
            and self.later(first, accepted)
        ):
            raise LogGap(f"entries after {since} before {first.decode()} (trimmed)", first)

    def position(self, value: Any) -> bytes:
        """A position from its JSON form (an ``sauci store rebuild`` record)."""
        return value.encode() if isinstance(value, str) else bytes(value)

    def wait(self, after: bytes | None, timeout: float) -> None:
        self._r.xread({self.name: after or b"0-0"}, count=1, block=int(timeout * 1000))

    def added(self) -> int:
        if not self._r.exists(self.name):
            return 0
        return int(self._r.xinfo_stream(self.name)["entries-added"])

    def read_on(
        self, after: bytes | None, accepted: Any = None
    ) -> list[tuple[bytes, bytes, bytes]]:
        return []  # a stream's length is exact: a read to the end read it all

    def age(self, after: bytes | None) -> float:
        first = self.read(after, None)[:1]
        if not first:
            return 0.0
        return max(0.0, time.time() - int(first[0][0].split(b"-")[0]) / 1000)

    def close(self) -> None:
        self._r.close()


class KafkaLog(_Ordered):
    """The event log on a one-partition Kafka topic (one total order, which
    the views need); positions are offsets. Manual assignment: no consumer
    group to join."""

    order = staticmethod(int)

    def __init__(self, url: str, name: str, *, timeout: float) -> None:
        try:
            from confluent_kafka import (
                Consumer,
                KafkaError,
                KafkaException,
                Producer,
                TopicPartition,
            )
            from confluent_kafka.admin import AdminClient, NewTopic
        except ImportError as exc:
            raise MissingDependencyError("confluent-kafka", "kafka") from exc
        self.errors: tuple[type[Exception], ...] = (KafkaException,)
        self.name = name
        self._timeout = timeout
        self._tp = TopicPartition
        self._eof_code = KafkaError._PARTITION_EOF
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
                # The broker's own word that a fetch found nothing more, for
                # a view catching up afresh (``read_on``).
                "enable.partition.eof": True,
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

    def read(
        self,
        after: int | None,
        until: int | None,
        accepted: Any = None,
        count: int = 0,
        check: bool = True,  # offsets tell every hole: nothing more to check
    ) -> list[tuple[int, bytes, bytes]]:
        start = 0 if after is None else after + 1
        # A writer reads up to its own entry (one before ``start`` means the
        # log went back, which the view reports); others up to the end.
        target = until + 1 if until is not None else self.added()
        if until is None and target < start:
            raise LogGap(f"offsets {target} to {start - 1} (the topic now ends there)", None)
        if start >= target:
            return []
        if self._next != start:
            self._consumer.assign([self._tp(self.name, 0, start)])
        out = self._consume(min(500, target - start))
        self._next = out[-1][0] + 1 if out else None
        # A consumer asked for an offset the broker no longer has starts at
        # the log's first one (auto.offset.reset): the entries between are gone.
        if out and out[0][0] > start and self.later(out[0][0] - 1, accepted):
            self._next = None
            raise LogGap(f"offsets {start} to {out[0][0] - 1}", out[0][0] - 1)
        return out

    def _consume(self, count: int) -> list[tuple[int, bytes, bytes]]:
        # An end-of-partition event from before the entries asked for came
        # out alone: ask again until the timeout.
        deadline = time.monotonic() + self._timeout
        while (left := deadline - time.monotonic()) > 0:
            messages = self._consumer.consume(count, left)
            out = self._entries(messages)
            if out or not messages:
                return out
        return []

    def _entries(self, messages: list[Any]) -> list[tuple[int, bytes, bytes]]:
        out: list[tuple[int, bytes, bytes]] = []
        for m in messages:
            error = m.error()
            if error is not None and error.code() == self._eof_code:
                continue  # the end of the partition, as a fetch found it
            if error is not None:
                self._next = None  # what consume took with it is read again
                raise StoreError(f"read Kafka topic {self.name}: {error}")
            data = dict(m.headers() or ()).get("d") or b""
            out.append((int(m.offset()), m.value(), data))
        return out

    def read_on(self, after: int | None, accepted: Any = None) -> list[tuple[int, bytes, bytes]]:
        """Entries after ``after`` past the end the offsets tell, for a view
        catching up afresh: a fetch at the position either brings entries or
        the broker's end of partition (or nothing within a second). Some
        brokers answer ListOffsets behind what they acknowledged and serve
        (Tansu 0.6 on its S3 engine after a restart), and a view started
        afresh that trusted it would miss the newest events."""
        start = 0 if after is None else after + 1
        if self._next != start:
            self._consumer.assign([self._tp(self.name, 0, start)])
            self._next = start
        deadline = time.monotonic() + min(self._timeout, _READ_ON_BOUND)
        while (left := deadline - time.monotonic()) > 0:
            first = self._consumer.poll(left)
            if first is None:
                break
            error = first.error()
            if error is not None and error.code() == self._eof_code:
                if (first.offset() or 0) >= start:
                    break  # the broker found nothing at the position
                continue  # an end from before the position
            out = self._entries([first, *self._consumer.consume(499, 0)])
            if out and out[0][0] < start:  # the log went back: it now ends before
                self._next = None
                raise LogGap(
                    f"offsets {out[-1][0] + 1} to {start - 1} (the topic ends there)", None
                )
            if out and out[0][0] > start and self.later(out[0][0] - 1, accepted):  # as in read()
                self._next = None
                raise LogGap(f"offsets {start} to {out[0][0] - 1}", out[0][0] - 1)
            if out:
                self._next = out[-1][0] + 1
                return out
        return []

    def position(self, value: Any) -> int:
        """A position from its JSON form (an ``sauci store rebuild`` record)."""
        return int(value)

    def wait(self, after: int | None, timeout: float) -> None:
        time.sleep(min(timeout, 0.1))  # the follower polls the high watermark

    def added(self) -> int:
        # The end as ListOffsets tells it, or as the last Fetch told it if
        # that is further: some brokers answer ListOffsets behind what they
        # acknowledged and serve (Tansu 0.6 on its S3 engine), and a view
        # that trusted it would stop short of the newest events.
        tp = self._tp(self.name, 0)
        listed = int(self._consumer.get_watermark_offsets(tp, self._timeout)[1])
        fetched = self._consumer.get_watermark_offsets(tp, cached=True)
        return max(listed, int(fetched[1]) if fetched else -1)

    def age(self, after: int | None) -> float:
        return 0.0  # entries only: reading a message's timestamp would move the consumer

    def close(self) -> None:
        self._producer.flush(self._timeout)
        self._consumer.close()
