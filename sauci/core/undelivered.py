"""Builds whose data the store did not take: noted on disk, delivered later.

When the store stays unreachable past the deadline (``store_deadline``), the
runner ends the build "errored: store unavailable" and notes it in
``<data>/undelivered/<build uuid>.json``: which build, in which store, its
verdict. Its logs are on disk already (the LogSink writes the file first).
:func:`deliver_pending` (the server calls it every tick, ``sauci run`` at
start) sends the store, for each noted build, the bytes of each step's log
file the store does not have, ends the steps still "running" and the build
itself if its end was not recorded, and then removes the note. A note stays
until all of that succeeds, so nothing is lost while the store is still down.
The builds' journals (:mod:`sauci.core.journal`: step ends, test results,
artifacts, a build's end) are replayed first, so that a step keeps the end it
really had; a note waits while its build's journal is still on disk.

A worker notes each build it runs in ``<data>/running/`` (:func:`note_running`)
and removes the note when the build ends. A note still there when the next
worker starts on the data dir (one at a time: the worker's lock) is from a
life that was killed mid-build: :func:`adopt_running` turns it into an
undelivered note, so the log bytes that life had on disk reach the store.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import attrs

from sauci._logging import get_logger
from sauci.core.journal import journal_dir, replay_journals
from sauci.core.models import Build, Status
from sauci.exceptions import NotFoundError, SauCIError

__all__ = [
    "adopt_running",
    "deliver_log",
    "deliver_pending",
    "note_running",
    "note_undelivered",
    "pending_notes",
]

log = get_logger(__name__)

_CHUNK = 1 << 20


def _notes_dir(data_dir: Path) -> Path:
    return data_dir / "undelivered"


def _running_dir(data_dir: Path) -> Path:
    return data_dir / "running"


def note_running(data_dir: Path, build: Build, *, worker: str) -> Path:
    """Note that ``build`` runs here; the caller removes the note when it ends."""
    reason = f"runner lost: worker {worker} was killed mid-build"
    return note_undelivered(data_dir, build, worker=worker, reason=reason, folder="running")


def adopt_running(data_dir: Path) -> int:
    """Turn the running notes a killed life left into undelivered ones; returns how many."""
    folder = _running_dir(data_dir)
    if not folder.is_dir():
        return 0
    target = _notes_dir(data_dir)
    target.mkdir(parents=True, exist_ok=True)
    adopted = 0
    for path in sorted(folder.glob("*.json")):
        try:
            note = json.loads(path.read_text()) | {"finished_at": time.time()}
        except (OSError, ValueError) as exc:  # cut by the kill: nothing to go by
            log.warning("running_note_unreadable", path=str(path), error=str(exc))
            path.unlink(missing_ok=True)
            continue
        tmp = (target / path.name).with_suffix(".tmp")
        tmp.write_text(json.dumps(note))
        os.replace(tmp, target / path.name)
        path.unlink()
        adopted += 1
    return adopted


def note_undelivered(
    data_dir: Path, build: Build, *, worker: str, reason: str, folder: str = "undelivered"
) -> Path:
    """Write (atomically) the note that ``build``'s data must still be delivered."""
    folder_path = data_dir / folder
    folder_path.mkdir(parents=True, exist_ok=True)
    key = build.uuid or f"id-{build.id}"
    path = folder_path / f"{key}.json"
    note = {
        "build_id": build.id,
        "uuid": build.uuid,
        "worker": worker,
        "reason": reason,
        "finished_at": time.time(),
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(note))
    os.replace(tmp, path)
    return path


def pending_notes(data_dir: Path) -> list[Path]:
    folder = _notes_dir(data_dir)
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def deliver_log(store: Any, build_id: int, step: str, path: Path) -> int:
    """Send the store the bytes of the log file ``path`` that its log of
    ``step`` lacks (the stored log is a prefix of the file); returns how many."""
    if "log_files" in getattr(store, "capabilities", ()):
        # The embedded store serves the file itself: record its whole size.
        size = path.stat().st_size
        if store.record_log_file(build_id, step, str(path), start=0, size=size):
            return 0
    have = store.log_size(build_id, step)
    sent = 0
    with open(path, "rb") as fh:
        fh.seek(have)
        while data := fh.read(_CHUNK):
            store.append_log(build_id, step, data)
            sent += len(data)
    return sent


def _deliver_one(store: Any, note: dict[str, Any]) -> int:
    build_id = int(note["build_id"])
    try:
        build = store.get_build(build_id)
    except NotFoundError:
        return 0  # another store, or the build is gone: nothing to deliver to
    if note.get("uuid") and build.uuid and build.uuid != note["uuid"]:
        return 0  # the same number in another store (a reset database): not this build
    sent = 0
    now = time.time()
    for step in store.list_steps(build_id):
        if step.log_path and os.path.isfile(step.log_path):
            sent += deliver_log(store, build_id, step.name, Path(step.log_path))
        if not step.status.done:
            store.save_step(
                attrs.evolve(
                    step,
                    status=Status.ERRORED,
                    reason=note["reason"],
                    finished_at=now if step.started_at is not None else None,
                )
            )
    if not build.status.done:
        store.finish_build(
            build_id,
            note["worker"],
            status=Status.ERRORED,
            reason=note["reason"],
            finished_at=float(note["finished_at"]),
        )
    return sent


def deliver_pending(store: Any, data_dir: Path) -> int:
    """Deliver what every note in ``data_dir`` owes the store; returns the
    number of notes done (removed). A store still down leaves the notes."""
    done = 0
    replay_journals(store, data_dir)
    for path in pending_notes(data_dir):
        if (journal_dir(data_dir) / f"{path.stem}.jsonl").exists():
            continue  # its journal first: the store is still away, or its build runs
        try:
            note = json.loads(path.read_text())
            sent = _deliver_one(store, note)
        except (OSError, ValueError, KeyError) as exc:
            log.warning("undelivered_note_unreadable", path=str(path), error=str(exc))
            continue
        except SauCIError as exc:
            log.warning("undelivered_still_pending", path=str(path), error=str(exc))
            return done  # the store is still away: try again later
        path.unlink(missing_ok=True)
        done += 1
        log.info("undelivered_delivered", build=note.get("build_id"), bytes=sent)
    return done
