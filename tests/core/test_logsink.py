"""LogSink: bytes to disk exactly (masked, capped), chunks to the store, the
timestamps sidecar, and following a growing log."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest

from sauci.core.logsink import LogSink, follow, format_size, read_timestamps
from sauci.typing import LogWriter


class FakeStore:
    """Records append_log calls."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.calls: list[tuple[int | None, str | None, bytes]] = []
        self.fail_after = fail_after

    def append_log(self, build_id: int | None, step: str | None, data: bytes) -> int:
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise ConnectionError("store is down")
        self.calls.append((build_id, step, data))
        return sum(len(c[2]) for c in self.calls)

    @property
    def data(self) -> bytes:
        return b"".join(c[2] for c in self.calls)


def test_satisfies_the_logwriter_protocol(tmp_path: Path) -> None:
    with LogSink(tmp_path / "a.log") as sink:
        assert isinstance(sink, LogWriter)


def test_bytes_go_to_the_file_as_they_come(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "step.log"
    sink = LogSink(path)
    sink.write(b"first line\n")
    assert b"first line\n" == path.read_bytes()  # before close: followers see it
    sink.write(b"\xff\xfe not utf-8 \x00\x01\n")
    sink.close()
    assert b"first line\n\xff\xfe not utf-8 \x00\x01\n" == path.read_bytes()
    assert len(path.read_bytes()) == sink.bytes_written
    assert not sink.exceeded
    assert sink.reason is None


def test_appends_to_an_existing_log(tmp_path: Path) -> None:
    path = tmp_path / "step.log"
    path.write_bytes(b"attempt 1\n")
    with LogSink(path) as sink:
        sink.write(b"attempt 2\n")
    assert b"attempt 1\nattempt 2\n" == path.read_bytes()
    assert [10] == [offset for offset, _ in read_timestamps(path)]  # file offsets


def test_secret_split_across_writes_is_masked(tmp_path: Path) -> None:
    path = tmp_path / "step.log"
    with LogSink(path, secrets=["hunter2"]) as sink:
        sink.write(b"password=hun")
        sink.write(b"ter2 and again hunter2")
        sink.write(b"\nend hu")
    assert b"password=*** and again ***\nend hu" == path.read_bytes()


def test_a_step_ending_in_the_middle_of_a_secret_has_that_part_masked(tmp_path: Path) -> None:
    """Half a secret is still a leak: an end that begins a secret is masked
    from 3 bytes on (the shortest secret masked at all)."""
    path = tmp_path / "step.log"
    with LogSink(path, secrets=["hunter2"]) as sink:
        sink.write(b"password=hunte")
    assert b"password=***" == path.read_bytes()


def test_secrets_are_masked_longest_first_and_short_ones_ignored(tmp_path: Path) -> None:
    path = tmp_path / "step.log"
    with LogSink(path, secrets=["abc", "abcdef", "xy", ""]) as sink:
        sink.write(b"abcdef abc xy")
    assert b"*** *** xy" == path.read_bytes()


def test_a_longer_secret_completed_by_the_next_write_wins(tmp_path: Path) -> None:
    path = tmp_path / "step.log"
    with LogSink(path, secrets=["aaa", "aaab"]) as sink:
        sink.write(b"xaaa")  # "aaa" now, but "aaab" once the next byte comes
        sink.write(b"b and aaa")
    assert b"x*** and ***" == path.read_bytes()


def test_no_holding_back_without_secrets(tmp_path: Path) -> None:
    path = tmp_path / "step.log"
    sink = LogSink(path)
    sink.write(b"partial")
    assert b"partial" == path.read_bytes()
    sink.close()


def test_size_cap(tmp_path: Path) -> None:
    path = tmp_path / "step.log"
    with LogSink(path, limit=1000) as sink:
        sink.write(b"a" * 600)
        sink.write(b"b" * 600)
        assert sink.exceeded
        sink.write(b"c" * 600)  # dropped
    notice = b"\nsauci: log exceeded 1000 bytes; output after that was dropped\n"
    assert b"a" * 600 + b"b" * 400 + notice == path.read_bytes()
    assert "log exceeded 1000 bytes; output after that was dropped" == sink.reason
    assert 1000 + len(notice) == sink.bytes_written


def test_exactly_at_the_cap_is_not_exceeded(tmp_path: Path) -> None:
    with LogSink(tmp_path / "step.log", limit=10) as sink:
        sink.write(b"0123456789")
    assert not sink.exceeded


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (100 * 1024 * 1024, "100 MiB"),
        (1024 * 1024, "1 MiB"),
        (1536, "1.5 KiB"),
        (3 * 1024**3, "3 GiB"),
        (999, "999 bytes"),
        (3 * 1024 * 1024 + 123, "3 MiB"),  # was "3. MiB"
        (int(2.96 * 1024**3), "3 GiB"),
    ],
)
def test_format_size(size: int, text: str) -> None:
    assert text == format_size(size)


def test_chunks_go_to_the_store_by_size(tmp_path: Path) -> None:
    store = FakeStore()
    path = tmp_path / "step.log"
    with LogSink(path, store=store, build_id=7, step="test", flush_interval=3600) as sink:
        for _ in range(1000):
            sink.write(b"x" * 1023 + b"\n")  # 1000 lines of 1 KiB
        assert 15 == len(store.calls)  # one per 64 KiB, not one per line
    assert 16 == len(store.calls)  # the rest on close
    assert {(7, "test")} == {(b, s) for b, s, _ in store.calls}
    assert path.read_bytes() == store.data


def test_chunks_go_to_the_store_by_time(tmp_path: Path) -> None:
    store = FakeStore()
    with LogSink(tmp_path / "step.log", store=store, flush_interval=0.05) as sink:
        sink.write(b"one\n")
        time.sleep(0.06)
        sink.write(b"two\n")
        assert b"one\ntwo\n" == store.data  # sent on the write after 50 ms


def test_flush_sends_pending_bytes_but_keeps_a_possible_secret(tmp_path: Path) -> None:
    store = FakeStore()
    with LogSink(tmp_path / "step.log", store=store, flush_interval=3600, secrets=["s3cret"]) as s:
        s.write(b"hello s3c")
        s.flush()
        assert b"hello " == store.data  # only what may begin the secret waits
        s.write(b"ret")
    assert b"hello ***" == store.data


def test_store_error_keeps_the_disk_log(tmp_path: Path) -> None:
    store = FakeStore(fail_after=1)
    path = tmp_path / "step.log"
    with LogSink(path, store=store, flush_interval=0) as sink:
        for i in range(5):
            sink.write(f"line {i}\n".encode())
    assert b"".join(f"line {i}\n".encode() for i in range(5)) == path.read_bytes()
    assert isinstance(sink.store_error, ConnectionError)
    assert [b"line 0\n"] == [c[2] for c in store.calls]  # a clean prefix, no gaps


def test_timestamps_sidecar(tmp_path: Path) -> None:
    path = tmp_path / "step.log"
    before = time.time()
    with LogSink(path) as sink:
        sink.write(b"first\n")
        sink.write(b"second\n")
    after = time.time()
    stamps = read_timestamps(path)
    assert [0, 6] == [offset for offset, _ in stamps]
    assert all(before - 0.001 <= t <= after + 0.001 for _, t in stamps)
    assert b"first\nsecond\n" == path.read_bytes()  # the log itself is unchanged
    text = Path(f"{path}.ts").read_text()
    assert re.fullmatch(r"(\d+ \d+\.\d{3}\n)+", text)


def test_timestamps_can_be_turned_off(tmp_path: Path) -> None:
    with LogSink(tmp_path / "step.log", timestamps=False) as sink:
        sink.write(b"x")
    assert not Path(f"{tmp_path / 'step.log'}.ts").exists()
    assert [] == read_timestamps(tmp_path / "step.log")


def test_on_data_sees_masked_bytes_and_its_errors_are_contained(tmp_path: Path) -> None:
    seen: list[bytes] = []

    def viewer(data: bytes) -> None:
        seen.append(data)
        raise RuntimeError("viewer went away")

    path = tmp_path / "step.log"
    with LogSink(path, secrets=["token123"], on_data=viewer) as sink:
        sink.write(b"use token123 now")
    assert b"use *** now" == b"".join(seen) == path.read_bytes()


def test_write_after_close_is_an_error(tmp_path: Path) -> None:
    sink = LogSink(tmp_path / "step.log")
    sink.close()
    sink.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        sink.write(b"late")


def test_a_large_log_is_written_exactly(tmp_path: Path) -> None:
    line = (
        b"%06d some typical log line of about a hundred bytes ...................................\n"
    )
    data = b"".join(line % i for i in range(20_000))
    path = tmp_path / "step.log"
    store = FakeStore()
    with LogSink(path, store=store, secrets=["not-in-the-log"]) as sink:
        for i in range(0, len(data), 65536):
            sink.write(data[i : i + 65536])
    assert data == path.read_bytes() == store.data
    assert len(store.calls) <= len(data) // 65536 + 2


def test_follow_yields_bytes_as_the_file_grows(tmp_path: Path) -> None:
    path = tmp_path / "step.log"
    done = threading.Event()
    pieces = [f"piece {i}\n".encode() for i in range(20)]

    def writer() -> None:
        with LogSink(path) as sink:
            for piece in pieces:
                sink.write(piece)
                time.sleep(0.005)
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    got = b"".join(follow(path, stop=done, interval=0.01))
    thread.join()
    assert b"".join(pieces) == got


def test_follow_from_an_offset(tmp_path: Path) -> None:
    path = tmp_path / "step.log"
    path.write_bytes(b"0123456789")
    assert b"56789" == b"".join(follow(path, 5, stop=lambda: True))


def test_a_silent_step_has_no_timestamps_file_until_it_writes(tmp_path: Path) -> None:
    path = tmp_path / "step.log"
    with LogSink(path) as sink:
        assert path.exists() and not Path(f"{path}.ts").exists()
        assert [] == read_timestamps(path)
        sink.write(b"late\n")
        sink.flush()
        assert [0] == [offset for offset, _ in read_timestamps(path)]
    with LogSink(tmp_path / "quiet.log"):
        pass
    assert (tmp_path / "quiet.log").exists() and not (tmp_path / "quiet.log.ts").exists()
