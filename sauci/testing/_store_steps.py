"""Conformance tests of the StepStore part: every field round-trips, a step is
replaced by name, steps are listed in position order per build."""

from __future__ import annotations

from typing import ClassVar

import attrs
import pytest

from sauci.core.models import EndedBy, Status, StepRun
from sauci.exceptions import NotFoundError
from sauci.testing._store_support import MISSING_ID, StorePartConformance, build_request
from sauci.typing import StepStore, Store

__all__ = ["StepStoreConformance"]


class StepStoreConformance(StorePartConformance):
    """Step records: every field, replaced by name, listed by position."""

    parts: ClassVar[tuple[type, ...]] = (StepStore,)

    def test_save_step_round_trips_every_field(self, store: Store) -> None:
        build = store.create_build(build_request())
        step = StepRun(
            build_id=build.id,
            name="test (py3.11)",
            position=2,
            status=Status.ERRORED,
            reason="killed after 600 s timeout",
            ended_by=EndedBy.TIMEOUT,
            exit_code=None,
            signal=9,
            attempt=2,
            allow_failure=True,
            needs=("lint", "build"),
            started_at=100.0,
            finished_at=700.5,
            log_bytes=12345,
            log_path="/var/lib/sauci/logs/1/test.log",
        )
        assert step == store.save_step(step)
        assert [step] == store.list_steps(build.id)
        stored = store.list_steps(build.id)[0]
        assert isinstance(stored.status, Status)
        assert isinstance(stored.ended_by, EndedBy)
        assert isinstance(stored.needs, tuple)

    def test_save_step_replaces_the_step_of_the_same_name(self, store: Store) -> None:
        build = store.create_build(build_request())
        store.save_step(StepRun(build_id=build.id, name="test", position=1))
        done = StepRun(
            build_id=build.id,
            name="test",
            position=1,
            status=Status.PASSED,
            exit_code=0,
            attempt=1,
            started_at=1.0,
            finished_at=2.0,
        )
        store.save_step(done)
        assert [done] == store.list_steps(build.id)
        back = attrs.evolve(done, status=Status.RUNNING, exit_code=None, finished_at=None)
        store.save_step(back)
        assert [back] == store.list_steps(build.id)

    def test_list_steps_is_in_position_order(self, store: Store) -> None:
        build = store.create_build(build_request())
        for name, position in (("deploy", 3), ("lint", 0), ("test", 2), ("build", 1), ("b", 2)):
            store.save_step(StepRun(build_id=build.id, name=name, position=position))
        names = [s.name for s in store.list_steps(build.id)]
        assert ["lint", "build", "b", "test", "deploy"] == names

    def test_steps_belong_to_their_build(self, store: Store) -> None:
        one = store.create_build(build_request())
        two = store.create_build(build_request())
        store.save_step(StepRun(build_id=one.id, name="test"))
        assert [] == store.list_steps(two.id)
        assert [] == store.list_steps(MISSING_ID)
        assert ["test"] == [s.name for s in store.list_steps(one.id)]

    def test_save_step_of_a_missing_build_raises_not_found(self, store: Store) -> None:
        with pytest.raises(NotFoundError):
            store.save_step(StepRun(build_id=MISSING_ID, name="test"))
