"""A write that lands while its answer is lost (the connection drops after
the server applied it) is sent again by the retrying store: test results,
artifacts and events must still be stored once, on every real store."""

from __future__ import annotations

import pytest

from sauci import BuildRequest
from sauci.core.models import Artifact, Event, TestCase
from sauci.core.store_retry import RetryingStore
from sauci.exceptions import StoreError
from sauci.storage import open_store

_WRITES = ("add_test_results", "add_artifacts", "add_event")


class AnswerLost:
    """Passes every call to the store; each write of ``_WRITES`` is applied
    and then answered, once, with the error a dropped connection gives."""

    def __init__(self, store) -> None:
        self.store = store
        self.lost: list[str] = []

    def __getattr__(self, name: str):
        value = getattr(self.store, name)
        if name not in _WRITES:
            return value

        def call(*args, **kwargs):
            result = value(*args, **kwargs)
            if name not in self.lost:
                self.lost.append(name)
                try:
                    raise ConnectionResetError(104, "Connection reset by peer")
                except OSError as exc:
                    raise StoreError(f"{name}: connection lost") from exc
            return result

        return call


@pytest.fixture(params=["sqlite", "postgresql", "redis", "stream"])
def store(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'sauci.db'}"
    elif request.param == "postgresql":
        url = request.getfixturevalue("clean_postgres")
    else:
        redis = request.getfixturevalue("persistent_redis")
        url = redis.url if request.param == "redis" else "stream+" + redis.url
    opened = open_store(url)
    yield opened
    opened.close()


def test_a_write_sent_again_after_its_answer_was_lost_is_stored_once(store):
    build = store.create_build(BuildRequest(repo="/repo"))
    flaky = AnswerLost(store)
    retrying = RetryingStore(flaky, deadline=30.0, sleep=lambda _: None)
    cases = [TestCase(name="test_a"), TestCase(name="test_b", status="failed")]
    items = [Artifact(path="dist/a.whl", size=3, sha256="ab" * 32)]
    event = Event(kind="build_cancelled", at=1.5, build_id=build.id, actor="ann", data={"n": 1})

    retrying.add_test_results(build.id, "unit", cases)
    retrying.add_artifacts(build.id, "build", items)
    retrying.add_event(event)
    retrying.add_event(Event(kind="build_cancelled", at=2.0, build_id=None, actor="bob"))

    assert sorted(_WRITES) == sorted(flaky.lost)  # every write lost its answer once
    assert [("unit", c) for c in cases] == store.list_test_results(build.id)
    assert [("build", items[0])] == store.list_artifacts(build.id)
    assert [event.kind] == [e.kind for e in store.list_events(build_id=build.id)]
    assert [2.0, 1.5] == [e.at for e in store.list_events()]
