"""Fixtures for the distributed tests: see cluster.py."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from cluster import Cluster, Hosts, Postgres, make_hosts, start_postgres, start_redis
from redis_server import RedisServer


@pytest.fixture(scope="session")
def dist_services() -> Iterator[tuple[Hosts, RedisServer, Postgres]]:
    """Two worker hosts, and Redis and PostgreSQL that both reach."""
    pytest.importorskip("celery")
    hosts = make_hosts(2)
    redis = pg = None
    try:
        addresses = ["127.0.0.1", hosts.gateway(0), hosts.gateway(1)]
        redis = start_redis(addresses)
        pg = start_postgres(addresses)
        for i in range(2):
            if not (hosts.reach(i, redis.port) and hosts.reach(i, pg.port)):
                pytest.fail(f"host {i} cannot reach Redis or PostgreSQL over its veth")
        yield hosts, redis, pg
    finally:
        if pg is not None:
            pg.stop()
        if redis is not None:
            redis.stop()
        hosts.down()


@pytest.fixture
def cluster(dist_services, tmp_path) -> Iterator[Cluster]:
    hosts, redis, pg = dist_services
    redis.flush()
    pg.truncate()
    c = Cluster(hosts, redis, pg, tmp_path)
    try:
        yield c
    finally:
        c.close()
