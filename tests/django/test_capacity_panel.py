"""The overview's capacity panel: each worker's (or the in-process server's)
capacity and use by declared cost, and the queue with why each build waits."""

from __future__ import annotations

import json
import time

import pytest
from django.urls import reverse

from sauci.core.models import BuildRequest, Worker

pytestmark = pytest.mark.django_db

GIB = 1024**3


def write_status(data_dir, **fields) -> None:
    status = {"name": "serve:ci:1", "heartbeat": time.time(), "running": [], **fields}
    (data_dir / "server.json").write_text(json.dumps(status))


@pytest.fixture
def site(viewer_client, store, settings, tmp_path):
    settings.SAUCI = {"STORE": store, "DATA_DIR": str(tmp_path)}
    return viewer_client, store, tmp_path


def overview(client) -> str:
    response = client.get(reverse("sauci:overview"))
    assert 200 == response.status_code
    return response.content.decode()


def cells(html: str, name: str) -> list[str]:
    row = html.split(f"<code>{name}</code>", 1)[1].split("</tr>", 1)[0]
    return [c.split(">", 1)[1].split("</td>", 1)[0] for c in row.split("<td")[1:]]


def test_each_worker_shows_its_capacity_and_use_and_each_waiting_build_why(site):
    client, store, data_dir = site
    now = time.time()
    store.save_worker(
        Worker(name="big", slots=4, running=(7,), heartbeat_at=now, cpus=4, memory=16 * GIB)
    )
    store.save_worker(Worker(name="old", slots=2, heartbeat_at=now))  # an older SauCI's
    write_status(
        data_dir,
        workers=[
            {"name": "big", "cpus": 4, "memory": 16 * GIB, "cpus_used": 1.5,
             "memory_used": 12 * GIB, "builds": 1, "slots": 4},
        ],
    )  # fmt: skip
    build = store.create_build(BuildRequest(repo="/srv/app", ref="refs/heads/main"))
    store.update_build(build.id, reason="waiting for a worker: no worker with 8 GiB free")
    plain = store.create_build(BuildRequest(repo="/srv/app", ref="refs/heads/dev"))

    html = overview(client)
    assert ["1 / 4", "1.5 / 4", "12.0 GiB / 16.0 GiB"] == cells(html, "big")[1:4]
    assert ["not declared", "not declared"] == cells(html, "old")[2:4]
    panel = html.split('id="live-capacity"', 1)[1]
    rows = {r.split("#", 1)[1].split("<", 1)[0]: r for r in panel.split('<tr class="queued">')[1:]}
    assert '<td class="why">no worker with 8 GiB free</td>' in rows[str(build.id)]
    assert '<td class="why">next to start</td>' in rows[str(plain.id)]
    assert "queued" in rows[str(build.id)]  # the status carries its word, not a colour alone


def test_without_a_fresh_server_status_the_use_is_unknown_not_made_up(site):
    client, store, data_dir = site
    store.save_worker(Worker(name="w", slots=2, heartbeat_at=time.time(), cpus=2, memory=GIB))
    write_status(data_dir, heartbeat=time.time() - 3600, workers=[
        {"name": "w", "cpus": 2, "memory": GIB, "cpus_used": 2, "memory_used": GIB,
         "builds": 2, "slots": 2},
    ])  # fmt: skip
    assert ["? / 2", "? / 1.0 GiB"] == cells(overview(client), "w")[2:4]


def test_the_in_process_server_shows_its_own_capacity(site):
    client, _, data_dir = site
    write_status(
        data_dir,
        running=[1, 2],
        capacity={"cpus": 2, "memory": 4 * GIB, "cpus_used": 1.5, "memory_used": GIB},
    )
    html = overview(client)
    assert (
        "Server <code>serve:ci:1</code>: 2 builds running, CPUs in use 1.5 / 2, "
        "memory in use 1.0 GiB / 4.0 GiB." in html
    )
    assert "No build is waiting." in html


def test_a_hostile_repository_name_and_reason_show_as_text(site):
    client, store, _ = site
    build = store.create_build(
        BuildRequest(repo="/srv/<img src=x onerror=alert(1)>", ref="refs/heads/main")
    )
    store.update_build(build.id, reason="waiting: <script>alert(1)</script>")
    html = overview(client)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html
