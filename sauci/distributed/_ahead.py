"""Builds sent ahead: a worker's next build waits in its queue while its slots are busy.

Without it, a worker's slot that frees stays empty for a round trip: the
worker announces the end, the server wakes, reads the store, places and
sends, and the worker's Celery takes the message (20-35 ms a build on two
cores, each wave of builds). With it, a worker whose slots are all taken is
sent the build the policy would give it next; the message waits in its own
queue (``sauci@NAME``: a worker consumes no more messages than it has free
slots, ``worker_prefetch_multiplier = 1``), and the slot that frees first
takes it at once.

What keeps this within the placement's promises:

- Only a worker full by count gets builds ahead, at most one per slot: its
  Celery has no free slot to take a message before one of its builds ends,
  and then takes one (its slots, started together, often end together).
- The n-th build sent ahead is what :func:`~sauci.core.placement.place`
  chooses for the worker's room as it will be once its n smallest builds
  ended (each resource the n smallest) and the n - 1 ahead of it started,
  so whichever builds end first leave room for it, and the fairness and the
  bounded backfill are the policy's own.
- It holds no room until then: while it waits, another worker whose slot
  frees first is sent it as well; the store's claim decides, and the worker
  that loses drops its message (and announces its slot free again).
- A worker the policy holds for a build (``Placement.held``) is sent builds
  ahead only when that build fits the room one ended build leaves, and that
  build first: a worker drained for a heavy build gets none, its freed room
  is that build's. The policy holds a worker for the build waiting longest
  whenever every worker is full by count and the queue has waited
  ``hold_after``; had such a worker been sent nothing ahead, each of its
  freed slots would have waited for a round trip and taken a build already
  waiting in another worker's queue (sent to two workers, one of which then
  spends a message on a build that runs elsewhere).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs

from sauci.core.placement import WaitingBuild, WorkerRoom, place
from sauci.core.resources import Resources

__all__ = ["plan_ahead", "take_ahead"]


def take_ahead(
    rooms: list[WorkerRoom],
    ahead: dict[int, tuple[str, float]],
    assigned: dict[int, tuple[str, float]],
    cost: Mapping[int, Resources],
    now: float,
) -> list[WorkerRoom]:
    """``rooms`` once each build sent ahead to a worker that now has room for it
    is that worker's: its message is first in the worker's queue. Such builds
    move from ``ahead`` to ``assigned``, as sent ``now`` (monotonic): the
    worker takes the message from here on, and the resend time counts from
    here, not from a send that may be an hour old."""
    by_name = {r.name: r for r in rooms}
    for build_id, (name, _) in list(ahead.items()):
        room = by_name.get(name)
        if room is not None and room.takes(cost[build_id]):
            del ahead[build_id]
            assigned[build_id] = (name, now)
            by_name[name] = room.with_build(cost[build_id])
    return list(by_name.values())


def plan_ahead(
    waiting: Sequence[WaitingBuild],
    rooms: Sequence[WorkerRoom],
    ahead: Mapping[str, Sequence[Resources]],
    holds: Sequence[Resources],
    holders: Sequence[str],
    *,
    served: Mapping[str, float],
    now: float,
    hold_after: float,
    starve_after: float,
    held: Mapping[str, tuple[int, Resources]] | None = None,
) -> list[tuple[int, str]]:
    """(build id, worker) to send ahead now, in the order to send them.

    For each worker in ``rooms`` whose slots are all taken, up to one build
    per slot: the n-th build ahead (counting those ``ahead`` of it already,
    the costs of each worker's in the order sent) is what the policy gives
    the worker's room as it will be once its n smallest builds ended (each
    resource the n smallest) and the n - 1 before it started. Slots free one
    by one and take the waiting messages in order, so each fits whichever
    builds end first. ``holds`` and ``holders``: the cost of each build
    running on, or sent to, each worker. ``held``: worker -> (id, cost) of
    the build the policy holds it for; such a worker gets builds ahead only
    if that build fits the room one ended build leaves, and that build first
    when it waits here (not sent ahead elsewhere)."""
    chosen: list[tuple[int, str]] = []
    left = list(waiting)
    for room in rooms:
        if room.max_builds is None or room.running < room.max_builds:
            continue
        mine = [c for c, name in zip(holds, holders, strict=True) if name == room.name]
        before = list(ahead.get(room.name, ()))
        cpus = sorted(c.cpus for c in mine)
        memory = sorted(c.memory for c in mine)
        head = (held or {}).get(room.name)
        if head is not None and not _room_then(room, cpus, memory, 1, []).takes(head[1]):
            continue  # drained for a build that needs more than one build's room
        while left and len(before) < min(room.max_builds, len(mine)):
            freed = _room_then(room, cpus, memory, len(before) + 1, before)
            if head is not None and not before and head[0] in {b.id for b in left}:
                build_id = head[0]  # the room it frees first is the held-for build's
            else:
                plan = place(
                    _first_of_each_kind(left),
                    [freed],
                    served=served,
                    now=now,
                    hold_after=hold_after,
                    starve_after=starve_after,
                )
                if not plan.starts:
                    break
                build_id = plan.starts[0][0]
            chosen.append((build_id, room.name))
            before += [b.cost for b in left if b.id == build_id]
            left = [b for b in left if b.id != build_id]
    return chosen


def _room_then(
    room: WorkerRoom,
    cpus: list[float],
    memory: list[int],
    ended: int,
    started: Sequence[Resources],
) -> WorkerRoom:
    """``room`` once its ``ended`` smallest builds ended (``cpus`` and ``memory``
    sorted: each resource the smallest) and the builds ``started`` started,
    with one slot free."""
    return attrs.evolve(
        room,
        used_cpus=room.used_cpus - sum(cpus[:ended]) + sum(c.cpus for c in started),
        used_memory=room.used_memory - sum(memory[:ended]) + sum(c.memory for c in started),
        running=room.running - 1,
    )


def _first_of_each_kind(waiting: Sequence[WaitingBuild]) -> list[WaitingBuild]:
    """The first queued of each kind of build (repository, priority, cost, labels).

    Builds of a kind are interchangeable to the policy, which takes the first
    queued of a kind before the others and judges holds and backfills by the
    one waiting longest: for the first start on one room, the others change
    nothing, and placing among a queue of 1,000 would cost a quadratic pass.
    """
    first: dict[tuple[object, ...], WaitingBuild] = {}
    for build in sorted(waiting, key=lambda b: (b.queued_at, b.id)):
        first.setdefault((build.repo, build.priority, build.cost, build.needs), build)
    return list(first.values())
