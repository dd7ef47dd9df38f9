"""Placement by declared cost on real workers (`sauci worker --cpus/--memory`
in two network namespaces), a real broker (Redis) and store (PostgreSQL): a
heavy build goes only to a worker with room for it, and light builds are not
stuck behind a queue of heavy ones."""

from __future__ import annotations

import itertools

import pytest
from polling import wait_for
from test_workers import finished, make_repo, queue

from sauci.core.models import Status
from sauci.core.server import read_status

pytestmark = pytest.mark.slow

GIB = 1024**3


def test_heavy_builds_go_where_they_fit_and_light_ones_do_not_wait_behind_them(cluster, tmp_path):
    heavy = make_repo(
        tmp_path / "heavy",
        "resources: {cpus: 2, memory: 2GiB}\nsteps:\n  work: {run: 'sleep 2'}\n",
    )
    light = make_repo(
        tmp_path / "light",
        "resources: {cpus: 0.5, memory: 256MiB}\nsteps:\n  work: {run: 'sleep 0.1'}\n",
    )
    store = cluster.store()
    cluster.start_worker("cost-big", 0, slots=4, extra=["--cpus", "2", "--memory", "4GiB"])
    cluster.start_worker("cost-small", 1, slots=4, extra=["--cpus", "1", "--memory", "1GiB"])
    cluster.wait_online(store, "cost-big", "cost-small")
    recorded = {w.name: (w.cpus, w.memory) for w in store.list_workers()}
    assert {"cost-big": (2.0, 4 * GIB), "cost-small": (1.0, GIB)} == recorded
    server = cluster.start_server()

    heavies = [queue(store, heavy, n=str(i)) for i in range(3)]
    lights = [queue(store, light, n=str(i)) for i in range(6)]
    # While heavy builds wait, each says why.
    wait_for(
        lambda: any(
            (store.get_build(i).reason or "").startswith("waiting for a worker: ") for i in heavies
        ),
        "a heavy build to say why it waits",
    )
    # The server's status (server.json: `sauci status`, the web page) has each worker's room.
    rooms = wait_for(
        lambda: (read_status(server.settings.data_dir) or {}).get("workers"),
        "the workers' rooms in server.json",
    )
    assert {"cost-big", "cost-small"} == {r["name"] for r in rooms}
    done = {
        i: wait_for(lambda i=i: finished(store, i), f"build {i} to end") for i in heavies + lights
    }

    assert all(b.status == Status.PASSED for b in done.values()), [
        (b.id, b.status, b.reason) for b in done.values()
    ]
    # No heavy build ever went to the worker without room for it, and the
    # worker that has room ran one at a time (2 CPUs each, 2 CPUs in all).
    assert {"cost-big"} == {done[i].claimed_by for i in heavies}
    spans = sorted((done[i].started_at, done[i].finished_at) for i in heavies)
    assert all(end <= start for (_, end), (start, _) in itertools.pairwise(spans))
    # Light builds ran on the small worker meanwhile: all of them were done
    # before the last heavy build, queued before them, began.
    last_heavy_start = spans[-1][0]
    assert all(done[i].finished_at <= last_heavy_start for i in lights)
    assert "cost-small" in {done[i].claimed_by for i in lights}
