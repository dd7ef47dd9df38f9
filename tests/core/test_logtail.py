"""The last lines of a step's log: read from the end, cleaned, bounded."""

from __future__ import annotations

import builtins
from pathlib import Path

import pytest

from sauci.core import logtail
from sauci.core.logtail import MAX_TAIL_BYTES, clean_line, read_tail, step_tail
from sauci.core.models import BuildRequest, Status, StepRun
from sauci.storage.memory import MemoryStore


def test_the_last_lines_in_order(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_bytes(b"".join(b"line %d\n" % i for i in range(100)))
    assert [f"line {i}" for i in range(80, 100)] == read_tail(log)
    assert ["line 99"] == read_tail(log, 1)


def test_a_log_without_a_final_newline_and_shorter_than_asked(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_bytes(b"one\n\ntwo\nthree")
    assert ["one", "two", "three"] == read_tail(log, 20)


def test_ansi_and_control_characters_are_stripped_and_progress_bars_show_their_end() -> None:
    assert "ERROR failed" == clean_line("\x1b[31;1mERROR\x1b[0m failed\x07")
    assert "100% done" == clean_line(" 10%\r 50%\r100% done\r")
    assert "title" == clean_line("\x1b]0;window\x07title")


def test_a_huge_log_is_read_only_at_its_end(tmp_path: Path, monkeypatch) -> None:
    """A 1 GiB log (sparse): the tail reads at most MAX_TAIL_BYTES of it."""
    log = tmp_path / "big.log"
    with log.open("wb") as fh:
        fh.truncate(1 << 30)
        fh.seek(1 << 30)
        fh.write(b"\nthe end is near\nthe end\n")
    read = []
    real_open = builtins.open

    class Counting:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def seek(self, *a):
            return self.fh.seek(*a)

        def read(self, n=-1):
            data = self.fh.read(n)
            read.append(len(data))
            return data

    monkeypatch.setattr(
        logtail, "open", lambda *a, **k: Counting(real_open(*a, **k)), raising=False
    )
    assert ["the end is near", "the end"] == read_tail(log)
    assert 0 < sum(read) <= MAX_TAIL_BYTES


def test_one_enormous_line_is_cut(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_bytes(b"start\n" + b"x" * (1 << 20) + b"\n")
    (line,) = read_tail(log)
    assert line.startswith("…xxx") and len(line) == logtail.MAX_LINE_CHARS + 2


def test_a_missing_file_has_no_tail(tmp_path: Path) -> None:
    assert [] == read_tail(tmp_path / "nope")


@pytest.mark.parametrize("with_size", [True, False])
def test_without_the_file_the_store_s_chunks_give_the_tail(tmp_path: Path, with_size) -> None:
    store = MemoryStore()
    build = store.create_build(BuildRequest(repo="r"))
    data = b"".join(b"chunk line %d\n" % i for i in range(10_000))
    store.append_log(build.id, "test", data)
    step = StepRun(
        build_id=build.id,
        name="test",
        status=Status.FAILED,
        log_path=str(tmp_path / "elsewhere.log"),
        log_bytes=len(data) if with_size else 0,
    )
    assert [f"chunk line {i}" for i in range(9980, 10_000)] == step_tail(store, step)
