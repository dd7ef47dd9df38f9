"""A build's writes on disk before the store is sent them: one append-only
journal per build, delivered in order until the store has every entry.

``<data>/journal/<build uuid>.jsonl`` holds a header line (build id, uuid),
one line per write (a step saved, a step's test results or artifacts, the
build's end), appended before the write is sent, and ``{"done": n}`` once the
store took entry ``n``. The runner holds an exclusive ``flock`` on the file
while the build runs and removes it when everything was delivered; a journal
that nobody holds was left by a runner that ended with entries undelivered
(the store stayed away, or the runner was killed): :func:`replay_journals`
sends what it owes, in order, then removes it.

A replay never writes twice and never moves anything backwards: test results
and artifacts replace what the step had; a step already ended, or running on
a later attempt, is left as it is; a build already ended is left.

Each line is written (``write(2)``, into the kernel's cache, which a killed
process cannot lose) before its write is sent, and the file is fsync'd as soon
as a send fails because the store cannot be reached: from then on the journal
is the only copy. A write the store takes at once is not fsync'd: an fsync
costs about 4 ms on this kind of disk, twice the whole per-step budget, and
it would only protect a write in flight when the machine itself goes down
(its build then ends "runner lost" anyway). A line cut by a crash mid-write
was never sent (the send comes after the write): it is skipped."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs

from sauci._logging import get_logger
from sauci.core.models import Build, EndedBy, Status, StepRun
from sauci.core.records import Artifact, TestCase
from sauci.core.store_retry import is_unreachable
from sauci.core.wrapper import Wrapper
from sauci.exceptions import NotFoundError, SauCIError, StoreError

__all__ = ["BuildJournals", "JournaledStore", "journal_dir", "pending_journals", "replay_journals"]

log = get_logger(__name__)


def journal_dir(data_dir: Path) -> Path:
    return data_dir / "journal"


def pending_journals(data_dir: Path) -> list[Path]:
    """The journals on disk (a running build's included)."""
    folder = journal_dir(data_dir)
    return sorted(folder.glob("*.jsonl")) if folder.is_dir() else []


def _plain(value: Any) -> dict[str, Any]:
    """A flat attrs record as JSON-ready values (enums by value)."""
    return {k: getattr(v, "value", v) for k, v in attrs.asdict(value, recurse=False).items()}


def _line(entry: dict[str, Any]) -> bytes:
    return json.dumps(entry, separators=(",", ":"), default=_number).encode() + b"\n"


def _number(value: Any) -> Any:
    """A JUnit duration may be a Decimal: written as the float the stores keep."""
    return float(value)


class BuildJournal:
    """One build's journal file, open for appending and locked by this process."""

    def __init__(self, folder: Path, build: Build) -> None:
        key = build.uuid or f"id-{build.id}"
        # Made under a temporary name, locked, given its header, then linked to
        # its name: a replayer never sees (and takes) a journal being born.
        tmp = folder / f".{key}.{os.getpid()}.{threading.get_ident()}.tmp"
        self.fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.write(self.fd, _line({"build_id": build.id, "uuid": build.uuid}))
            self.path = folder / f"{key}.jsonl"
            try:
                os.link(tmp, self.path)
            except FileExistsError:  # an earlier run of this build left one: keep both
                self.path = folder / f"{key}-{os.getpid()}-{time.time_ns()}.jsonl"
                os.link(tmp, self.path)
        except BaseException:
            os.close(self.fd)
            raise
        finally:
            tmp.unlink(missing_ok=True)
        self.build_id = build.id
        self.seq = 0
        self.pending: dict[int, dict[str, Any]] = {}
        self.broken = False
        self._lock = threading.Lock()

    def append(self, entry: dict[str, Any]) -> int | None:
        """Write ``entry`` down; its number, or None when the disk refused it
        (the write is then sent without a copy on disk, as before journals)."""
        with self._lock:
            if self.broken:
                return None
            for seq, earlier in self.pending.items():  # a write tried again: one entry
                if earlier == entry:
                    return seq
            self.seq += 1
            try:
                os.write(self.fd, _line({"n": self.seq, **entry}))
            except OSError as exc:
                self.broken = True
                log.warning("journal_unwritable", path=str(self.path), error=str(exc))
                return None
            self.pending[self.seq] = entry
            return self.seq

    def sync(self) -> None:
        """Make the lines written so far durable: the store did not take one."""
        with self._lock:
            if self.broken:
                return
            try:
                os.fsync(self.fd)
            except OSError as exc:
                self.broken = True
                log.warning("journal_unwritable", path=str(self.path), error=str(exc))

    def done(self, seq: int | None) -> None:
        if seq is None:
            return
        with self._lock:
            if self.pending.pop(seq, None) is None or self.broken:
                return
            try:
                os.write(self.fd, _line({"done": seq}))
            except OSError:
                self.broken = True

    def close(self) -> bool:
        """Release the file: removed when nothing is owed; True if it was."""
        with self._lock:
            owed = bool(self.pending) or self.broken
            if not owed:
                self.path.unlink(missing_ok=True)
            os.close(self.fd)
            return not owed


class BuildJournals:
    """The journals of the builds this runner is running, by build id."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._open: dict[int, BuildJournal] = {}

    @contextlib.contextmanager
    def open(self, build: Build) -> Iterator[None]:
        """Journal ``build``'s writes (through :meth:`wrap`) while the block runs."""
        try:
            try:
                journal = BuildJournal(self.folder, build)
            except FileNotFoundError:  # the folder, made at first use (and if removed)
                self.folder.mkdir(parents=True, exist_ok=True)
                journal = BuildJournal(self.folder, build)
            self._open[build.id] = journal
        except OSError as exc:  # a full or read-only disk: the store is the only copy
            log.warning("journal_unavailable", build=build.id, error=str(exc))
        try:
            yield
        finally:
            self.end(build.id)

    def end(self, build_id: int) -> None:
        journal = self._open.pop(build_id, None)
        if journal is not None and not journal.close():
            log.warning("journal_left_undelivered", build=build_id, path=str(journal.path))

    def wrap(self, store: Any) -> JournaledStore:
        return JournaledStore(store, self)

    def owed(self, build_id: int, store: Any) -> int:
        """Send ``store`` the entries of the build's journal that it has not
        taken (in order, never backwards); how many are still owed."""
        journal = self._open.get(build_id)
        if journal is None or not journal.pending:
            return 0
        state = _Replay(store, build_id)
        for seq, entry in sorted(journal.pending.items()):
            try:
                state.apply(entry)
            except StoreError as exc:
                if is_unreachable(exc):
                    break
                log.warning("journal_entry_refused", build=build_id, n=seq, error=str(exc))
            journal.done(seq)
        return len(journal.pending)

    def write(self, build_id: int, entry: dict[str, Any], send: Callable[[], Any]) -> Any:
        journal = self._open.get(build_id)
        if journal is None:
            return send()
        seq = journal.append(entry)
        try:
            result = send()
        except Exception as exc:  # an interrupt leaves the entry owed: it may not have landed
            if isinstance(exc, StoreError) and is_unreachable(exc):
                journal.sync()  # the only copy now: durable before anyone waits
            else:  # an answer (the store has decided), or no outage a replay could outlast
                journal.done(seq)
            raise
        journal.done(seq)
        return result


@attrs.define(eq=False)
class JournaledStore(Wrapper):
    """A store whose build writes go through the builds' journals first."""

    wrapped: Any
    _journals: BuildJournals

    def save_step(self, step: StepRun) -> StepRun:
        entry = {"op": "step", "step": _plain(step)}
        send = self.wrapped.save_step
        return self._journals.write(  # type: ignore[no-any-return]
            step.build_id, entry, lambda: send(step)
        )

    def add_test_results(self, build_id: int, step: str, cases: Any) -> None:
        entry = {"op": "tests", "name": step, "cases": [_plain(c) for c in cases]}
        send = self.wrapped.add_test_results
        self._journals.write(build_id, entry, lambda: send(build_id, step, cases))

    def add_artifacts(self, build_id: int, step: str, artifacts: Any) -> None:
        entry = {"op": "artifacts", "name": step, "artifacts": [_plain(a) for a in artifacts]}
        send = self.wrapped.add_artifacts
        self._journals.write(build_id, entry, lambda: send(build_id, step, artifacts))

    def finish_build(self, build_id: int, worker: str, **fields: Any) -> Build | None:
        entry = {"op": "end", "worker": worker, **_plain_fields(fields)}
        send = self.wrapped.finish_build
        return self._journals.write(  # type: ignore[no-any-return]
            build_id, entry, lambda: send(build_id, worker, **fields)
        )


def _plain_fields(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: getattr(v, "value", v) for k, v in fields.items()}


def _step_from(data: dict[str, Any]) -> StepRun:
    data = dict(data)
    data["status"] = Status(data["status"])
    if data.get("ended_by") is not None:
        data["ended_by"] = EndedBy(data["ended_by"])
    return StepRun(**data)


def _behind(current: StepRun, new: StepRun) -> bool:
    """Whether recording ``new`` over ``current`` would move the step backwards."""
    if current.status.done:
        return True
    if current.status is Status.RUNNING:
        return new.status is Status.QUEUED or (
            new.status is Status.RUNNING and new.attempt < current.attempt
        )
    return False


class _Replay:
    """Applies journal entries of one build to a store, never backwards."""

    def __init__(self, store: Any, build_id: int) -> None:
        self.store = store
        self.build_id = build_id
        self._steps: dict[str, StepRun] | None = None

    def apply(self, entry: dict[str, Any]) -> None:
        op = entry.get("op")
        if op == "step":
            new = _step_from(entry["step"])
            if self._steps is None:
                self._steps = {s.name: s for s in self.store.list_steps(self.build_id)}
            current = self._steps.get(new.name)
            if current is None or not _behind(current, new):
                self._steps[new.name] = self.store.save_step(new)
        elif op == "tests":
            cases = [TestCase(**c) for c in entry["cases"]]
            self.store.add_test_results(self.build_id, entry["name"], cases)
        elif op == "artifacts":
            kept = [Artifact(**a) for a in entry["artifacts"]]
            self.store.add_artifacts(self.build_id, entry["name"], kept)
        elif op == "end" and not self.store.get_build(self.build_id).status.done:
            self.store.finish_build(
                self.build_id,
                entry["worker"],
                status=Status(entry["status"]),
                reason=entry.get("reason"),
                finished_at=float(entry["finished_at"]),
            )


def _read(path: Path) -> tuple[dict[str, Any], list[tuple[int, dict[str, Any]]], bool]:
    """The header, the entries not yet done, and whether the file ends mid-line."""
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    cut = lines.pop() != b""  # a last line without its newline: the write was cut
    header: dict[str, Any] = json.loads(lines[0]) if lines else {}
    entries: dict[int, dict[str, Any]] = {}
    for number, line in enumerate(lines[1:], start=2):
        try:
            item = json.loads(line)
        except ValueError:
            log.warning("journal_line_unreadable", path=str(path), line=number)
            continue
        if "done" in item:
            entries.pop(int(item["done"]), None)
        elif "n" in item:
            entries[int(item.pop("n"))] = item
    return header, sorted(entries.items()), cut


def _replay_one(store: Any, path: Path, fd: int) -> int:
    """Deliver one (locked) journal; returns the entries sent. Raises the
    StoreError of a store still away, with the entries sent so far marked."""
    header, entries, cut = _read(path)
    build_id = int(header["build_id"])
    try:
        build = store.get_build(build_id)
    except NotFoundError:
        build = None
    if build is None or (header.get("uuid") and build.uuid and build.uuid != header["uuid"]):
        log.warning("journal_for_unknown_build", path=str(path), build=build_id)
        return 0  # another store, or a reset database: not this build
    if cut:  # the next mark must start on a line of its own
        os.write(fd, b"\n")
    state = _Replay(store, build_id)
    for seq, entry in entries:
        try:
            state.apply(entry)
        except StoreError as exc:
            if is_unreachable(exc):
                raise
            log.warning("journal_entry_refused", path=str(path), n=seq, error=str(exc))
        os.write(fd, _line({"done": seq}))
    return len(entries)


def replay_journals(store: Any, data_dir: Path) -> int:
    """Deliver every journal in ``data_dir`` that no live runner holds, and
    remove each once delivered; returns how many were removed. A store still
    away leaves the journal (and the rest) for the next try."""
    removed = 0
    for path in pending_journals(data_dir):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        except FileNotFoundError:
            continue  # its build ended and delivered everything meanwhile
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its build is running
            if not path.exists() or os.stat(path).st_ino != os.fstat(fd).st_ino:
                continue
            sent = _replay_one(store, path, fd)
            path.unlink()
            removed += 1
            log.info("journal_delivered", path=str(path), entries=sent)
        except OSError as exc:
            log.warning("journal_unreadable", path=str(path), error=str(exc))
        except (ValueError, KeyError, TypeError) as exc:  # not a journal: kept aside, not retried
            log.warning("journal_unreadable", path=str(path), error=repr(exc))
            os.replace(path, path.with_suffix(".unreadable"))
        except SauCIError as exc:
            log.warning("journal_still_pending", path=str(path), error=str(exc))
            break  # the store is still away: try again later
        finally:
            os.close(fd)
    return removed
