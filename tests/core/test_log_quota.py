"""The log quota of a whole build: every step and matrix entry together keep at
most the build's budget; a step still writing when it runs out is ended with
the reason "log limit", and the build says so."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from sauci.app import LocalRunner
from sauci.core.config import Settings
from sauci.core.logsink import LogBudget, LogSink
from sauci.core.models import (
    DEFAULT_BUILD_LOG_LIMIT,
    BuildRequest,
    EndedBy,
    Status,
)
from sauci.core.pipeline import parse_pipeline
from sauci.storage.memory import MemoryStore

KIB = 1024
MIB = 1024 * KIB


def test_the_default_build_budget_is_1_gib():
    assert 1024 * MIB == DEFAULT_BUILD_LOG_LIMIT


def test_sinks_sharing_a_budget_keep_at_most_it_together(tmp_path: Path):
    """The second step's write is cut where the build's budget ends; the first
    step, which wrote no more, is not cut."""
    budget = LogBudget(1000)
    ended: list[str] = []
    first = LogSink(tmp_path / "a.log", budget=budget, on_exceeded=lambda: ended.append("a"))
    second = LogSink(tmp_path / "b.log", budget=budget, on_exceeded=lambda: ended.append("b"))
    first.write(b"a" * 600)
    second.write(b"b" * 600)
    second.write(b"b" * 600)  # dropped
    first.close()
    second.close()
    notice = b"\nsauci: the build's logs exceeded 1000 bytes; output after that was dropped\n"
    assert b"a" * 600 == (tmp_path / "a.log").read_bytes()
    assert b"b" * 400 + notice == (tmp_path / "b.log").read_bytes()
    assert (False, True) == (first.budget_spent, second.budget_spent)
    assert ["b"] == ended  # once, by the sink that hit it
    assert "the build's logs exceeded 1000 bytes; output after that was dropped" == second.reason
    assert 0 == budget.left


def test_exactly_the_budget_is_not_exceeded(tmp_path: Path):
    budget = LogBudget(10)
    with LogSink(tmp_path / "a.log", budget=budget) as sink:
        sink.write(b"0123456789")
    assert (False, False, 0) == (sink.exceeded, sink.budget_spent, budget.left)


def test_a_step_over_its_own_limit_is_not_blamed_on_the_build(tmp_path: Path):
    """The step's own limit hit first: its reason, and the budget keeps the rest."""
    budget = LogBudget(10_000)
    ended: list[bool] = []
    with LogSink(
        tmp_path / "a.log", limit=1000, budget=budget, on_exceeded=lambda: ended.append(True)
    ) as sink:
        sink.write(b"x" * 1500)
    assert (True, False) == (sink.exceeded, sink.budget_spent)
    assert "log exceeded 1000 bytes; output after that was dropped" == sink.reason
    assert [True] == ended
    assert 9000 == budget.left


def test_a_negative_budget_is_refused():
    with pytest.raises(ValueError, match="negative"):
        LogBudget(-1)


def test_threads_writing_at_once_never_take_more_than_the_budget(tmp_path: Path):
    """Four sinks on four threads, writing 64 KiB pieces: exactly the budget is
    kept between them, whatever the interleaving."""
    budget = LogBudget(3 * MIB + 123)
    sinks = [LogSink(tmp_path / f"{i}.log", budget=budget, timestamps=False) for i in range(4)]
    piece = b"y\n" * (32 * KIB)

    def flood(sink: LogSink) -> None:
        while not sink.exceeded:
            sink.write(piece)
        sink.close()

    threads = [threading.Thread(target=flood, args=(s,)) for s in sinks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    notice = b"\nsauci: the build's logs exceeded 3 MiB; output after that was dropped\n"
    kept = [(tmp_path / f"{i}.log").read_bytes() for i in range(4)]
    assert [True] * 4 == [s.exceeded for s in sinks]
    assert 3 * MIB + 123 == sum(len(k.removesuffix(notice)) for k in kept)


FLOOD = """\
steps:
  flood:
    name: flood ${{ matrix.n }}
    run: yes "flood line from entry ${{ matrix.n }}"
    needs: []
    matrix:
      n: [1, 2, 3, 4]
  quiet:
    run: sleep 0.3
    needs: []
"""


def test_a_flooding_matrix_is_ended_at_the_build_budget(tmp_path: Path):
    """Four `yes` entries in parallel and a small build budget: each flooding
    entry ends "failed" with the reason "log limit", the quiet step passes, the
    build names the limit, and the logs on disk hold no more than the budget
    (beside one notice line per step)."""
    budget = 2 * MIB
    settings = Settings(data_dir=tmp_path / "data", jobs=8, grace=1.0)
    store = MemoryStore()
    runner = LocalRunner(store=store, settings=settings, secrets={})
    runner.executor.build_log_limit = budget
    pipeline = parse_pipeline(FLOOD.encode(), ".sauci.yml")
    workspace = tmp_path / "ws"
    workspace.mkdir()

    outcome = runner.run_pipeline(pipeline, workspace, BuildRequest(repo="flood"))

    floods = [s for s in outcome.steps if s.name.startswith("flood")]
    assert 4 == len(floods)
    why = "log limit: the build's logs exceeded 2 MiB (all steps together); this step was ended"
    assert [(Status.FAILED, EndedBy.LOG_LIMIT, why)] * 4 == [
        (s.status, s.ended_by, s.reason) for s in floods
    ]
    assert Status.PASSED == outcome.step("quiet").status
    assert Status.FAILED == outcome.build.status
    assert outcome.build.reason is not None and "log limit" in outcome.build.reason
    notice = b"\nsauci: the build's logs exceeded 2 MiB; output after that was dropped\n"
    logs = [Path(str(s.log_path)).read_bytes() for s in floods]
    assert [True] * 4 == [log.endswith(notice) for log in logs]
    assert budget == sum(len(log) - len(notice) for log in logs)
    stored = [store.read_log(outcome.build.id, s.name) for s in floods]
    assert logs == stored


def test_a_step_that_starts_after_the_budget_is_spent_is_ended_when_it_writes(tmp_path: Path):
    """The budget is the build's, not the moment's: a later step that writes
    is ended too, and one that writes nothing passes."""
    settings = Settings(data_dir=tmp_path / "data", grace=1.0)
    runner = LocalRunner(store=MemoryStore(), settings=settings, secrets={})
    runner.executor.build_log_limit = 64 * KIB
    pipeline = parse_pipeline(
        b"steps:\n"
        b"  first: {run: 'head -c 100000 /dev/zero', allow_failure: true}\n"
        b"  silent: {run: 'true'}\n"
        b"  later: {run: 'echo one; sleep 5; echo two'}\n",
        ".sauci.yml",
    )
    workspace = tmp_path / "ws"
    workspace.mkdir()

    outcome = runner.run_pipeline(pipeline, workspace, BuildRequest(repo="later"))

    assert [
        ("first", Status.FAILED, EndedBy.LOG_LIMIT),
        ("silent", Status.PASSED, None),
        ("later", Status.FAILED, EndedBy.LOG_LIMIT),
    ] == [(s.name, s.status, s.ended_by) for s in outcome.steps]
    notice = b"\nsauci: the build's logs exceeded 64 KiB; output after that was dropped\n"
    assert notice == Path(str(outcome.step("later").log_path)).read_bytes()  # not even "one"
