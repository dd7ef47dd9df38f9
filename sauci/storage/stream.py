"""StreamStore: event sourcing on Redis Streams. Every write is an event
appended to one stream; a view (a MemoryStore unless given another store)
is built by applying the events in stream order, and every read comes from it.

Consistency: a write returns after this process's view has applied the
stream up to and including the write's own event, and returns the outcome
the view computed (the new build's id, the claimed build, NotFoundError).
So each client reads its own writes, and decisions are made once, in stream
order: two claims appended by two processes are applied in the same order by
every view, so both views agree which claim got which build (the stream is
the lock). Writes of other processes reach the view through a follower
thread; ``lag()`` says how far behind it is, ``catch_up()`` closes the gap,
``rebuild()`` throws the view away and replays the stream from the start.
Events carry the writer's clock, so replays give identical views.

Events of any size: one larger than an entry is appended as pieces
(``_stream_pieces``). Each event has an id; a write that failed with an
unknown outcome (the broker may have stored it) is sent again with the same
id when the same write is retried, and the view applies an id once, so a
retry or a replay never makes a second build. A hole in the log is reported
by name with the command that rebuilds the views (``_stream_view``).

The parts: the event log clients (``RedisLog``, ``KafkaLog``) are in
``_stream_logs``, applying the log to the view in ``_stream_view``; this
module holds the Store itself: writes turned into events, reads from the view.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import attrs

from sauci.core.models import Build, BuildRequest, Status, StepRun
from sauci.core.records import Artifact, Event, Repo, TestCase, Worker
from sauci.exceptions import StoreError
from sauci.storage._closing import Closing
from sauci.storage._fields import check_update_fields, finish_fields, worker_to_dict
from sauci.storage._stream_logs import PIECE, KafkaLog, RedisLog
from sauci.storage._stream_pieces import pieces
from sauci.storage._stream_view import WAITING, StreamView, ViewFactory, _memory_view

__all__ = ["StreamStore"]

# The Store's reads, answered by the view.
# Writes whose outcome is unknown, remembered so that a retry is the same event.
_RETRIES_KEPT = 1000

_READS = frozenset(
    {
        "get_build",
        "list_builds",
        "list_repos",
        "list_registered_repos",
        "list_workers",
        "list_steps",
        "read_log",
        "log_size",
        "list_test_results",
        "page_test_results",
        "list_artifacts",
        "list_events",
        "build_stats",
    }
)


def _retry_key(op: str, fields: dict[str, Any], data: bytes) -> bytes:
    """What makes two writes the same write: operation, fields and bytes."""
    what = json.dumps({"op": op, **fields}, sort_keys=True, default=str).encode()
    return hashlib.blake2b(what + b"\0" + data, digest_size=16).digest()


def _plain(value: Any) -> Any:
    return attrs.asdict(value, value_serializer=lambda _i, _f, v: getattr(v, "value", v))


class StreamStore(StreamView, Closing):
    """A Store whose truth is an event log: a Redis stream
    (``stream+redis://host:port/db?prefix=p``) or a one-partition Kafka
    topic (``stream+kafka://host:port?prefix=p``)."""

    capabilities: frozenset[str] = frozenset({"atomic_claim", "analytics", "event_sourced"})

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "sauci",
        view: ViewFactory = _memory_view,
        clock: Callable[[], float] = time.time,
        follow: bool = True,
        socket_timeout: float = 5.0,
        accept_gaps: bool = False,
        piece: int = PIECE,
    ) -> None:
        if url.startswith("kafka://"):
            self._log: Any = KafkaLog(url, f"{prefix}.stream", timeout=socket_timeout)
        else:
            self._log = RedisLog(url, f"{prefix}:stream", timeout=socket_timeout)
        self.url = url
        self.stream = self._log.name
        scheme = "stream+kafka" if url.startswith("kafka://") else "stream+redis"
        where = url.split("://", 1)[1].split("?", 1)[0].rsplit("@", 1)[-1]
        self._rebuild_hint = f"sauci store rebuild --store '{scheme}://{where}?prefix={prefix}'"
        self.accept_gaps = accept_gaps
        self._piece = piece
        self._clock = clock
        self._make_view = view
        self._now = 0.0  # the clock the view sees: the applied event's time
        self._unsure = False  # a write failed, maybe stored: reads read the log on first
        self._unsure_failed = -1.0  # when reading on after it last failed
        self.view = view(lambda: self._now)
        self._reset()
        self._mine = OrderedDict()
        self._retry_ids: OrderedDict[bytes, str] = OrderedDict()
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self.catch_up()
        self._follower: threading.Thread | None = None
        if follow:
            self._follower = threading.Thread(target=self._follow, name="sauci-stream", daemon=True)
            self._follower.start()

    @classmethod
    def from_url(cls, url: str, **kw: Any) -> StreamStore:
        """``stream+redis://host:port/db?prefix=p`` or ``stream+kafka://host:port?prefix=p``
        (the view is a MemoryStore)."""
        parts = urlsplit(url.removeprefix("stream+"))
        query = parse_qs(parts.query)
        prefix = query.pop("prefix", ["sauci"])[0]
        rest = "&".join(f"{k}={v[0]}" for k, v in query.items())
        return cls(urlunsplit(parts._replace(query=rest)), prefix=prefix, **kw)

    def _write(self, op: str, fields: dict[str, Any], data: bytes = b"") -> Any:
        with self._lock:
            # Hashed only while some write's outcome is unknown (cheap otherwise).
            key = _retry_key(op, fields, data) if self._retry_ids else None
            eid = (self._retry_ids.pop(key, None) if key else None) or uuid.uuid4().hex
            # json.dumps raises TypeError for what it cannot store, before any write.
            payload = json.dumps({"op": op, "now": self._clock(), "eid": eid, **fields}).encode()
            self._mine[eid] = self._mine.get(eid, WAITING)
            try:
                with self._errors(op.replace("_", " ")):
                    for part, chunk in pieces(payload, data, eid, self._piece):
                        entry_id = self._log.append(part, chunk)
                self._catch_up(until=entry_id, check=False)
            except BaseException:
                # The broker may have stored it: the same write retried is the same event,
                # and the next read first reads the log on (see __getattr__).
                self._unsure = True
                self._retry_ids[key or _retry_key(op, fields, data)] = eid
                while len(self._retry_ids) > _RETRIES_KEPT:
                    self._mine.pop(self._retry_ids.popitem(last=False)[1], None)
                raise
            outcome = self._mine.pop(eid)
        if outcome is WAITING:
            raise StoreError(f"{op}: event {entry_id!r} not found in stream {self.stream}")
        ok, value = outcome
        if not ok:
            raise value
        return value

    # writes

    def create_build(self, request: BuildRequest, *, status: Status = Status.QUEUED) -> Build:
        fields = {"request": _plain(request), "status": Status(status).value}
        return self._write("create_build", fields)  # type: ignore[no-any-return]

    def update_build(self, build_id: int, **changes: Any) -> Build:
        values = {k: getattr(v, "value", v) for k, v in check_update_fields(changes).items()}
        return self._write("update_build", {"id": build_id, "changes": values})  # type: ignore[no-any-return]

    def claim_build(self, worker: str, *, build_id: int | None = None) -> Build | None:
        fields: dict[str, Any] = {"worker": worker}
        if build_id is not None:
            fields["id"] = build_id
        return self._write("claim_build", fields)  # type: ignore[no-any-return]

    # Decided by the view, in stream order, like a claim: of two processes
    # finishing one build, the event applied first wins in every view.
    def heartbeat_build(self, build_id: int, worker: str) -> bool:
        return self._write("heartbeat_build", {"id": build_id, "worker": worker})  # type: ignore[no-any-return]

    def finish_build(
        self, build_id: int, worker: str, *, status: Status, reason: str | None, finished_at: float
    ) -> Build | None:
        fields = {"id": build_id, "worker": worker, **finish_fields(status, reason, finished_at)}
        return self._write("finish_build", fields)  # type: ignore[no-any-return]

    def save_worker(self, worker: Worker) -> Worker:
        self._write("save_worker", {"worker": worker_to_dict(worker)})
        return worker

    def delete_worker(self, name: str) -> None:
        self._write("delete_worker", {"name": name})

    def save_repo(self, repo: Repo) -> Repo:
        self._write("save_repo", {"repo": _plain(repo)})
        return repo

    def delete_repo(self, repo_id: str) -> None:
        self._write("delete_repo", {"id": repo_id})

    def record_delivery(self, delivery_id: str) -> bool:
        return self._write("record_delivery", {"id": delivery_id})  # type: ignore[no-any-return]

    def save_step(self, step: StepRun) -> StepRun:
        self._write("save_step", {"step": _plain(step)})
        return step

    def append_log(self, build_id: int, step: str, data: bytes) -> int:
        return self._write("append_log", {"id": build_id, "step": step}, bytes(data))  # type: ignore[no-any-return]

    def add_test_results(self, build_id: int, step: str, cases: Sequence[TestCase]) -> None:
        rows = [_plain(c) for c in cases]
        self._write("add_test_results", {"id": build_id, "step": step, "rows": rows})

    def add_artifacts(self, build_id: int, step: str, artifacts: Sequence[Artifact]) -> None:
        rows = [_plain(a) for a in artifacts]
        self._write("add_artifacts", {"id": build_id, "step": step, "rows": rows})

    def add_event(self, event: Event) -> None:
        self._write("add_event", {"event": _plain(event)})

    def accept_gaps_read(self) -> int:
        """Record in the stream that the holes this view read past (with
        ``accept_gaps``) are known, so views started later read past them
        too (``sauci store rebuild``); returns how many there were."""
        if self._accepted is not None:
            through = self._accepted
            self._write("gap_accepted", {"through": getattr(through, "decode", lambda: through)()})
        return len(self.gaps)

    def __getattr__(self, name: str) -> Any:
        # Reads come from the view, which has applied this process's writes
        # (and the others' as far as the follower got), as they are.
        if name in _READS and "view" in self.__dict__:
            if self._unsure:
                self._read_on_after_unsure_write(name)
            return getattr(self.view, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _read_on_after_unsure_write(self, name: str) -> None:
        # A write failed after the broker may have stored it: a read must see
        # it if it is there, so read the log on first. With the broker still
        # away, the view answers as it is (the page shows the last known
        # state), at once: other reads ask the broker at most once a second
        # and never wait for the lock (the follower may hold it for a
        # socket's timeout). Except log_size: log delivery sends the bytes
        # after what it answers, so an answer from before would send some
        # twice; it waits, and fails while the broker is away.
        strict = name == "log_size"
        if not strict and time.monotonic() - self._unsure_failed < 1.0:
            return
        if not self._lock.acquire(blocking=strict):
            return
        try:
            self._catch_up()
            self._unsure = False
        except StoreError:
            self._unsure_failed = time.monotonic()
            if strict:
                raise
        finally:
            self._lock.release()

    def close(self) -> None:
        """Stop following the stream and close the view; the stream stays."""
        self._stop.set()
        if self._follower is not None:
            self._follower.join(5)
            self._follower = None
        self._log.close()
        self.view.close()
