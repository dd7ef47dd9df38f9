"""``make_store_state_machine``: a Hypothesis RuleBasedStateMachine that runs
random operations on a store and on a MemoryStore, the reference model, and
asserts that both give the same results (errors included).

Re-exported by :mod:`sauci.testing`."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import attrs
import pytest

from sauci.core.models import (
    Artifact,
    Build,
    BuildRequest,
    EndedBy,
    Event,
    Repo,
    Status,
    StepRun,
    TestCase,
    Worker,
)
from sauci.exceptions import NotFoundError
from sauci.testing._store_support import MISSING_ID
from sauci.typing import Store

__all__ = ["make_store_state_machine"]


def make_store_state_machine(
    factory: Callable[[Callable[[], float]], Store], *, compare_times: bool = True
) -> type[Any]:
    """A Hypothesis RuleBasedStateMachine class that runs random operations
    on ``factory(clock)`` and on a MemoryStore and asserts equal results.

    ``factory`` gets the machine's clock (a callable returning float epoch
    seconds) and must return a new, empty store that uses it for the times it
    records. A store that cannot take a clock is compared with timestamps
    dropped: pass ``compare_times=False``. Builds are matched by creation
    order, so a store's ids need only be increasing.
    """
    from hypothesis import strategies as st
    from hypothesis.stateful import (
        Bundle,
        RuleBasedStateMachine,
        initialize,
        multiple,
        precondition,
        rule,
    )

    from sauci.storage.memory import MemoryStore
    from sauci.testing._store_strategies import (
        EVENTS,
        REFS,
        REPOS,
        STEPS,
        WORKER_NAMES,
        artifacts,
        new_statuses,
        opt_text,
        repos,
        requests,
        statuses,
        test_cases,
        text,
        times,
        update_fields,
        workers,
    )

    class StoreStateMachine(RuleBasedStateMachine):
        """Few rules, each checking much: more state per example finds more."""

        builds = Bundle("builds")

        def __init__(self) -> None:
            super().__init__()
            self.now = 1_700_000_000.0
            self.model = MemoryStore(clock=self._clock)
            self.store = factory(self._clock)
            self.to_model: dict[int, int] = {}  # store id -> model id
            self.to_store: dict[int, int] = {}  # model id -> store id
            self.logs: set[tuple[int, str]] = set()  # (model build id, step) with data

        def _clock(self) -> float:
            return self.now

        def teardown(self) -> None:
            try:
                self._compare_everything()
            finally:
                self.store.close()

        # comparing

        def _sid(self, model_id: int) -> int:
            return self.to_store.get(model_id, model_id)

        def _mid(self, store_id: int) -> int:
            return self.to_model.get(store_id, store_id)

        def _norm(self, value: Any) -> Any:
            if isinstance(value, Build):
                reuse = None if value.reuse_from is None else self._mid(value.reuse_from)
                value = attrs.evolve(value, id=self._mid(value.id), reuse_from=reuse)
                if not compare_times:
                    value = attrs.evolve(
                        value, queued_at=0.0, started_at=None, finished_at=None, heartbeat_at=None
                    )
            elif isinstance(value, StepRun | Event) and value.build_id is not None:
                value = attrs.evolve(value, build_id=self._mid(value.build_id))
            elif isinstance(value, list | tuple):
                value = type(value)(self._norm(v) for v in value)
            return value

        def _both(self, call: Callable[[Store, Callable[[int], int]], Any]) -> Any:
            """Run ``call`` on the model and on the store (``sid`` maps a model
            build id to the store's); both must return equal results or raise
            the same kind of exception. Returns the model's result."""
            try:
                expected: Any = call(self.model, lambda i: i)
            except (NotFoundError, TypeError, ValueError) as exc:
                with pytest.raises(type(exc)):
                    call(self.store, self._sid)
                return None
            actual = call(self.store, self._sid)
            assert self._norm(expected) == self._norm(actual)
            if isinstance(expected, Build):
                self.to_model[actual.id] = expected.id
                self.to_store[expected.id] = actual.id
            return expected

        def _compare_stats(self, repo: str | None) -> None:
            expected = dict(self.model.build_stats(repo=repo))
            actual = dict(self.store.build_stats(repo=repo))
            mean_expected = expected.pop("mean_duration")
            mean_actual = actual.pop("mean_duration")
            assert expected == actual
            if not compare_times:
                return
            if mean_expected is None:
                assert mean_actual is None
            else:
                assert math.isclose(mean_expected, mean_actual, rel_tol=1e-9, abs_tol=1e-6)

        def _compare_everything(self) -> None:
            every = 10**6
            self._both(lambda s, _: s.list_builds(limit=every))
            self._both(lambda s, _: s.list_repos())
            self._both(lambda s, _: s.list_events(limit=every))
            self._both(lambda s, _: s.list_registered_repos())
            self._both(lambda s, _: s.list_workers())
            self._compare_stats(None)
            for build in self.model.list_builds(limit=every):
                self._on_build("list_steps", build.id)
                self._on_build("list_test_results", build.id)
                self._on_build("list_artifacts", build.id)
            for build_id, step in sorted(self.logs):
                self._on_build("read_log", build_id, step)
                self._on_build("log_size", build_id, step)

        def _on_build(self, method: str, build_id: int, *args: Any) -> Any:
            """``_both`` for a method whose first argument is a build id."""
            return self._both(lambda s, sid: getattr(s, method)(sid(build_id), *args))

        build_ids = st.one_of(builds, builds, builds, st.just(MISSING_ID))

        # writes

        @initialize(target=builds, batch=st.lists(requests, min_size=1, max_size=4))
        def create_queue(self, batch: list[BuildRequest]) -> Any:
            return multiple(*(self.create_build(request, Status.QUEUED) for request in batch))

        @rule(target=builds, request=requests, status=new_statuses)
        def create_build(self, request: BuildRequest, status: Status) -> int:
            self.now += 1.0

            def create(s: Store, sid: Callable[[int], int]) -> Build:
                reuse = None if request.reuse_from is None else sid(request.reuse_from)
                return s.create_build(attrs.evolve(request, reuse_from=reuse), status=status)

            return int(self._both(create).id)

        @rule(build_id=build_ids, changes=update_fields)
        def update_build(self, build_id: int, changes: dict[str, Any]) -> None:
            self._both(lambda s, sid: s.update_build(sid(build_id), **changes))

        @rule(worker=st.sampled_from(("w1", "w2")), build_id=st.none() | build_ids)
        def claim_build(self, worker: str, build_id: int | None) -> None:
            self.now += 0.5
            if build_id is None:
                self._both(lambda s, _: s.claim_build(worker))
            else:
                self._both(lambda s, sid: s.claim_build(worker, build_id=sid(build_id)))

        @rule(build_id=build_ids, worker=st.sampled_from(("w1", "w2")))
        def heartbeat_build(self, build_id: int, worker: str) -> None:
            self.now += 0.5
            self._on_build("heartbeat_build", build_id, worker)
            self._on_build("get_build", build_id)

        @rule(
            build_id=build_ids,
            worker=st.sampled_from(("w1", "w2")),
            status=statuses,
            reason=opt_text,
            finished_at=st.floats(0, 2e9, allow_nan=False).map(lambda f: round(f, 3)),
        )
        def finish_build(self, build_id: int, worker: str, **fields: Any) -> None:
            self._both(lambda s, sid: s.finish_build(sid(build_id), worker, **fields))
            self._on_build("get_build", build_id)

        @rule(worker=workers)
        def save_worker(self, worker: Worker) -> None:
            self._both(lambda s, _: s.save_worker(worker))
            self._both(lambda s, _: s.list_workers())

        @rule(name=st.sampled_from((*WORKER_NAMES, "never")))
        def delete_worker(self, name: str) -> None:
            self._both(lambda s, _: s.delete_worker(name))
            self._both(lambda s, _: s.list_workers())

        @rule(
            build_id=build_ids,
            name=st.sampled_from(STEPS),
            position=st.integers(0, 3),
            status=statuses,
            reason=opt_text,
            ended_by=st.none() | st.sampled_from(list(EndedBy)),
            exit_code=st.none() | st.integers(-1, 255),
            signal=st.none() | st.integers(1, 31),
            attempt=st.integers(0, 3),
            allow_failure=st.booleans(),
            needs=st.lists(st.sampled_from(STEPS), max_size=2).map(tuple),
            started_at=times,
            finished_at=times,
            log_bytes=st.integers(0, 2**40),
            log_path=opt_text,
        )
        def save_step(self, build_id: int, **fields: Any) -> None:
            self._both(lambda s, sid: s.save_step(StepRun(build_id=sid(build_id), **fields)))
            self._both(lambda s, sid: s.list_steps(sid(build_id)))

        @rule(
            build_id=build_ids,
            step=st.sampled_from(STEPS),
            chunks=st.lists(st.binary(max_size=200), min_size=1, max_size=4),
        )
        def append_log(self, build_id: int, step: str, chunks: list[bytes]) -> None:
            for chunk in chunks:
                if self._on_build("append_log", build_id, step, chunk):
                    self.logs.add((build_id, step))

        @rule(build_id=build_ids, step=st.sampled_from(STEPS), cases=test_cases)
        def add_test_results(self, build_id: int, step: str, cases: list[TestCase]) -> None:
            self._both(lambda s, sid: s.add_test_results(sid(build_id), step, cases))
            self._both(lambda s, sid: s.list_test_results(sid(build_id)))

        @rule(build_id=build_ids, step=st.sampled_from(STEPS), items=artifacts)
        def add_artifacts(self, build_id: int, step: str, items: list[Artifact]) -> None:
            self._both(lambda s, sid: s.add_artifacts(sid(build_id), step, items))
            self._both(lambda s, sid: s.list_artifacts(sid(build_id)))

        @rule(
            kind=st.sampled_from(("build_queued", "build_cancelled")),
            build_id=st.none() | build_ids,
            actor=text,
            data=st.dictionaries(text, st.none() | st.integers(-5, 5) | text, max_size=2),
        )
        def add_event(self, build_id: int | None, **fields: Any) -> None:
            self.now += 0.25

            def add(s: Store, sid: Callable[[int], int]) -> None:
                store_id = None if build_id is None else sid(build_id)
                s.add_event(Event(at=self.now, build_id=store_id, **fields))

            self._both(add)

        @rule(repo=repos)
        def save_repo(self, repo: Repo) -> None:
            self._both(lambda s, _: s.save_repo(repo))
            self._both(lambda s, _: s.list_registered_repos())

        @rule(repo_id=st.sampled_from(("app", "lib", "é", "never")))
        def delete_repo(self, repo_id: str) -> None:
            self._both(lambda s, _: s.delete_repo(repo_id))
            self._both(lambda s, _: s.list_registered_repos())

        @rule(delivery_id=st.sampled_from(("gh-1", "gh-2", "gl-1")))
        def record_delivery(self, delivery_id: str) -> None:
            self._both(lambda s, _: s.record_delivery(delivery_id))

        # reads

        @rule(build_id=build_ids)
        def get_build(self, build_id: int) -> None:
            self._both(lambda s, sid: s.get_build(sid(build_id)))

        @rule(
            repo=st.none() | st.sampled_from(REPOS),
            ref=st.none() | st.sampled_from(REFS),
            status=st.none() | statuses,
            event=st.none() | st.sampled_from(EVENTS),
            author=st.none() | st.sampled_from(("ada", "bob")),
            before=st.none() | builds,
            limit=st.integers(0, 6),
        )
        def list_builds(self, before: int | None, limit: int, **filters: Any) -> None:
            def page(s: Store, sid: Callable[[int], int], **only: Any) -> list[Build]:
                cursor = None if before is None else sid(before)
                return s.list_builds(before_id=cursor, limit=limit, **only)

            self._both(lambda s, sid: page(s, sid, **filters))
            for name, value in filters.items():  # each filter alone too
                if value is not None:
                    self._both(functools.partial(page, **{name: value}))

        @rule(build_id=st.none() | build_ids, limit=st.integers(0, 5), repo=st.sampled_from(REPOS))
        def list_the_rest(self, build_id: int | None, limit: int, repo: str) -> None:
            self._both(lambda s, _: s.list_repos())
            self._both(
                lambda s, sid: s.list_events(
                    build_id=None if build_id is None else sid(build_id), limit=limit
                )
            )
            self._compare_stats(None)
            self._compare_stats(repo)

        @precondition(lambda self: self.logs)
        @rule(data=st.data())
        def read_log(self, data: st.DataObject) -> None:
            build_id, step = data.draw(st.sampled_from(sorted(self.logs)))
            size = self.model.log_size(build_id, step)
            for _ in range(3):
                offset = data.draw(st.integers(0, size + 2))
                limit = data.draw(st.none() | st.integers(0, size + 2))
                self._on_build("read_log", build_id, step, offset, limit)
            self._on_build("log_size", build_id, step)

    StoreStateMachine.__name__ = StoreStateMachine.__qualname__ = "StoreStateMachine"
    return StoreStateMachine
