"""Expected durations and arrival rates, learnt from the builds a store has."""

from __future__ import annotations

from sauci.core.durations import DurationHistory, arrival_rates, expected_durations
from sauci.core.models import Build, BuildRequest, Status
from sauci.storage.memory import MemoryStore


def _done(id: int, repo: str, seconds: float, status: Status = Status.PASSED) -> Build:
    return Build(
        id=id,
        repo=repo,
        status=status,
        queued_at=float(id),
        started_at=1000.0 + id - seconds,
        finished_at=1000.0 + id,  # the later id, the later it ended
    )


def test_the_median_of_the_last_passed_builds_is_expected() -> None:
    builds = [_done(i, "r", s) for i, s in enumerate([50, 1, 2, 3, 100, 2, 4])]
    builds += [_done(20, "r", 900, Status.FAILED), _done(21, "other", 7)]
    found = expected_durations(builds, last=5)
    assert {"r": 3.0, "other": 7.0} == found  # the last five: 2, 3, 100, 2, 4
    assert {} == expected_durations([Build(id=1, repo="r", status=Status.RUNNING)])


def test_arrival_rates_count_builds_between_the_first_and_last_queued() -> None:
    builds = [Build(id=i, repo="light", queued_at=0.1 * i) for i in range(11)]
    builds += [Build(id=100 + i, repo="burst", queued_at=5.0) for i in range(5)]
    rates = arrival_rates(builds, since=0.0, until=10.0)
    assert 10.0 == round(rates["light"], 6)
    assert "burst" not in rates  # five at once is a burst, not a rate


def test_a_store_history_is_read_then_kept_for_the_refresh_time() -> None:
    now = [1000.0]
    store = MemoryStore(clock=lambda: now[0])
    for seconds in (2.0, 4.0, 3.0):
        build = store.create_build(BuildRequest(repo="r"))
        store.claim_build("w", build_id=build.id)
        now[0] += seconds
        store.finish_build(build.id, "w", status=Status.PASSED, reason=None, finished_at=now[0])
    history = DurationHistory(store, refresh=30.0, clock=lambda: now[0])
    forecast = history.forecast(["r", "new"])
    assert {"r": 3.0} == dict(forecast.durations)  # no history for "new": no entry
    build = store.create_build(BuildRequest(repo="r"))
    store.claim_build("w", build_id=build.id)
    now[0] += 10.0
    store.finish_build(build.id, "w", status=Status.PASSED, reason=None, finished_at=now[0])
    assert {"r": 3.0} == dict(history.forecast(["r"]).durations)  # read 10 s ago: kept
    now[0] += 21.0
    assert {"r": 3.5} == dict(history.forecast(["r"]).durations)


def _finish(store: MemoryStore, now: list[float], repo: str, seconds: float) -> None:
    build = store.create_build(BuildRequest(repo=repo))
    store.claim_build("w", build_id=build.id)
    now[0] += seconds
    store.finish_build(build.id, "w", status=Status.PASSED, reason=None, finished_at=now[0])


def test_a_build_that_ended_makes_its_repository_read_again() -> None:
    now = [1000.0]
    store = MemoryStore(clock=lambda: now[0])
    history = DurationHistory(store, refresh=30.0, settle=1.0, clock=lambda: now[0])
    assert {} == dict(history.forecast(["r"]).durations)  # a new repository: nothing yet
    _finish(store, now, "r", 2.0)
    assert {} == dict(history.forecast(["r"]).durations)  # read 2 s ago, no end told
    history.ended("r")
    # No duration known: read again at once, not 30 s after the first read.
    assert {"r": 2.0} == dict(history.forecast(["r"]).durations)
    _finish(store, now, "r", 0.5)
    history.ended("r")
    assert {"r": 2.0} == dict(history.forecast(["r"]).durations)  # read 0.5 s ago: settling
    now[0] += 0.5
    assert {"r": 1.25} == dict(history.forecast(["r"]).durations)
    _finish(store, now, "other", 1.0)
    history.ended("other")  # only the repositories asked for are read
    now[0] += 5.0
    assert {"r": 1.25} == dict(history.forecast(["r"]).durations)


def test_an_end_reads_only_the_duration_not_the_rate_of_builds() -> None:
    # The rate reads a repository's last 200 builds; ends do not change it, so
    # it keeps its refresh time (the duration's read is five builds).
    now = [1000.0]
    store = MemoryStore(clock=lambda: now[0])
    limits: list[int] = []
    list_builds = store.list_builds

    def counting(query=None, **kwargs):  # type: ignore[no-untyped-def]
        limits.append(query.limit)
        return list_builds(query, **kwargs)

    store.list_builds = counting  # type: ignore[method-assign]
    history = DurationHistory(store, refresh=30.0, settle=1.0, clock=lambda: now[0])
    history.forecast(["r"])
    assert [5, 200] == limits
    _finish(store, now, "r", 2.0)
    history.ended("r")
    history.forecast(["r"])
    assert [5, 200, 5] == limits
