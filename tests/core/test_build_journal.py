"""A build's journal (sauci.core.journal): every step end, test result,
artifact record and the build's end is on disk before the store is sent it;
what the store did not take is replayed later, in order, never twice and
never backwards; a cut last line is skipped; a running build's journal is
left to its runner."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import attrs

from sauci import BuildRequest, Pipeline, Status, Step
from sauci.app import LocalRunner
from sauci.core.config import Settings
from sauci.core.journal import BuildJournals, journal_dir, pending_journals, replay_journals
from sauci.core.models import StepRun
from sauci.core.records import TestCase
from sauci.core.undelivered import deliver_pending, pending_notes
from sauci.exceptions import StoreError
from sauci.monitoring.health import readiness
from sauci.storage import MemoryStore

JUNIT = (
    '<testsuite name="s"><testcase classname="c" name="ok"/>'
    '<testcase classname="c" name="bad"><failure message="no"/></testcase></testsuite>'
)
PIPELINE = Pipeline(
    steps=[
        Step(name="test", run=f"echo '{JUNIT}' > report.xml", junit=["report.xml"]),
        Step(name="after", run="echo after"),
    ]
)


def _unreachable() -> StoreError:
    try:
        raise ConnectionRefusedError(111, "Connection refused")
    except OSError as exc:
        try:
            raise StoreError("down") from exc
        except StoreError as err:
            return err


class Outage(MemoryStore):
    """A MemoryStore that goes away for good once a step is saved "passed"."""

    down = False

    def save_step(self, step):
        if step.status is Status.PASSED:
            self.down = True
        if self.down:
            raise _unreachable()
        return super().save_step(step)

    def __getattribute__(self, name):
        value = super().__getattribute__(name)
        if name in ("save_step", "down") or name.startswith("_") or not callable(value):
            return value
        if super().__getattribute__("down"):

            def refuse(*_a, **_kw):
                raise _unreachable()

            return refuse
        return value


def _run(store, tmp_path: Path, *, deadline: float = 60.0):
    settings = Settings(data_dir=tmp_path / "data")
    runner = LocalRunner(store=store, settings=settings, secrets={}, store_retry=deadline)
    ws = tmp_path / "ws"
    ws.mkdir(exist_ok=True)
    return settings, runner.run_pipeline(PIPELINE, ws, BuildRequest(repo="/r")).build


def _tests(store, build_id):
    return sorted(
        (step, case.name, case.status) for step, case in store.list_test_results(build_id)
    )


def test_a_build_that_ends_leaves_no_journal(tmp_path):
    store = MemoryStore()
    settings, build = _run(store, tmp_path)
    assert build.status is Status.PASSED  # the step passed; a failed case is a result
    assert _tests(store, build.id) == [("test", "bad", "failed"), ("test", "ok", "passed")]
    assert pending_journals(settings.data_dir) == []


def test_past_the_deadline_the_journal_delivers_the_step_end_and_its_tests(tmp_path):
    store = Outage()
    settings, ended = _run(store, tmp_path, deadline=0.3)
    assert ended.status is Status.ERRORED and ended.reason.startswith("store unavailable")
    assert len(pending_journals(settings.data_dir)) == 1
    assert deliver_pending(store, settings.data_dir) == 0  # still away: all kept
    ready = readiness(store, settings.data_dir, checks=("store",))
    assert "the data of 1 build(s) waits on disk" in ready.checks["store"]
    assert len(pending_journals(settings.data_dir)) == 1 and pending_notes(settings.data_dir)

    store.down = False
    store.save_step = super(Outage, store).save_step  # back for good
    deliver_pending(store, settings.data_dir)
    assert pending_journals(settings.data_dir) == [] and pending_notes(settings.data_dir) == []
    build = store.get_build(ended.id)
    assert build.status is Status.ERRORED  # never "passed" with data that came late
    steps = {s.name: s.status for s in store.list_steps(build.id)}
    assert steps["test"] is Status.PASSED  # its real end, from the journal
    assert steps["after"].done
    assert _tests(store, build.id) == [("test", "bad", "failed"), ("test", "ok", "passed")]


def _journal(tmp_path: Path, store, lines: list[dict], *, tail: bytes = b"") -> Path:
    build = store.create_build(BuildRequest(repo="/r"), status=Status.RUNNING)
    folder = journal_dir(tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{build.uuid}.jsonl"
    body = [{"build_id": build.id, "uuid": build.uuid}]
    body += [{"n": i, **line} for i, line in enumerate(lines, start=1)]
    path.write_bytes(b"".join(json.dumps(x).encode() + b"\n" for x in body) + tail)
    return path


def _step(build_id: int, status: str, **extra) -> dict:
    run = StepRun(build_id=build_id, name="s", status=Status(status), **extra)
    return {"op": "step", "step": json.loads(json.dumps(attrs.asdict(run)))}


def test_a_replay_never_duplicates_nor_moves_a_step_backwards(tmp_path):
    store = MemoryStore()
    build_id = 1
    case = {"name": "t", "classname": "c", "status": "passed", "duration": 0.5}
    case |= {"message": "", "text": "", "file": ""}
    lines = [
        _step(build_id, "running", attempt=1),
        {"op": "tests", "name": "s", "cases": [case]},
        _step(build_id, "passed", attempt=1),
        _step(build_id, "running", attempt=1),  # stale: must not undo "passed"
        {"op": "tests", "name": "s", "cases": [case]},  # sent twice: one copy
        {"op": "end", "worker": "", "status": "passed", "reason": None, "finished_at": 1.0},
    ]
    path = _journal(tmp_path, store, lines)
    store.update_build(build_id, claimed_by="")
    assert replay_journals(store, tmp_path) == 1
    assert not path.exists()
    (step,) = store.list_steps(build_id)
    assert step.status is Status.PASSED
    assert store.list_test_results(build_id) == [
        ("s", TestCase(name="t", classname="c", duration=0.5))
    ]
    assert store.get_build(build_id).status is Status.PASSED

    # The same journal once more (a copy kept by a crash): nothing changes.
    store.save_step(attrs.evolve(step, status=Status.ERRORED, reason="runner lost"))
    _journal(tmp_path, store, [])  # build 2, empty: simply removed
    again = journal_dir(tmp_path) / "again.jsonl"
    again.write_bytes(
        json.dumps({"build_id": build_id, "uuid": store.get_build(build_id).uuid}).encode()
        + b"\n"
        + b"".join(json.dumps({"n": i, **x}).encode() + b"\n" for i, x in enumerate(lines, 1))
    )
    assert replay_journals(store, tmp_path) == 2
    (step,) = store.list_steps(build_id)
    assert (step.status, step.reason) == (Status.ERRORED, "runner lost")  # an end stays
    assert len(store.list_test_results(build_id)) == 1


def test_a_line_cut_by_a_crash_mid_write_is_skipped(tmp_path):
    store = MemoryStore()
    lines = [_step(1, "running", attempt=1), _step(1, "passed", attempt=1)]
    path = _journal(tmp_path, store, lines, tail=b'{"n": 3, "op": "tests", "name": "s", "ca')
    assert replay_journals(store, tmp_path) == 1
    assert not path.exists()
    assert [s.status for s in store.list_steps(1)] == [Status.PASSED]
    assert store.list_test_results(1) == []


def test_a_running_builds_journal_is_left_to_its_runner(tmp_path):
    store = MemoryStore()
    build = store.create_build(BuildRequest(repo="/r"), status=Status.RUNNING)
    journals = BuildJournals(journal_dir(tmp_path))
    with journals.open(build):
        (path,) = pending_journals(tmp_path)
        assert replay_journals(store, tmp_path) == 0
        assert path.exists()
    assert pending_journals(tmp_path) == []  # nothing owed: removed at the end


def test_a_journal_of_another_store_is_dropped(tmp_path):
    store = MemoryStore()
    path = _journal(tmp_path, store, [_step(1, "passed")])
    assert replay_journals(MemoryStore(), tmp_path) == 1
    assert not path.exists()


class NoResults(MemoryStore):
    """A MemoryStore that cannot be reached for test results while ``down``."""

    down = True

    def add_test_results(self, build_id, step, cases):
        if self.down:
            raise _unreachable()
        super().add_test_results(build_id, step, cases)


def test_a_build_never_ends_passed_while_its_journal_owes_the_store(tmp_path):
    store = NoResults()
    settings = Settings(data_dir=tmp_path / "data")
    runner = LocalRunner(store=store, settings=settings, secrets={}, store_retry=0.2)
    build = store.create_build(BuildRequest(repo="/r"), status=Status.RUNNING)
    build = store.update_build(build.id, claimed_by=runner.name)
    with runner.journals.open(build):
        with contextlib.suppress(StoreError):  # a write that failed and was swallowed
            runner.executor.store.add_test_results(build.id, "s", [TestCase(name="t")])
        ended = runner._end(build, Status.PASSED, None)
    assert ended.status is Status.ERRORED and "store unavailable" in ended.reason
    assert "1 writes of its journal" in ended.reason
    store.down = False
    deliver_pending(store, settings.data_dir)
    assert store.list_test_results(build.id) == [("s", TestCase(name="t"))]
    assert store.get_build(build.id).status is Status.ERRORED
    assert pending_journals(settings.data_dir) == [] and pending_notes(settings.data_dir) == []
