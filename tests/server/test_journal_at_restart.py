"""A server killed while its store was down left a build's journal on disk:
the restarted server replays it before it ends the interrupted build, so the
step that had ended keeps its end and its test results reach the store."""

from __future__ import annotations

import json
import socket

import attrs

from sauci.app.server import build_server
from sauci.core.config import Settings
from sauci.core.journal import journal_dir, pending_journals
from sauci.core.models import BuildRequest, Status, StepRun
from sauci.storage import open_store


def test_the_restarted_server_replays_the_journal_first(tmp_path):
    (tmp_path / "data").mkdir()
    store = open_store(f"sqlite:///{tmp_path / 'data' / 'sauci.db'}")
    settings = Settings(data_dir=tmp_path / "data", sandbox="local")
    build = store.create_build(BuildRequest(repo="/r", sha="b" * 40, event="push"))
    dead = f"serve:{socket.gethostname()}:999999999"
    build = store.update_build(build.id, status=Status.RUNNING, claimed_by=dead)
    running = store.save_step(
        StepRun(build_id=build.id, name="test", status=Status.RUNNING, attempt=1)
    )
    passed = attrs.evolve(running, status=Status.PASSED, exit_code=0)
    case = {"name": "t", "classname": "c", "status": "failed", "duration": 0.1}
    case |= {"message": "no", "text": "", "file": ""}
    entries = [
        {"op": "tests", "name": "test", "cases": [case]},
        {"op": "step", "step": json.loads(json.dumps(attrs.asdict(passed)))},
    ]
    folder = journal_dir(settings.data_dir)
    folder.mkdir()
    lines = [{"build_id": build.id, "uuid": build.uuid}]
    lines += [{"n": i, **e} for i, e in enumerate(entries, start=1)]
    (folder / f"{build.uuid}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))

    (again,) = build_server(store=store, settings=settings).recover()
    assert pending_journals(settings.data_dir) == []
    (step,) = store.list_steps(build.id)
    assert (step.status, step.exit_code) == (Status.PASSED, 0)
    assert [(s, c.name, c.status) for s, c in store.list_test_results(build.id)] == [
        ("test", "t", "failed")
    ]
    ended = store.get_build(build.id)
    assert ended.status is Status.ERRORED and ended.reason.startswith("SauCI restarted")
    assert again.status is Status.QUEUED
