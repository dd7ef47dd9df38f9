"""A manual trigger asked for by several processes at once (two web workers
behind one load balancer, two `sauci trigger` runs) makes one build: the
store's record of who asked first is shared, where the Scheduler's lock is
not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sauci.storage.sqlite import SQLiteStore

_CLICK = """
import pathlib, sys, time
from sauci.core.scheduler import Scheduler
from sauci.storage.sqlite import SQLiteStore
store = SQLiteStore(sys.argv[1])
go = pathlib.Path(sys.argv[2])
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
build = Scheduler(store).trigger("/srv/app.git", ref="refs/heads/main", actor="ann")
print(build.id)
"""


def test_four_processes_triggering_at_once_make_one_build(tmp_path: Path) -> None:
    db, go = tmp_path / "sauci.db", tmp_path / "go"
    SQLiteStore(db).close()  # the schema, before the race
    clicks = [
        subprocess.Popen(
            [sys.executable, "-c", _CLICK, str(db), str(go)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    for c in clicks:  # every one imported and connected: then all at once
        assert c.stdout is not None
        assert "ready" == c.stdout.readline().strip()
    go.touch()
    answers = {c.communicate(timeout=60)[0].strip() for c in clicks}
    assert [0, 0, 0, 0] == [c.returncode for c in clicks]
    store = SQLiteStore(db)
    (build,) = store.list_builds()
    assert {str(build.id)} == answers
    store.close()
