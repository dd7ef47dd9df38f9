"""RedisStore: the NoSQL store. Builds are hashes, indexes are sorted sets,
logs are lists of chunks; claims and index moves are Lua scripts (atomic,
in ``_redis_scripts``).

Keys (``p`` is the prefix, ``sauci`` unless the URL says ``?prefix=``)::

    p:next_id                  counter of build ids
    p:build:<id>               hash, every field JSON-encoded (None stays None)
    p:builds                   zset of every build id (score = id)
    p:repo:<repo>              zset of one repository's build ids
    p:status:<status>          zset of build ids per status
    p:queue                    zset of queued ids, score -priority * 2**32 + id
    p:repo_names               set of repositories that have builds
    p:steps:<id>               hash step name -> JSON
    p:log:<id>:<step>          list of chunks; p:logidx:… zset seq by offset;
                               p:logsize:… total bytes
    p:tests:<id> p:artifacts:<id>   lists of JSON [step, fields]
    p:events p:events:<id>     lists of JSON events (all, and per build)
    p:repos p:deliveries       hash of registered repos, set of delivery ids
    p:workers                  hash of worker records (name -> JSON)

Trade-off: writes and the UI's keyed queries are O(log n) round trips, but
``build_stats`` reads every build of the scope (no server-side aggregation).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import attrs

from sauci.core.models import Build, BuildRequest, EndedBy, Status, StepRun
from sauci.core.records import Artifact, Event, Repo, TestCase, Worker
from sauci.exceptions import NotFoundError
from sauci.storage._closing import Closing
from sauci.storage._fields import (
    check_update_fields,
    new_build,
    worker_from_dict,
    worker_to_dict,
)
from sauci.storage._log_reads import LogReads, slice_chunks
from sauci.storage._redis_connection import RedisConnection
from sauci.typing import BuildQuery, TestPage, TestQuery

__all__ = ["RedisStore"]

_BUILD_FIELDS = [f.name for f in attrs.fields(Build)]


def _enc(value: Any) -> str:
    return json.dumps(value.value if isinstance(value, Status | EndedBy) else value)


def _build(raw: Any) -> Build:
    if isinstance(raw, list):  # HGETALL from a script: flat [k, v, k, v, ...]
        raw = dict(zip(raw[::2], raw[1::2], strict=True))
    values = {(k.decode() if isinstance(k, bytes) else k): json.loads(v) for k, v in raw.items()}
    values["status"] = Status(values["status"])
    return Build(**values)


class RedisStore(RedisConnection, LogReads, Closing):
    """A Store on one Redis database (``redis://host:port/db?prefix=name``)."""

    capabilities: frozenset[str] = frozenset({"atomic_claim", "analytics"})

    # builds

    def create_build(self, request: BuildRequest, *, status: Status = Status.QUEUED) -> Build:
        status = Status(status)
        json.dumps(dict(request.params))  # rejects what JSON cannot store, before any write
        with self._errors("create build"):
            build_id = int(self._r.incr(self._k("next_id")))
            build = new_build(build_id, request, status=status, queued_at=self._clock())
            fields = {name: _enc(getattr(build, name)) for name in _BUILD_FIELDS}
            pipe = self._r.pipeline(transaction=True)
            pipe.hset(self._k("build", build_id), mapping=fields)
            pipe.zadd(self._k("builds"), {build_id: build_id})
            pipe.zadd(self._k("repo", build.repo), {build_id: build_id})
            pipe.zadd(self._k("status", status.value), {build_id: build_id})
            if status is Status.QUEUED:
                pipe.zadd(self._k("queue"), {build_id: -build.priority * 2**32 + build_id})
            pipe.sadd(self._k("repo_names"), build.repo)
            pipe.execute()
        return build

    def get_build(self, build_id: int) -> Build:
        with self._errors(f"get build {build_id}"):
            raw = self._r.hgetall(self._k("build", build_id))
        if not raw:
            raise NotFoundError(f"build {build_id} not found")
        return _build(raw)

    def update_build(self, build_id: int, **changes: Any) -> Build:
        values = check_update_fields(changes)
        args: list[Any] = [self.p, build_id]
        for name, value in values.items():
            args += [name, _enc(value)]
        with self._errors(f"update build {build_id}"):
            raw = self._update(args=args)
        if not raw:
            raise NotFoundError(f"build {build_id} not found")
        return _build(raw)

    def claim_build(self, worker: str, *, build_id: int | None = None) -> Build | None:
        args: list[Any] = [self.p, _enc(worker), _enc(self._clock())]
        if build_id is not None:
            args.append(int(build_id))
        with self._errors("claim build"):
            raw = self._claim(args=args)
        return _build(raw) if raw else None

    def _if_owned(self, what: str, build_id: int, worker: str, **fields: Any) -> Build | None:
        args: list[Any] = [self.p, build_id, _enc(worker)]
        for name, value in fields.items():
            args += [name, _enc(value)]
        with self._errors(what):
            raw = self._owned(args=args)
        if raw == -1:
            raise NotFoundError(f"build {build_id} not found")
        return _build(raw) if raw else None

    def heartbeat_build(self, build_id: int, worker: str) -> bool:
        now = self._clock()
        beat = self._if_owned(f"heartbeat build {build_id}", build_id, worker, heartbeat_at=now)
        return beat is not None

    def finish_build(
        self, build_id: int, worker: str, *, status: Status, reason: str | None, finished_at: float
    ) -> Build | None:
        return self._if_owned(
            f"finish build {build_id}",
            build_id,
            worker,
            status=Status(status),
            reason=reason,
            finished_at=finished_at,
        )

    def list_builds(self, query: BuildQuery | None = None, /, **filters: Any) -> list[Build]:
        q = BuildQuery.of(query, **filters)
        if q.status is not None:
            index = self._k("status", q.status.value)
        elif q.repo is not None:
            index = self._k("repo", q.repo)
        else:
            index = self._k("builds")
        # Newest first from before_id down; with after_id, oldest first from it up.
        up = q.after_id is not None
        edge = f"({q.after_id}" if up else ("+inf" if q.before_id is None else f"({q.before_id}")
        out: list[Build] = []
        batch = max(q.limit, 50)
        with self._errors("list builds"):
            while len(out) < q.limit:
                if up:
                    ids = self._r.zrangebyscore(index, edge, "+inf", start=0, num=batch)
                else:
                    ids = self._r.zrevrangebyscore(index, edge, "-inf", start=0, num=batch)
                if not ids:
                    break
                pipe = self._r.pipeline(transaction=False)
                for i in ids:
                    pipe.hgetall(self._k("build", int(i)))
                for raw in pipe.execute():
                    if not raw:
                        continue
                    if q.matches(b := _build(raw)):
                        out.append(b)
                edge = f"({int(ids[-1])}"
        out = out[: q.limit]
        return out[::-1] if up else out

    def list_repos(self) -> list[str]:
        with self._errors("list repos"):
            return sorted(m.decode() for m in self._r.smembers(self._k("repo_names")))

    # registered repositories and webhook deliveries

    def save_repo(self, repo: Repo) -> Repo:
        with self._errors(f"save repo {repo.id}"):
            self._r.hset(self._k("repos"), repo.id, json.dumps(attrs.asdict(repo)))
        return repo

    def list_registered_repos(self) -> list[Repo]:
        with self._errors("list registered repos"):
            raw = self._r.hvals(self._k("repos"))
        return sorted((Repo(**json.loads(v)) for v in raw), key=lambda r: r.id)

    def delete_repo(self, repo_id: str) -> None:
        with self._errors(f"delete repo {repo_id}"):
            self._r.hdel(self._k("repos"), repo_id)

    def record_delivery(self, delivery_id: str) -> bool:
        with self._errors("record webhook delivery"):
            return not self._r.sadd(self._k("deliveries"), delivery_id)

    # workers

    def save_worker(self, worker: Worker) -> Worker:
        value = json.dumps(worker_to_dict(worker))
        with self._errors(f"save worker {worker.name}"):
            self._r.hset(self._k("workers"), worker.name, value)
        return worker

    def list_workers(self) -> list[Worker]:
        with self._errors("list workers"):
            raw = self._r.hvals(self._k("workers"))
        return sorted((worker_from_dict(json.loads(v)) for v in raw), key=lambda w: w.name)

    def delete_worker(self, name: str) -> None:
        with self._errors(f"delete worker {name}"):
            self._r.hdel(self._k("workers"), name)

    # steps

    def save_step(self, step: StepRun) -> StepRun:
        fields = attrs.asdict(step)
        fields["status"] = Status(step.status).value
        fields["ended_by"] = None if step.ended_by is None else EndedBy(step.ended_by).value
        fields["allow_failure"] = bool(step.allow_failure)
        fields["needs"] = list(step.needs)
        with self._errors(f"save step {step.name!r} of build {step.build_id}"):
            self._require_build(step.build_id)
            self._r.hset(self._k("steps", step.build_id), step.name, json.dumps(fields))
        return step

    def list_steps(self, build_id: int) -> list[StepRun]:
        with self._errors(f"list steps of build {build_id}"):
            raw = self._r.hvals(self._k("steps", build_id))
        steps = []
        for v in raw:
            f = json.loads(v)
            f["status"] = Status(f["status"])
            f["ended_by"] = None if f["ended_by"] is None else EndedBy(f["ended_by"])
            steps.append(StepRun(**f))
        return sorted(steps, key=lambda s: (s.position, s.name))

    # logs

    def _log_keys(self, build_id: int, step: str) -> list[str]:
        return [
            self._k("log", build_id, step),
            self._k("logidx", build_id, step),
            self._k("logsize", build_id, step),
        ]

    def append_log(self, build_id: int, step: str, data: bytes) -> int:
        keys = [self._k("build", build_id), *self._log_keys(build_id, step)]
        with self._errors(f"append to the log of step {step!r} of build {build_id}"):
            size = self._append(keys=keys, args=[bytes(data)])
        if size is None:
            raise NotFoundError(f"build {build_id} not found")
        return int(size)

    def _read_log(self, build_id: int, step: str, offset: int, limit: int | None) -> bytes:
        end = -1 if limit is None else offset + limit
        with self._errors(f"read the log of step {step!r} of build {build_id}"):
            out = self._read(keys=self._log_keys(build_id, step)[:2], args=[offset, end])
        if not out:
            return b""
        return slice_chunks(int(float(out[0])), out[1:], offset, limit)

    def log_size(self, build_id: int, step: str) -> int:
        with self._errors(f"get the log size of step {step!r} of build {build_id}"):
            return int(self._r.get(self._k("logsize", build_id, step)) or 0)

    # test results, artifacts, events

    def _add_rows(self, kind: str, build_id: int, step: str, rows: list[dict[str, Any]]) -> None:
        with self._errors(f"add {kind} of build {build_id}"):
            # One script: the step's rows are replaced, so a write sent again
            # after its answer was lost leaves one copy.
            keys = [self._k("build", build_id), self._k(kind, build_id)]
            args = [step, *(json.dumps([step, r]) for r in rows)]
            found = self._replace_rows(keys=keys, args=args)
        if not found:
            raise NotFoundError(f"build {build_id} not found")

    def _rows(self, kind: str, build_id: int) -> list[tuple[str, dict[str, Any]]]:
        with self._errors(f"list {kind} of build {build_id}"):
            return [tuple(json.loads(v)) for v in self._r.lrange(self._k(kind, build_id), 0, -1)]  # type: ignore[misc]

    def add_test_results(self, build_id: int, step: str, cases: Sequence[TestCase]) -> None:
        rows = [attrs.asdict(c) | {"duration": float(c.duration)} for c in cases]
        self._add_rows("tests", build_id, step, rows)

    def list_test_results(self, build_id: int) -> list[tuple[str, TestCase]]:
        return [(s, TestCase(**f)) for s, f in self._rows("tests", build_id)]

    def page_test_results(self, build_id: int, query: TestQuery) -> TestPage:
        # Redis has no query language for a list of JSON rows: filter here.
        return query.page(self.list_test_results(build_id))

    def add_artifacts(self, build_id: int, step: str, artifacts: Sequence[Artifact]) -> None:
        self._add_rows("artifacts", build_id, step, [attrs.asdict(a) for a in artifacts])

    def list_artifacts(self, build_id: int) -> list[tuple[str, Artifact]]:
        return [(s, Artifact(**f)) for s, f in self._rows("artifacts", build_id)]

    def add_event(self, event: Event) -> None:
        fields = attrs.asdict(event) | {"at": float(event.at), "data": dict(event.data)}
        value = json.dumps(fields)
        with self._errors(f"add event {event.kind!r}"):
            pipe = self._r.pipeline(transaction=True)
            pipe.rpush(self._k("events"), value)
            if event.build_id is not None:
                pipe.rpush(self._k("events", event.build_id), value)
            pipe.execute()

    def list_events(self, *, build_id: int | None = None, limit: int = 100) -> list[Event]:
        if limit < 0:
            raise ValueError(f"limit must be >= 0, not {limit}")
        if limit == 0:
            return []
        key = self._k("events") if build_id is None else self._k("events", build_id)
        with self._errors("list events"):
            raw = self._r.lrange(key, -limit, -1)
        return [Event(**json.loads(v)) for v in reversed(raw)]

    # analytics

    def build_stats(
        self, *, repo: str | None = None, query: BuildQuery | None = None
    ) -> Mapping[str, Any]:
        repo = repo if repo is not None else (query.repo if query else None)
        index = self._k("builds") if repo is None else self._k("repo", repo)
        by_status: dict[str, int] = {}
        durations: list[float] = []
        for status, duration in self._status_and_duration(index, repo, query):
            by_status[status] = by_status.get(status, 0) + 1
            if duration is not None:
                durations.append(duration)
        return {
            "total": sum(by_status.values()),
            "by_status": dict(sorted(by_status.items())),
            "mean_duration": sum(durations) / len(durations) if durations else None,
        }

    def _status_and_duration(
        self, index: str, repo: str | None, query: BuildQuery | None
    ) -> Iterator[tuple[str, float | None]]:
        """Each build's status and duration in ``index``, read 1,000 at a time:
        three fields each without a query, whole builds when filters need them."""
        with self._errors("compute build stats"):
            ids = self._r.zrange(index, 0, -1)
            for i in range(0, len(ids), 1000):
                pipe = self._r.pipeline(transaction=False)
                for build_id in ids[i : i + 1000]:
                    key = self._k("build", int(build_id))
                    if query is None:
                        pipe.hmget(key, "status", "started_at", "finished_at")
                    else:
                        pipe.hgetall(key)
                for raw in pipe.execute():
                    if query is None:
                        started, finished = json.loads(raw[1]), json.loads(raw[2])
                        took = None if started is None or finished is None else finished - started
                        yield json.loads(raw[0]), took
                    elif (
                        raw
                        and query.filters.matches(b := _build(raw))
                        and (repo is None or b.repo == repo)
                    ):
                        yield b.status.value, b.duration

    def close(self) -> None:
        """Close the connection pool; the data stays on the server."""
        self._r.close()
