"""Copy everything from one store to another through the Store protocol,
resumably, and verify counts and checksums at the end (``sauci store copy``).

Builds are copied oldest first, so the n-th build of the destination is the
n-th of the source: a copy that was interrupted resumes after the builds
already there, finishing the last one (steps are replaced, logs and results
get only their missing tail). Build ids may differ; checksums compare builds
by position. Webhook delivery ids cannot be listed through the protocol and
are not copied; a step's log is found through its recorded step. Worker
records are copied as they are (a worker's ``running`` ids are the source's).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from sauci.core.models import Build, BuildRequest, Status
from sauci.exceptions import ConfigError, StoreError
from sauci.storage._fields import request_of
from sauci.typing import Store

__all__ = ["CopyReport", "copy_store", "create_at", "store_digest"]

_PAGE = 500
_LOG_CHUNK = 1024 * 1024
_EVERY = 10**9


@attrs.frozen(kw_only=True)
class CopyReport:
    """What a copy did, and the verified counts and checksums of both stores."""

    copied_builds: int  # created by this run
    resumed_after: int  # builds already in the destination when it started
    counts: dict[str, int]
    checksums: dict[str, str]
    seconds: float


def _all_builds(store: Store) -> list[Build]:
    out: list[Build] = []
    before = None
    while page := store.list_builds(before_id=before, limit=_PAGE):
        out += page
        before = page[-1].id
    return out[::-1]  # oldest first


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(attrs.asdict(value), default=str, sort_keys=True))


def store_digest(store: Store) -> tuple[dict[str, int], dict[str, str]]:
    """Counts and sha256 checksums of everything copy_store copies, by kind."""
    builds = _all_builds(store)
    position = {b.id: i for i, b in enumerate(builds)}
    hashes = {k: hashlib.sha256() for k in ("builds", "steps", "logs", "tests", "artifacts")}
    counts = dict.fromkeys(hashes, 0)

    def add(kind: str, value: Any, count: int = 1) -> None:
        data = value if isinstance(value, bytes) else json.dumps(value, sort_keys=True).encode()
        hashes[kind].update(data + b"\n")
        counts[kind] += count

    for b in builds:
        reuse = position.get(b.reuse_from, b.reuse_from) if b.reuse_from is not None else None
        add("builds", _jsonable(attrs.evolve(b, id=position[b.id], reuse_from=reuse)))
        for step in store.list_steps(b.id):
            add("steps", _jsonable(attrs.evolve(step, build_id=position[b.id])))
            log = store.read_log(b.id, step.name)
            add("logs", log, len(log))
        for kind, rows in (
            ("tests", store.list_test_results(b.id)),
            ("artifacts", store.list_artifacts(b.id)),
        ):
            for step_name, row in rows:
                add(kind, [step_name, _jsonable(row)])
    hashes["events"], counts["events"] = hashlib.sha256(), 0
    for e in reversed(store.list_events(limit=_EVERY)):
        bid = None if e.build_id is None else position.get(e.build_id, e.build_id)
        add("events", _jsonable(attrs.evolve(e, build_id=bid)))
    hashes["repos"], counts["repos"] = hashlib.sha256(), 0
    for r in store.list_registered_repos():
        add("repos", _jsonable(r))
    hashes["workers"], counts["workers"] = hashlib.sha256(), 0
    for w in store.list_workers():
        add("workers", _jsonable(w))
    counts["log_bytes"] = counts.pop("logs")
    hashes["log_bytes"] = hashes.pop("logs")
    return counts, {k: h.hexdigest() for k, h in hashes.items()}


# What happened to a build after it was queued: written with update_build,
# since create_build takes only the request.
_STATE_FIELDS = (
    "status",
    "reason",
    "started_at",
    "finished_at",
    "claimed_by",
    "cancel_requested",
    "runs_on",
    "heartbeat_at",
)


def _tail(items: list[Any], have: int) -> Iterator[tuple[str, list[Any]]]:
    """The items after the first ``have``, grouped in runs of one step."""
    run: list[Any] = []
    for step, item in items[have:]:
        if run and run[0][0] != step:
            yield run[0][0], [i for _, i in run]
            run = []
        run.append((step, item))
    if run:
        yield run[0][0], [i for _, i in run]


def _fill(src: Store, dst: Store, b: Build, did: int, *, fresh: bool) -> None:
    dst.update_build(did, **{name: getattr(b, name) for name in _STATE_FIELDS})
    for step in src.list_steps(b.id):
        dst.save_step(attrs.evolve(step, build_id=did))
        size = src.log_size(b.id, step.name)
        have = 0 if fresh else dst.log_size(did, step.name)
        for offset in range(have, size, _LOG_CHUNK):
            dst.append_log(did, step.name, src.read_log(b.id, step.name, offset, _LOG_CHUNK))
    have = 0 if fresh else len(dst.list_test_results(did))
    for step_name, cases in _tail(src.list_test_results(b.id), have):
        dst.add_test_results(did, step_name, cases)
    have = 0 if fresh else len(dst.list_artifacts(did))
    for step_name, items in _tail(src.list_artifacts(b.id), have):
        dst.add_artifacts(did, step_name, items)


def _create(dst: Store, b: Build, ids: dict[int, int]) -> int:
    reuse = None if b.reuse_from is None else ids.get(b.reuse_from, b.reuse_from)
    request = request_of(b, reuse_from=reuse)
    return create_at(dst, request, status=b.status, queued_at=b.queued_at).id


def create_at(dst: Store, request: BuildRequest, *, status: Status, queued_at: float) -> Build:
    """``dst.create_build`` with a given ``queued_at``. It is not updatable
    through the protocol: a store that keeps its clock in ``_clock`` (every
    built-in one) is lent this time for the call; others use their own."""
    clock = getattr(dst, "_clock", None)
    if clock is not None:
        dst._clock = lambda: queued_at  # type: ignore[attr-defined]
    try:
        return dst.create_build(request, status=status)
    finally:
        if clock is not None:
            dst._clock = clock  # type: ignore[attr-defined]


def copy_store(
    src: Store,
    dst: Store,
    *,
    progress: Callable[[int, int], None] | None = None,
    resume: bool = True,
) -> CopyReport:
    """Copy every build (steps, logs, results, artifacts), event, registered
    repository and worker record from ``src`` to ``dst``; raises ConfigError when
    ``dst`` is not empty (without ``resume``) or not a copy of ``src``, StoreError when
    the counts or checksums differ at the end. ``progress(done, total)`` is
    called after each build."""
    started = time.monotonic()
    src_builds = _all_builds(src)
    dst_builds = _all_builds(dst)
    if dst_builds and not resume:
        raise ConfigError(f"destination has {len(dst_builds)} builds; pass resume=True to resume")
    if len(dst_builds) > len(src_builds):
        raise ConfigError(
            f"destination has more builds ({len(dst_builds)}) than the source "
            f"({len(src_builds)}): not a copy of it"
        )
    ids = {s.id: d.id for s, d in zip(src_builds, dst_builds, strict=False)}
    if dst_builds:  # the last one may have been interrupted half-way
        _fill(src, dst, src_builds[len(dst_builds) - 1], dst_builds[-1].id, fresh=False)
    total = len(src_builds)
    for n, b in enumerate(src_builds[len(dst_builds) :], start=len(dst_builds) + 1):
        ids[b.id] = _create(dst, b, ids)
        _fill(src, dst, b, ids[b.id], fresh=True)
        if progress is not None:
            progress(n, total)
    for repo in src.list_registered_repos():
        dst.save_repo(repo)
    for worker in src.list_workers():
        dst.save_worker(worker)
    events = src.list_events(limit=_EVERY)[::-1]
    for e in events[len(dst.list_events(limit=_EVERY)) :]:
        bid = None if e.build_id is None else ids.get(e.build_id, e.build_id)
        dst.add_event(attrs.evolve(e, build_id=bid))
    src_counts, src_sums = store_digest(src)
    dst_counts, dst_sums = store_digest(dst)
    differ = sorted(
        k for k in src_sums if (src_counts[k], src_sums[k]) != (dst_counts[k], dst_sums[k])
    )
    if differ:
        detail = ", ".join(f"{k}: {src_counts[k]} vs {dst_counts[k]}" for k in differ)
        raise StoreError(f"copy verification failed for {detail} (source vs destination)")
    return CopyReport(
        copied_builds=len(src_builds) - len(dst_builds),
        resumed_after=len(dst_builds),
        counts=src_counts,
        checksums=src_sums,
        seconds=time.monotonic() - started,
    )
