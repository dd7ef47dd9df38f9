"""The state-change log: one structlog event per change, build/repo/step bound,
JSON or console as the log_format setting says."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys
from pathlib import Path
sys.path.insert(0, {helpers!r})
from sauci._logging import configure
from sauci.storage.memory import MemoryStore
from monitoring_helpers import run_builds
configure(level="info", fmt={fmt!r})
from sauci.core.models import BuildRequest
from sauci.core.scheduler import Scheduler
store = MemoryStore()
Scheduler(store).enqueue(BuildRequest(repo="/srv/queued.git", ref="refs/heads/main", event="cron"))
run_builds(store, Path({tmp!r}), names=("two", "timeout"))
"""


def run_logged(tmp_path: Path, fmt: str) -> str:
    code = SCRIPT.format(helpers=str(Path(__file__).parent), fmt=fmt, tmp=str(tmp_path))
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return proc.stderr


def test_json_log_has_one_event_per_step_change_with_context_bound(tmp_path):
    lines = [json.loads(line) for line in run_logged(tmp_path, "json").splitlines() if line]
    steps = [e for e in lines if e["event"] in ("step_started", "step_finished")]
    # two: hello, world; timeout: slow, hello — each started once and finished once.
    assert 8 == len(steps)
    for entry in steps:
        assert {"build", "repo", "step", "level", "timestamp"} <= set(entry)
        assert "/srv/app.git" == entry["repo"]
    slow = [e for e in steps if e["step"] == "slow" and e["event"] == "step_finished"]
    assert 1 == len(slow)
    assert "timeout" == slow[0]["ended_by"]
    assert "failed" == slow[0]["status"]
    queued = [e for e in lines if e["event"] == "build_queued" and "trigger" in e]
    assert 1 == len(queued)
    assert ("/srv/queued.git", "cron", "refs/heads/main") == (
        queued[0]["repo"],
        queued[0]["trigger"],
        queued[0]["ref"],
    )
    assert [] == [e for e in lines if e["event"] == "state_change_log_failed"]
    finished = [e for e in lines if e["event"] == "build_finished" and "repo" in e]
    assert ["passed", "passed"] == [e["status"] for e in finished]
    assert all(isinstance(e["seconds"], float) for e in finished)


def test_console_log_is_for_people(tmp_path):
    text = run_logged(tmp_path, "console")
    assert "step_finished" in text
    assert not text.lstrip().startswith("{")
    assert "step=slow" in text or "step='slow'" in text
