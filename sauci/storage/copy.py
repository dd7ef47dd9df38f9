"""Copy everything from one store to another through the Store protocol,
and verify counts and checksums at the end (``sauci store copy``).

A destination that holds builds is refused unless the copy is a *merge*.
A merge matches each source build to the destination's build of the same
identity (:func:`build_key`: its UUID where builds have one, else the fields
a build never changes after it is queued: repository, event, queue time,
pusher, old sha, attempt, parameters) and only fills in what is missing
(steps are replaced, logs and results get only their missing tail), so
copying twice is copying once, an interrupted copy is finished by merging
again, and two histories are never spliced by position. Build ids may differ;
checksums compare builds by position among the copied ones. Webhook delivery
ids cannot be listed through the protocol and are not copied; a step's log is
found through its recorded step. Worker records are copied as they are (a
worker's ``running`` ids are the source's).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs

from sauci.core.models import Build, BuildRequest, Status
from sauci.exceptions import ConfigError, StoreError
from sauci.storage._fields import request_of
from sauci.typing import Store

__all__ = ["CopyReport", "build_key", "copy_store", "create_at", "store_digest"]

_PAGE = 500
_LOG_CHUNK = 1024 * 1024
_EVERY = 10**9


@attrs.frozen(kw_only=True)
class CopyReport:
    """What a copy did, and the verified counts and checksums of both stores."""

    copied_builds: int  # created by this run
    resumed_after: int  # source builds the destination held already (a merge)
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


def build_key(build: Build) -> tuple[Any, ...]:
    """What makes a build the same build in two stores: its ``uuid`` where the
    model has one, else the fields fixed when it was queued (``update_build``
    may change its ref, sha and priority later, so they are not part of it)."""
    uuid = getattr(build, "uuid", None)
    if uuid:
        return ("uuid", str(uuid))
    params = tuple(sorted((str(k), str(v)) for k, v in build.params.items()))
    return (
        build.repo,
        build.event,
        repr(float(build.queued_at)),
        build.pusher,
        build.old_sha,
        build.attempt,
        params,
    )


def store_digest(store: Store) -> tuple[dict[str, int], dict[str, str]]:
    """Counts and sha256 checksums of everything copy_store copies, by kind."""
    counts, sums = _digest(store, _all_builds(store))
    for kind, items in (
        ("events", _events(store, {})),
        ("repos", [_jsonable(r) for r in store.list_registered_repos()]),
        ("workers", [_jsonable(w) for w in store.list_workers()]),
    ):
        h = hashlib.sha256()
        for item in items:
            h.update(json.dumps(item, sort_keys=True).encode() + b"\n")
        counts[kind], sums[kind] = len(items), h.hexdigest()
    return counts, sums


def _events(store: Store, position: dict[int, int] | None) -> list[Any]:
    """The store's events oldest first, build ids as positions (``position``
    empty: every build's position in the whole store; None: ids as they are)."""
    if position is not None and not position:
        position = {b.id: i for i, b in enumerate(_all_builds(store))}
    out = []
    for e in reversed(store.list_events(limit=_EVERY)):
        bid = e.build_id
        if bid is not None and position is not None:
            bid = position.get(bid, bid)
        out.append(_jsonable(attrs.evolve(e, build_id=bid)))
    return out


def _digest(store: Store, builds: Sequence[Build]) -> tuple[dict[str, int], dict[str, str]]:
    """Counts and checksums of ``builds`` (in this order) with their steps,
    logs, tests and artifacts; build ids are compared as positions."""
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


# Request fields update_build may change after queueing (a resolved sha).
_LATER_FIELDS = ("ref", "sha", "author", "message", "priority")


def _by_step(items: list[Any]) -> Iterator[tuple[str, list[Any]]]:
    """The items grouped by step, steps in order of first appearance."""
    groups: dict[str, list[Any]] = {}
    for step, item in items:
        groups.setdefault(step, []).append(item)
    yield from groups.items()


def _fill(src: Store, dst: Store, b: Build, did: int, *, fresh: bool) -> None:
    dst.update_build(did, **{name: getattr(b, name) for name in _STATE_FIELDS + _LATER_FIELDS})
    for step in src.list_steps(b.id):
        dst.save_step(attrs.evolve(step, build_id=did))
        size = src.log_size(b.id, step.name)
        have = 0 if fresh else dst.log_size(did, step.name)
        for offset in range(have, size, _LOG_CHUNK):
            dst.append_log(did, step.name, src.read_log(b.id, step.name, offset, _LOG_CHUNK))
    # A step's results and artifacts replace what the destination had for
    # that step: copying again (or resuming) leaves one copy.
    for step_name, cases in _by_step(src.list_test_results(b.id)):
        dst.add_test_results(did, step_name, cases)
    for step_name, items in _by_step(src.list_artifacts(b.id)):
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
    merge: bool = False,
) -> CopyReport:
    """Copy every build (steps, logs, results, artifacts), event, registered
    repository and worker record from ``src`` to ``dst``. Raises ConfigError
    when ``dst`` holds builds and ``merge`` is not set; with ``merge`` every
    source build already in ``dst`` (same :func:`build_key`) is completed
    instead of copied again, so merging twice changes nothing. Raises
    StoreError when the counts or checksums of the copied builds differ at
    the end. ``progress(done, total)`` is called after each build."""
    started = time.monotonic()
    src_builds = _all_builds(src)
    dst_builds = _all_builds(dst)
    if dst_builds and not merge:
        raise ConfigError(
            f"the destination holds {len(dst_builds)} builds: copy into an empty store, "
            "or pass --merge to add the source's builds to them (builds already there "
            "are matched by identity and completed, never copied twice)"
        )
    existing: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    for d in dst_builds:
        existing[build_key(d)].append(d.id)
    taken: Counter[tuple[Any, ...]] = Counter()
    ids: dict[int, int] = {}
    matched = 0
    total = len(src_builds)
    for n, b in enumerate(src_builds, start=1):
        key = build_key(b)
        same = existing.get(key, [])
        if taken[key] < len(same):  # the n-th source build of a key is the n-th there
            ids[b.id] = same[taken[key]]
            matched += 1
            _fill(src, dst, b, ids[b.id], fresh=False)
        else:
            ids[b.id] = _create(dst, b, ids)
            _fill(src, dst, b, ids[b.id], fresh=True)
        taken[key] += 1
        if progress is not None:
            progress(n, total)
    for repo in src.list_registered_repos():
        dst.save_repo(repo)
    for worker in src.list_workers():
        dst.save_worker(worker)
    # Events have no identity: each source event (its build id mapped) is
    # added as many times as it is missing, so a merge never doubles one.
    have = Counter(json.dumps(e, sort_keys=True) for e in _events(dst, None))
    for e in reversed(src.list_events(limit=_EVERY)):
        bid = None if e.build_id is None else ids.get(e.build_id, e.build_id)
        mapped = attrs.evolve(e, build_id=bid)
        text = json.dumps(_jsonable(mapped), sort_keys=True)
        if have[text] > 0:
            have[text] -= 1
        else:
            dst.add_event(mapped)
    _verify(src, dst, src_builds, ids, whole=not dst_builds)
    src_counts, src_sums = store_digest(src)
    return CopyReport(
        copied_builds=total - matched,
        resumed_after=matched,
        counts=src_counts,
        checksums=src_sums,
        seconds=time.monotonic() - started,
    )


def _verify(
    src: Store, dst: Store, builds: list[Build], ids: dict[int, int], *, whole: bool
) -> None:
    """The copied builds compared with the source's; a copy into an empty
    store compares the whole stores (events, repositories, workers too)."""
    if whole:
        (src_counts, src_sums), (dst_counts, dst_sums) = store_digest(src), store_digest(dst)
    else:
        copies = {b.id: b for b in _all_builds(dst)}
        src_counts, src_sums = _digest(src, builds)
        dst_counts, dst_sums = _digest(dst, [copies[ids[b.id]] for b in builds])
    differ = sorted(
        k for k in src_sums if (src_counts[k], src_sums[k]) != (dst_counts[k], dst_sums[k])
    )
    if differ:
        detail = ", ".join(f"{k}: {src_counts[k]} vs {dst_counts[k]}" for k in differ)
        raise StoreError(f"copy verification failed for {detail} (source vs destination)")
