"""Conformance tests of the LogStore part: sizes, random ranges, binary bytes,
1 MiB in 64 KiB chunks, concurrent appends."""

from __future__ import annotations

import random
from collections import Counter
from typing import ClassVar

import pytest

from sauci.exceptions import NotFoundError
from sauci.testing._store_support import MISSING_ID, StorePartConformance, build_request, race
from sauci.typing import LogStore, Store

__all__ = ["LogStoreConformance"]


class LogStoreConformance(StorePartConformance):
    """Logs appended in chunks and read by range."""

    parts: ClassVar[tuple[type, ...]] = (LogStore,)

    def test_append_log_returns_the_new_size(self, store: Store) -> None:
        build = store.create_build(build_request())
        assert 0 == store.log_size(build.id, "test")
        assert 6 == store.append_log(build.id, "test", b"hello ")
        assert 6 == store.append_log(build.id, "test", b"")
        assert 11 == store.append_log(build.id, "test", b"world")
        assert 11 == store.log_size(build.id, "test")
        assert b"hello world" == store.read_log(build.id, "test")

    def test_read_log_of_random_ranges(self, store: Store) -> None:
        rng = random.Random(1234)
        build = store.create_build(build_request())
        expected = b""
        for _ in range(40):
            chunk = rng.randbytes(rng.choice([1, 2, 7, 100, 1000, 4096]))
            expected += chunk
            assert len(expected) == store.append_log(build.id, "test", chunk)
        size = len(expected)
        assert size == store.log_size(build.id, "test")
        assert expected == store.read_log(build.id, "test")
        for _ in range(200):
            offset = rng.randint(0, size + 10)
            limit = rng.choice([None, 0, 1, rng.randint(0, 100), rng.randint(0, size + 10)])
            end = size if limit is None else offset + limit
            assert expected[offset:end] == store.read_log(build.id, "test", offset, limit)
        assert b"" == store.read_log(build.id, "test", size)
        assert b"" == store.read_log(build.id, "test", size + 100, 5)

    def test_log_is_binary_safe(self, store: Store) -> None:
        build = store.create_build(build_request())
        data = bytes(range(256)) + b"\xff\xfe\x00\xc3\x28\xa0\xa1\xe2\x28\xa1\x00"
        store.append_log(build.id, "test", data[:100])
        store.append_log(build.id, "test", data[100:])
        assert data == store.read_log(build.id, "test")
        assert data[95:110] == store.read_log(build.id, "test", 95, 15)

    def test_large_log_in_64_kib_chunks(self, store: Store) -> None:
        build = store.create_build(build_request())
        data = random.Random(7).randbytes(1024 * 1024 + 17)
        for i in range(0, len(data), 65536):
            store.append_log(build.id, "big", data[i : i + 65536])
        assert len(data) == store.log_size(build.id, "big")
        assert data == store.read_log(build.id, "big")
        for offset, limit in ((65530, 20), (0, 65536), (65536, 65536), (len(data) - 5, 100)):
            assert data[offset : offset + limit] == store.read_log(build.id, "big", offset, limit)

    def test_logs_belong_to_their_build_and_step(self, store: Store) -> None:
        one = store.create_build(build_request())
        two = store.create_build(build_request())
        store.append_log(one.id, "lint", b"lint output")
        store.append_log(one.id, "test", b"test output")
        store.append_log(two.id, "lint", b"other")
        assert b"lint output" == store.read_log(one.id, "lint")
        assert b"test output" == store.read_log(one.id, "test")
        assert b"other" == store.read_log(two.id, "lint")
        assert b"" == store.read_log(two.id, "test")
        assert 0 == store.log_size(two.id, "test")
        assert b"" == store.read_log(MISSING_ID, "lint")
        assert 0 == store.log_size(MISSING_ID, "lint")

    def test_append_log_of_a_missing_build_raises_not_found(self, store: Store) -> None:
        with pytest.raises(NotFoundError):
            store.append_log(MISSING_ID, "test", b"data")
        with pytest.raises(NotFoundError):
            store.append_log(MISSING_ID, "test", b"")

    def test_read_log_rejects_negative_ranges(self, store: Store) -> None:
        build = store.create_build(build_request())
        with pytest.raises(ValueError):
            store.read_log(build.id, "test", -1)
        with pytest.raises(ValueError):
            store.read_log(build.id, "test", 0, -1)

    def test_concurrent_appends_keep_every_chunk(self, store: Store) -> None:
        build = store.create_build(build_request())
        sizes: list[int] = []

        def append(i: int) -> None:
            for j in range(10):
                sizes.append(store.append_log(build.id, "shared", bytes([i * 10 + j]) * 100))
                store.append_log(build.id, f"own-{i}", bytes([j]) * 10)

        race(4, append)
        assert list(range(100, 4001, 100)) == sorted(sizes)
        log = store.read_log(build.id, "shared")
        assert Counter(bytes([n]) * 100 for n in range(40)) == Counter(
            log[i : i + 100] for i in range(0, len(log), 100)
        )
        for i in range(4):
            assert b"".join(bytes([j]) * 10 for j in range(10)) == store.read_log(
                build.id, f"own-{i}"
            )
