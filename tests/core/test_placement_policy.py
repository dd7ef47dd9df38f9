"""The placement policy: fair between repositories, packed, bounded backfill."""

from __future__ import annotations

from sauci.core.placement import WaitingBuild, WorkerRoom, place
from sauci.core.resources import Resources, machine_capacity

GIB = 2**30
HEAVY = Resources(cpus=2, memory=GIB)
LIGHT = Resources(cpus=0.5, memory=GIB // 4)


def _workers(n: int = 2, **kw: object) -> list[WorkerRoom]:
    return [
        WorkerRoom(name=f"w{i}", capacity=Resources(cpus=2, memory=4 * GIB), **kw)  # type: ignore[arg-type]
        for i in range(n)
    ]


def _build(id: int, repo: str, cost: Resources, at: float = 0.0) -> WaitingBuild:
    return WaitingBuild(id=id, repo=repo, cost=cost, queued_at=at)


def test_light_builds_of_another_repository_do_not_wait_behind_heavy_ones() -> None:
    queue = [_build(i, "heavy", HEAVY) for i in range(4)] + [
        _build(10 + i, "light", LIGHT, at=1.0) for i in range(4)
    ]
    result = place(queue, _workers(), served={}, now=1.0, hold_after=10)
    started = [b for b, _ in result.starts]
    assert [0, 10, 11, 12, 13] == started
    assert "no worker with 2 CPUs free" == result.waiting[1]


def test_builds_are_packed_best_fit_keeping_a_whole_worker_free() -> None:
    workers = [
        WorkerRoom(name="a", capacity=Resources(cpus=2, memory=4 * GIB), used_cpus=1),
        WorkerRoom(name="b", capacity=Resources(cpus=2, memory=4 * GIB)),
    ]
    result = place([_build(1, "r", LIGHT)], workers, served={}, now=0)
    assert ((1, "a"),) == result.starts


def test_a_head_waiting_past_the_bound_holds_a_worker_so_it_cannot_starve() -> None:
    workers = [
        WorkerRoom(name="a", capacity=Resources(cpus=2, memory=4 * GIB), used_cpus=1.5),
        WorkerRoom(name="b", capacity=Resources(cpus=2, memory=4 * GIB), used_cpus=0.5),
    ]
    queue = [_build(1, "heavy", HEAVY, at=0.0), _build(2, "light", LIGHT, at=0.5)]
    early = place(queue, workers, served={}, now=0.5, hold_after=1.0)
    assert [2] == [b for b, _ in early.starts]  # backfilled while the head is young
    late = place(queue, workers, served={}, now=1.5, hold_after=1.0)
    assert [(2, "a")] == list(late.starts)  # not on b, which drains for the head
    assert late.waiting[1].endswith("b is held for it")


def test_a_build_larger_than_every_worker_says_so_and_blocks_nothing() -> None:
    huge = Resources(cpus=1, memory=64 * GIB)
    result = place(
        [_build(1, "r", huge), _build(2, "r", LIGHT, at=1)], _workers(), served={}, now=9
    )
    assert ((2, "w0"),) == result.starts
    assert result.waiting[1].startswith("no worker can ever hold 1 CPU, 64 GiB")


def test_max_builds_still_caps_the_count_of_builds() -> None:
    queue = [_build(i, "r", LIGHT) for i in range(3)]
    result = place(queue, _workers(1, max_builds=2), served={}, now=0)
    assert 2 == len(result.starts)
    assert "every worker runs its --max-builds" == result.waiting[2]


def test_machine_capacity_reads_cgroup_limits(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "meminfo").write_text("MemTotal:       16384000 kB\n")
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    (tmp_path / "memory.max").write_text(f"{2 * GIB}\n")
    found = machine_capacity(proc=tmp_path, cgroup=tmp_path)
    assert Resources(cpus=1.5, memory=2 * GIB) == found
    (tmp_path / "cpu.max").write_text("max 100000\n")
    (tmp_path / "memory.max").write_text("max\n")
    assert 16384000 * 1024 == machine_capacity(proc=tmp_path, cgroup=tmp_path).memory


def test_waiting_light_builds_keep_freed_room_until_the_head_would_starve() -> None:
    workers = [
        WorkerRoom(name="a", capacity=Resources(cpus=2, memory=4 * GIB), used_cpus=2),
        WorkerRoom(name="b", capacity=Resources(cpus=2, memory=4 * GIB), used_cpus=1),
    ]
    heavy = _build(1, "heavy", HEAVY, at=0.0)
    blocked = [_build(10 + i, "light", LIGHT, at=1.0) for i in range(3)]
    kept = place([heavy, *blocked], workers, served={}, now=2.5, hold_after=1.0, starve_after=5)
    assert [(10, "b"), (11, "b")] == list(kept.starts)  # the lights that waited take b
    late = place([heavy, *blocked], workers, served={}, now=6.0, hold_after=1.0, starve_after=5)
    assert () == late.starts  # past starve_after b drains for the heavy build
    assert late.waiting[1].endswith("b is held for it")


def test_a_whole_worker_build_does_not_take_the_last_free_worker_while_deferred() -> None:
    # Rule 4: two heavy builds just queued, nothing lighter in sight. The first
    # takes a worker (another still has room); the second would take the last
    # one whole, and waits ``defer`` from its queueing for lighter builds
    # queued with it. Without a defer both start at once, as before.
    queue = [_build(1, "heavy", HEAVY, at=10.0), _build(2, "heavy", HEAVY, at=10.0)]
    assert [1, 2] == [b for b, _ in place(queue, _workers(), served={}, now=10.02).starts]
    deferred = place(queue, _workers(), served={}, now=10.02, defer=0.1)
    assert [1] == [b for b, _ in deferred.starts]
    assert "the last worker with room: deferred 0.1 s" in deferred.waiting[2]
    later = place(queue, _workers(), served={}, now=10.15, defer=0.1)
    assert [1, 2] == [b for b, _ in later.starts]


def test_a_light_build_queued_a_moment_after_heavy_ones_takes_the_room_deferred() -> None:
    # The round after the light build came: it starts on the worker the second
    # heavy build was deferred from, and the heavy build is no longer deferred
    # (a lighter build is in sight: rules 1-3 decide, and it waits for room).
    busy = WorkerRoom(name="w0", capacity=Resources(cpus=2, memory=4 * GIB), used_cpus=2, running=1)
    free = WorkerRoom(name="w1", capacity=Resources(cpus=2, memory=4 * GIB))
    queue = [_build(2, "heavy", HEAVY, at=10.0), _build(3, "light", LIGHT, at=10.03)]
    result = place(queue, [busy, free], served={"heavy": 0.1}, now=10.04, defer=0.1)
    assert [(3, "w1")] == list(result.starts)
    assert "deferred" not in result.waiting[2]


def test_the_defer_leaves_builds_that_leave_room_alone() -> None:
    # A light build filling a worker's last room, or a heavy build on a worker
    # while another is free, starts at once whatever the defer.
    queue = [_build(1, "light", LIGHT, at=10.0)]
    nearly = WorkerRoom(
        name="w0", capacity=Resources(cpus=2, memory=4 * GIB), used_cpus=1.5, running=3
    )
    assert [1] == [b for b, _ in place(queue, [nearly], served={}, now=10, defer=1).starts]
    heavy = [_build(2, "heavy", HEAVY, at=10.0)]
    assert [2] == [b for b, _ in place(heavy, _workers(), served={}, now=10, defer=1).starts]


def test_a_build_within_one_slot_s_share_is_never_deferred() -> None:
    # On workers of one slot every build takes its worker whole, and none is
    # lighter than a slot's share: rule 4 would only delay them.
    one_slot = [
        WorkerRoom(name="w0", capacity=Resources(cpus=2, memory=4 * GIB), max_builds=1),
        WorkerRoom(name="w1", capacity=Resources(cpus=2, memory=4 * GIB), max_builds=1),
    ]
    queue = [_build(1, "r", LIGHT, at=10.0), _build(2, "r", LIGHT, at=10.0)]
    assert [1, 2] == [b for b, _ in place(queue, one_slot, served={}, now=10, defer=1).starts]
    heavy = [_build(1, "r", HEAVY, at=10.0), _build(2, "r", HEAVY, at=10.0)]
    four = _workers(max_builds=4)
    assert [1] == [b for b, _ in place(heavy, four, served={}, now=10, defer=1).starts]
