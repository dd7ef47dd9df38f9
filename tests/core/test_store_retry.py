"""A store that fails for a while: calls wait it out (RetryingStore), a LogSink
keeps the bytes on disk and sends them again, and past the deadline nothing is
called delivered that is not."""

from __future__ import annotations

import pytest

from sauci.core.logsink import LogSink
from sauci.core.models import BuildRequest, Status
from sauci.core.store_retry import RetryingStore, StoreUnavailableError, is_unreachable
from sauci.core.undelivered import deliver_pending, note_undelivered, pending_notes
from sauci.exceptions import NotFoundError, StoreError
from sauci.monitoring.health import readiness
from sauci.storage import MemoryStore


def _unreachable(what: str = "append") -> StoreError:
    try:
        raise ConnectionRefusedError(111, "Connection refused")
    except OSError as exc:
        try:
            raise StoreError(f"{what}: down") from exc
        except StoreError as err:
            return err


class Flaky(MemoryStore):
    """A MemoryStore whose append_log fails while ``down`` is true."""

    down = False

    def append_log(self, build_id, step, data):
        if self.down:
            raise _unreachable()
        return super().append_log(build_id, step, data)

    def list_builds(self, *a, **kw):
        if self.down:
            raise _unreachable("list")
        return super().list_builds(*a, **kw)


def test_only_an_unreachable_store_is_retried():
    assert is_unreachable(_unreachable())
    assert not is_unreachable(StoreError("the log is kept in a file"))
    assert not is_unreachable(NotFoundError("build 3 not found"))


def test_a_call_waits_out_a_short_outage_and_gives_up_past_the_deadline():
    store = Flaky()
    build = store.create_build(BuildRequest(repo="/r"))
    naps: list[float] = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 3:
            store.down = False

    store.down = True
    RetryingStore(store, deadline=60, sleep=sleep).append_log(build.id, "s", b"x")
    assert store.read_log(build.id, "s") == b"x" and len(naps) == 3
    store.down = True
    with pytest.raises(StoreUnavailableError, match=r"store unavailable for more than 0\.3 s"):
        RetryingStore(store, deadline=0.3).append_log(build.id, "s", b"y")
    # an answer is not retried
    with pytest.raises(NotFoundError):
        RetryingStore(MemoryStore(), deadline=60, sleep=pytest.fail).get_build(99)


def test_a_sink_sends_what_the_store_missed_from_its_file(tmp_path):
    store = Flaky()
    build = store.create_build(BuildRequest(repo="/r"))
    sink = LogSink(tmp_path / "s.log", store=store, build_id=build.id, step="s", deadline=5)
    sink.write(b"one\n")
    sink.flush()
    store.down = True
    sink.write(b"two\n")
    sink.flush()
    assert sink.undelivered == 4 and store.read_log(build.id, "s") == b"one\n"
    store.down = False
    sink.write(b"three\n")
    sink.close()
    assert sink.undelivered == 0
    assert store.read_log(build.id, "s") == b"one\ntwo\nthree\n"


def test_past_the_deadline_the_bytes_stay_on_disk_and_are_delivered_later(tmp_path):
    store = Flaky()
    build = store.create_build(BuildRequest(repo="/r"), status=Status.RUNNING)
    store.update_build(build.id, claimed_by="me")
    log = tmp_path / "s.log"
    from sauci.core.models import StepRun

    store.save_step(StepRun(build_id=build.id, name="s", status=Status.RUNNING, log_path=str(log)))
    store.down = True
    sink = LogSink(log, store=store, build_id=build.id, step="s", deadline=0.2)
    sink.write(b"kept on disk\n")
    sink.close()
    assert sink.undelivered == len(b"kept on disk\n")
    note_undelivered(tmp_path, build, worker="me", reason="store unavailable: down")
    ready = readiness(store, tmp_path, checks=("store",))
    assert "the data of 1 build(s) waits on disk" in ready.checks["store"]
    assert deliver_pending(store, tmp_path) == 0 and len(pending_notes(tmp_path)) == 1
    store.down = False
    assert deliver_pending(store, tmp_path) == 1 and pending_notes(tmp_path) == []
    assert store.read_log(build.id, "s") == b"kept on disk\n"
    assert store.get_build(build.id).status is Status.ERRORED
    assert store.list_steps(build.id)[0].status is Status.ERRORED
