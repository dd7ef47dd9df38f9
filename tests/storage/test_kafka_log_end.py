"""The Kafka log reads to the end the broker serves, not the end its offsets
tell: a broker may answer ListOffsets, and a fetch's high watermark, behind
what it acknowledged (Tansu on its S3 engine after a restart, seen in CI as a
view started afresh that showed a passed build as running). A consumer stands
in for the broker here, so the case is the same every time."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("confluent_kafka", reason="confluent-kafka is not installed")

from confluent_kafka import KafkaError, TopicPartition

from sauci.storage._stream_logs import KafkaLog

EOF_CODE = KafkaError._PARTITION_EOF


class Message:
    def __init__(self, offset: int, *, eof: bool = False) -> None:
        self._offset = offset
        self._eof = eof

    def error(self) -> Any:
        return KafkaError(EOF_CODE) if self._eof else None

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes:
        return b'{"n": %d}' % self._offset

    def headers(self) -> list[tuple[str, bytes]]:
        return [("d", b"")]


class Broker:
    """A consumer over ``served`` entries whose watermarks say ``told``; it
    fetches ahead as librdkafka does, and says end of partition at the end."""

    def __init__(self, served: int, told: int) -> None:
        self.served, self.told = served, told
        self.queue: list[Message] = []
        self.polls = 0

    def get_watermark_offsets(
        self, tp: Any, timeout: float = 0, cached: bool = False
    ) -> tuple[int, int]:
        return (0, self.told)

    def assign(self, parts: list[Any]) -> None:
        offset = parts[0].offset
        self.queue = [Message(i) for i in range(offset, self.served)]
        self.queue.append(Message(self.served, eof=True))

    def consume(self, count: int, timeout: float) -> list[Message]:
        out, self.queue = self.queue[:count], self.queue[count:]
        return out

    def poll(self, timeout: float) -> Message | None:
        self.polls += 1
        return self.consume(1, timeout)[0] if self.queue else None


def _log(broker: Broker) -> KafkaLog:
    log = KafkaLog.__new__(KafkaLog)
    log.name, log._timeout, log._tp = "t.stream", 5.0, TopicPartition
    log._eof_code, log._consumer = EOF_CODE, broker
    log._next = log._end = None
    return log


def _read_to_end(log: KafkaLog) -> list[int]:
    got: list[int] = []
    while entries := log.read(got[-1] if got else None, None):
        got += [offset for offset, _, _ in entries]
    return got


def test_a_view_reads_on_past_watermarks_that_say_less_than_the_broker_serves() -> None:
    broker = Broker(served=19, told=13)
    assert _read_to_end(_log(broker)) == list(range(19))


def test_at_the_end_the_broker_told_a_read_asks_nothing_more() -> None:
    broker = Broker(served=5, told=5)
    log = _log(broker)
    assert _read_to_end(log) == list(range(5))
    polls = broker.polls
    assert log.read(4, None) == [] and log.read(4, None) == []
    assert broker.polls == polls


def test_an_end_of_partition_before_a_writers_entry_is_not_its_answer() -> None:
    broker = Broker(served=3, told=3)
    log = _log(broker)
    assert _read_to_end(log) == [0, 1, 2]
    # Another entry is appended; the consumer had said end of partition at 3.
    broker.served = broker.told = 4
    broker.queue = [Message(3, eof=True), Message(3)]
    assert [o for o, _, _ in log.read(2, 3)] == [3]
