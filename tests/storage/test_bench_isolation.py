"""`sauci bench stores` never writes into a store that holds data: Redis URLs
without a prefix get one of their own (removed afterwards), and a store with
builds is refused before any store is written to."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis_server import RedisServer, redis_server  # noqa: F401

from sauci.core.models import BuildRequest
from sauci.exceptions import ConfigError
from sauci.storage.bench import bench_stores, bench_url
from sauci.storage.copy import store_digest
from sauci.storage.sqlite import SQLiteStore

pytest.importorskip("redis")


def test_a_store_that_holds_builds_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    empty, full = tmp_path / "empty.db", tmp_path / "full.db"
    store = SQLiteStore(full)
    store.create_build(BuildRequest(repo="precious"))
    before = store_digest(store)
    store.close()
    with pytest.raises(ConfigError, match="holds builds"):
        bench_stores([f"sqlite:///{empty}", f"sqlite:///{full}"], builds=3, steps=1, log_kib=1)
    store = SQLiteStore(full)
    assert before == store_digest(store)
    store.close()
    assert [] == SQLiteStore(empty).list_builds()  # the first one was not measured either


def test_redis_gets_a_prefix_of_its_own_and_leaves_no_key(
    redis_server: RedisServer,  # noqa: F811
) -> None:
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.set("sauci:next_id", 41)  # someone's store without a prefix: never touched
    assert "prefix=sauci-bench-" in bench_url(redis_server.url)
    assert "prefix=mine" in bench_url(redis_server.url + "?prefix=mine")
    urls = [redis_server.url, "stream+" + redis_server.url]
    results = bench_stores(urls, builds=3, steps=1, log_kib=1)
    assert all(r["writes_per_s"] > 0 for r in results)
    assert [b"sauci:next_id"] == client.keys("*")
    assert b"41" == client.get("sauci:next_id")
    client.close()
