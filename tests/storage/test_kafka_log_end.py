"""A Kafka view catching up afresh reads to the end the broker serves, not
the end its offsets tell: Tansu on its S3 engine, restarted, answers
ListOffsets behind what it acknowledged, and a fetch's high watermark comes
with each batch it serves; a view started afresh whose first batch came with
the old watermark once showed a passed build as running (CI, stop 31). A
consumer stands in for the broker here, so the case is the same every time;
it says end of partition as librdkafka does, only where a fetch's position
meets the high watermark that fetch reported."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("confluent_kafka", reason="confluent-kafka is not installed")

from confluent_kafka import KafkaError, TopicPartition

from sauci.storage._stream_logs import KafkaLog, LogGap

EOF_CODE = KafkaError._PARTITION_EOF


class Message:
    def __init__(self, offset: int, hw: int, *, eof: bool = False) -> None:
        self._offset, self.hw, self._eof = offset, hw, eof

    def error(self) -> Any:
        return KafkaError(EOF_CODE) if self._eof else None

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes:
        return b'{"n": %d}' % self._offset

    def headers(self) -> list[tuple[str, bytes]]:
        return [("d", b"")]


class Broker:
    """Serves ``batches`` (each: how many entries, the high watermark its fetch
    answer reports); ListOffsets answers ``listed``."""

    def __init__(self, batches: list[tuple[int, int]], listed: int) -> None:
        self.batches, self.listed = batches, listed
        self.queue: list[Message] = []
        self.cached = -1001
        self.polls = 0

    def get_watermark_offsets(
        self, tp: Any, timeout: float = 0, cached: bool = False
    ) -> tuple[int, int]:
        return (0, self.cached if cached else self.listed)

    def assign(self, parts: list[Any]) -> None:
        offset, first, hw = parts[0].offset, 0, -1
        self.queue = []
        for size, hw in self.batches:
            self.queue += [Message(i, hw) for i in range(max(first, offset), first + size)]
            first += size
        if first == hw:  # the position meets the watermark the last fetch reported
            self.queue.append(Message(first, hw, eof=True))

    def consume(self, count: int, timeout: float) -> list[Message]:
        out, self.queue = self.queue[:count], self.queue[count:]
        for m in out:
            self.cached = m.hw
        return out

    def poll(self, timeout: float) -> Message | None:
        self.polls += 1
        return self.consume(1, timeout)[0] if self.queue else None


def _log(broker: Broker) -> KafkaLog:
    log = KafkaLog.__new__(KafkaLog)
    log.name, log._timeout, log._tp = "t.stream", 5.0, TopicPartition
    log._eof_code, log._consumer = EOF_CODE, broker
    log._next = None
    return log


def _catch_up_afresh(log: KafkaLog) -> list[int]:
    """What a view catching up afresh reads (StreamView._catch_up(afresh=True))."""
    got: list[int] = []
    while True:
        after = got[-1] if got else None
        entries = log.read(after, None) or log.read_on(after)
        if not entries:
            return got
        got += [offset for offset, _, _ in entries]


def test_a_view_afresh_reads_past_a_watermark_behind_what_the_broker_serves() -> None:
    # The first batch comes with the watermark from before the restart.
    broker = Broker([(13, 13), (6, 19)], listed=13)
    assert _catch_up_afresh(_log(broker)) == list(range(19))


def test_only_reading_to_the_watermark_stops_short() -> None:
    # What the view did before: the same broker, no read on.
    log = _log(Broker([(13, 13), (6, 19)], listed=13))
    got = [o for o, _, _ in log.read(None, None)]
    assert got == list(range(13)) and log.read(12, None) == []


def test_at_the_end_the_broker_says_so_at_once() -> None:
    broker = Broker([(5, 5)], listed=5)
    log = _log(broker)
    assert _catch_up_afresh(log) == list(range(5))
    assert broker.polls == 1  # one poll: the end of partition, no waiting


def test_a_read_on_that_finds_the_log_went_back_says_so() -> None:
    broker = Broker([(2, 2)], listed=2)
    log = _log(broker)
    broker.queue = [Message(0, 2), Message(1, 2)]  # reset to the first offset
    log._next = 5
    with pytest.raises(LogGap):
        log.read_on(4)


def test_an_end_of_partition_before_a_writers_entry_is_not_its_answer() -> None:
    broker = Broker([(3, 3)], listed=3)
    log = _log(broker)
    assert _catch_up_afresh(log) == [0, 1, 2]
    # Another entry is appended; the consumer had said end of partition at 3.
    broker.listed = 4
    broker.queue = [Message(3, 3, eof=True), Message(3, 4)]
    assert [o for o, _, _ in log.read(2, 3)] == [3]
