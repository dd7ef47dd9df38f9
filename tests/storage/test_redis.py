"""RedisStore against a redis-server started by the tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test
from redis_server import RedisServer, redis_server, redis_url  # noqa: F401

from sauci.core.models import BuildRequest
from sauci.exceptions import StoreError
from sauci.storage import open_store
from sauci.testing import StoreConformance, make_store_state_machine
from sauci.typing import Store

redis = pytest.importorskip("redis")

from sauci.storage.redis import RedisStore  # noqa: E402


class TestRedisStore(StoreConformance):
    @pytest.fixture
    def store(self, redis_url: str) -> Iterator[RedisStore]:  # noqa: F811
        s = RedisStore(redis_url)
        yield s
        s.close()


def test_redis_store_behaves_like_memory_store(redis_server: RedisServer) -> None:  # noqa: F811
    def factory(clock: Callable[[], float]) -> Store:
        redis_server.flush()
        return RedisStore(redis_server.url, clock=clock)

    run_state_machine_as_test(
        make_store_state_machine(factory),
        settings=settings(
            max_examples=30,
            stateful_step_count=50,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


def test_open_store_and_prefixes_keep_stores_apart(redis_url: str) -> None:  # noqa: F811
    a = open_store(redis_url + "?prefix=a")
    b = open_store(redis_url + "?prefix=b")
    assert isinstance(a, RedisStore)
    a.create_build(BuildRequest(repo="r"))
    assert (1, 0) == (len(a.list_builds()), len(b.list_builds()))
    a.close()
    b.close()


def test_a_stopped_server_is_a_store_error_and_a_restart_recovers(
    redis_server: RedisServer,  # noqa: F811
    redis_url: str,  # noqa: F811
) -> None:
    store = RedisStore(redis_url, socket_timeout=2)
    build = store.create_build(BuildRequest(repo="r"))
    redis_server.stop()
    try:
        started = time.monotonic()
        with pytest.raises(StoreError) as info:
            store.get_build(build.id)
        assert isinstance(info.value.__cause__, redis.RedisError)
        with pytest.raises(StoreError):
            store.append_log(build.id, "test", b"x")
        assert time.monotonic() - started < 10  # never hangs
    finally:
        redis_server.start()
    # No persistence here: the restarted server is empty, but the store works again.
    assert store.create_build(BuildRequest(repo="r")).id >= 1
    store.close()


def test_a_missing_redis_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from sauci.exceptions import MissingDependencyError

    monkeypatch.setitem(__import__("sys").modules, "redis", None)
    with pytest.raises(MissingDependencyError, match=r"sauci\[redis\]"):
        open_store("redis://127.0.0.1:1/0")
    with pytest.raises(MissingDependencyError, match=r"sauci\[redis\]"):
        open_store("stream+redis://127.0.0.1:1/0")
