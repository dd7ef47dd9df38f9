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
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import attrs

from sauci._logging import get_logger
from sauci.core.models import (
    Artifact,
    Build,
    BuildRequest,
    Event,
    Repo,
    Status,
    StepRun,
    TestCase,
    Worker,
)
from sauci.exceptions import MissingDependencyError, StoreError
from sauci.storage._sql import check_update_fields
from sauci.storage._sql_workers import worker_from_dict, worker_to_dict
from sauci.typing import Store

__all__ = ["StreamStore"]

log = get_logger(__name__)

ViewFactory = Callable[[Callable[[], float]], Store]


def _memory_view(clock: Callable[[], float]) -> Store:
    from sauci.storage.memory import MemoryStore

    return MemoryStore(clock=clock)


def _plain(value: Any) -> Any:
    return attrs.asdict(value, value_serializer=lambda _i, _f, v: getattr(v, "value", v))


class RedisLog:
    """The event log on a Redis stream; positions are entry ids (bytes)."""

    def __init__(self, url: str, name: str, *, timeout: float) -> None:
        try:
            import redis
        except ImportError as exc:
            raise MissingDependencyError("redis", "redis") from exc
        self.errors: tuple[type[Exception], ...] = (redis.RedisError,)
        self.name = name
        self._r: Any = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=min(2.0, timeout)
        )

    def append(self, payload: bytes, data: bytes) -> bytes:
        return self._r.xadd(self.name, {"e": payload, "d": data})  # type: ignore[no-any-return]

    def read(self, after: bytes | None, until: bytes | None) -> list[tuple[bytes, bytes, bytes]]:
        start = "-" if after is None else b"(" + after
        entries = self._r.xrange(self.name, min=start, count=500)
        return [(i, f[b"e"], f.get(b"d", b"")) for i, f in entries]

    def wait(self, after: bytes | None, timeout: float) -> None:
        self._r.xread({self.name: after or b"0-0"}, count=1, block=int(timeout * 1000))

    def added(self) -> int:
        if not self._r.exists(self.name):
            return 0
        return int(self._r.xinfo_stream(self.name)["entries-added"])

    def age(self, after: bytes | None) -> float:
        first = self.read(after, None)[:1]
        if not first:
            return 0.0
        return max(0.0, time.time() - int(first[0][0].split(b"-")[0]) / 1000)

    def close(self) -> None:
        self._r.close()


class KafkaLog:
    """The event log on a one-partition Kafka topic (one total order, which
    the views need); positions are offsets. Manual assignment: no consumer
    group to join."""

    def __init__(self, url: str, name: str, *, timeout: float) -> None:
        try:
            from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
            from confluent_kafka.admin import AdminClient, NewTopic
        except ImportError as exc:
            raise MissingDependencyError("confluent-kafka", "kafka") from exc
        self.errors: tuple[type[Exception], ...] = (KafkaException,)
        self.name = name
        self._timeout = timeout
        self._tp = TopicPartition
        servers = urlsplit(url).netloc
        try:
            admin = AdminClient({"bootstrap.servers": servers})
            topics = admin.list_topics(timeout=timeout).topics
            if name not in topics:
                for future in admin.create_topics([NewTopic(name, 1, 1)]).values():
                    try:
                        future.result(timeout)
                    except KafkaException as exc:
                        if "TOPIC_ALREADY_EXISTS" not in str(exc):
                            raise
        except KafkaException as exc:
            raise StoreError(f"open Kafka topic {name} at {servers}: {exc}") from exc
        self._producer = Producer(
            {
                "bootstrap.servers": servers,
                "linger.ms": 0,
                "enable.idempotence": False,
                "message.timeout.ms": int(timeout * 1000),
            }
        )
        self._consumer = Consumer(
            {
                "bootstrap.servers": servers,
                "group.id": f"sauci-{name}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": 10,  # answer a catch-up now, not in 500 ms
            }
        )
        self._next: int | None = None  # offset the consumer is assigned at

    def append(self, payload: bytes, data: bytes) -> int:
        delivered: list[Any] = []
        self._producer.produce(
            self.name,
            value=payload,
            headers={"d": data},
            on_delivery=lambda err, msg: delivered.append((err, msg)),
        )
        self._producer.flush(self._timeout)
        if not delivered:
            raise StoreError(f"event not acknowledged by Kafka within {self._timeout} s")
        err, msg = delivered[0]
        if err is not None:
            raise StoreError(f"Kafka refused the event: {err}")
        return int(msg.offset())

    def read(self, after: int | None, until: int | None) -> list[tuple[int, bytes, bytes]]:
        start = 0 if after is None else after + 1
        target = (until + 1) if until is not None else self.added()
        if start >= target:
            return []
        if self._next != start:
            self._consumer.assign([self._tp(self.name, 0, start)])
        messages: list[Any] = self._consumer.consume(min(500, target - start), self._timeout)
        out: list[tuple[int, bytes, bytes]] = []
        for m in messages:
            if m.error() is not None:
                raise StoreError(f"read Kafka topic {self.name}: {m.error()}")
            data = dict(m.headers() or ()).get("d") or b""
            out.append((int(m.offset()), m.value(), data))
        self._next = out[-1][0] + 1 if out else None
        return out

    def wait(self, after: int | None, timeout: float) -> None:
        time.sleep(min(timeout, 0.1))  # the follower polls the high watermark

    def added(self) -> int:
        return int(self._consumer.get_watermark_offsets(self._tp(self.name, 0), self._timeout)[1])

    def age(self, after: int | None) -> float:
        return 0.0  # entries only: reading a message's timestamp would move the consumer

    def close(self) -> None:
        self._producer.flush(self._timeout)
        self._consumer.close()


class StreamStore:
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
    ) -> None:
        if url.startswith("kafka://"):
            self._log: Any = KafkaLog(url, f"{prefix}.stream", timeout=socket_timeout)
        else:
            self._log = RedisLog(url, f"{prefix}:stream", timeout=socket_timeout)
        self.url = url
        self.stream = self._log.name
        self._clock = clock
        self._make_view = view
        self._now = 0.0  # the clock the view sees: the applied event's time
        self.view = view(lambda: self._now)
        self._applied: Any = None  # position of the last applied entry
        self._applied_count = 0
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

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except StoreError:
            raise
        except self._log.errors as exc:
            raise StoreError(f"{what}: stream {self.stream} at {self.url}: {exc}") from exc

    # the stream and the view

    def _apply(self, payload: dict[str, Any], data: bytes) -> Any:
        v, op = self.view, payload.pop("op")
        self._now = payload.pop("now")
        if op == "create_build":
            return v.create_build(BuildRequest(**payload["request"]), status=payload["status"])
        if op == "update_build":
            return v.update_build(payload["id"], **payload["changes"])
        if op == "claim_build":
            return v.claim_build(payload["worker"], build_id=payload.get("id"))
        if op == "heartbeat_build":
            return v.heartbeat_build(payload["id"], payload["worker"])
        if op == "finish_build":
            return v.finish_build(
                payload["id"],
                payload["worker"],
                status=Status(payload["status"]),
                reason=payload["reason"],
                finished_at=payload["finished_at"],
            )
        if op == "save_worker":
            return v.save_worker(worker_from_dict(payload["worker"]))
        if op == "delete_worker":
            return v.delete_worker(payload["name"])
        if op == "save_repo":
            return v.save_repo(Repo(**payload["repo"]))
        if op == "delete_repo":
            return v.delete_repo(payload["id"])
        if op == "record_delivery":
            return v.record_delivery(payload["id"])
        if op == "save_step":
            return v.save_step(StepRun(**payload["step"]))
        if op == "append_log":
            return v.append_log(payload["id"], payload["step"], data)
        if op == "add_test_results":
            cases = [TestCase(**c) for c in payload["rows"]]
            return v.add_test_results(payload["id"], payload["step"], cases)
        if op == "add_artifacts":
            items = [Artifact(**a) for a in payload["rows"]]
            return v.add_artifacts(payload["id"], payload["step"], items)
        if op == "add_event":
            return v.add_event(Event(**payload["event"]))
        raise StoreError(f"unknown event {op!r} in stream {self.stream}")

    def _catch_up(self, until: Any = None) -> Any:
        outcome: Any = None
        while True:
            with self._errors("read the stream"):
                entries = self._log.read(self._applied, until)
            for entry_id, payload, data in entries:
                try:
                    result: Any = (True, self._apply(json.loads(payload), data))
                except Exception as exc:  # the writer gets it; every view skips it alike
                    result = (False, exc)
                self._applied = entry_id
                self._applied_count += 1
                if entry_id == until:
                    outcome = result
            if until is not None and outcome is not None:
                break
            if not entries:
                break
        return outcome

    def _write(self, op: str, fields: dict[str, Any], data: bytes = b"") -> Any:
        # json.dumps raises TypeError for what it cannot store, before any write.
        payload = json.dumps({"op": op, "now": self._clock(), **fields})
        with self._lock:
            with self._errors(op.replace("_", " ")):
                entry_id = self._log.append(payload.encode(), data)
            outcome = self._catch_up(until=entry_id)
        if outcome is None:
            raise StoreError(f"{op}: event {entry_id!r} not found in stream {self.stream}")
        ok, value = outcome
        if not ok:
            raise value
        return value

    def _follow(self) -> None:
        while not self._stop.is_set():
            try:
                with self._lock:
                    self._catch_up()
                # Wait for something new, without holding the lock.
                self._log.wait(self._applied, 0.5)
            except Exception as exc:
                if self._stop.is_set():
                    return
                log.warning("stream_follow_failed", stream=self.stream, error=str(exc))
                self._stop.wait(1.0)

    def catch_up(self) -> int:
        """Apply every event the view has not seen; returns how many."""
        with self._lock:
            before = self._applied_count
            self._catch_up()
            return self._applied_count - before

    def lag(self) -> dict[str, float]:
        """How far the view is behind the stream: ``entries`` not yet applied,
        and ``seconds`` since the oldest of them was appended (0 when none)."""
        with self._errors("measure the view lag"):
            entries = max(0, self._log.added() - self._applied_count)
            seconds = self._log.age(self._applied) if entries else 0.0
        return {"entries": entries, "seconds": seconds}

    def rebuild(self) -> int:
        """Replace the view by a new one built from the whole stream; returns
        the number of events applied."""
        with self._lock:
            old = self.view
            self.view = self._make_view(lambda: self._now)
            self._applied, self._applied_count = None, 0
            self._catch_up()
            old.close()
            return self._applied_count

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
        self,
        build_id: int,
        worker: str,
        *,
        status: Status,
        reason: str | None,
        finished_at: float,
    ) -> Build | None:
        fields = {
            "id": build_id,
            "worker": worker,
            "status": Status(status).value,
            "reason": reason,
            "finished_at": finished_at,
        }
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

    # reads: from the view

    def get_build(self, build_id: int) -> Build:
        return self.view.get_build(build_id)

    def list_builds(
        self,
        *,
        repo: str | None = None,
        ref: str | None = None,
        status: Status | None = None,
        event: str | None = None,
        author: str | None = None,
        before_id: int | None = None,
        limit: int = 50,
    ) -> list[Build]:
        return self.view.list_builds(
            repo=repo,
            ref=ref,
            status=status,
            event=event,
            author=author,
            before_id=before_id,
            limit=limit,
        )

    def list_repos(self) -> list[str]:
        return self.view.list_repos()

    def list_registered_repos(self) -> list[Repo]:
        return self.view.list_registered_repos()

    def list_workers(self) -> list[Worker]:
        return self.view.list_workers()

    def list_steps(self, build_id: int) -> list[StepRun]:
        return self.view.list_steps(build_id)

    def read_log(
        self, build_id: int, step: str, offset: int = 0, limit: int | None = None
    ) -> bytes:
        return self.view.read_log(build_id, step, offset, limit)

    def log_size(self, build_id: int, step: str) -> int:
        return self.view.log_size(build_id, step)

    def list_test_results(self, build_id: int) -> list[tuple[str, TestCase]]:
        return self.view.list_test_results(build_id)

    def list_artifacts(self, build_id: int) -> list[tuple[str, Artifact]]:
        return self.view.list_artifacts(build_id)

    def list_events(self, *, build_id: int | None = None, limit: int = 100) -> list[Event]:
        return self.view.list_events(build_id=build_id, limit=limit)

    def build_stats(self, *, repo: str | None = None) -> Mapping[str, Any]:
        return self.view.build_stats(repo=repo)

    def close(self) -> None:
        """Stop following the stream and close the view; the stream stays."""
        self._stop.set()
        if self._follower is not None:
            self._follower.join(5)
            self._follower = None
        self._log.close()
        self.view.close()

    def __enter__(self) -> StreamStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
