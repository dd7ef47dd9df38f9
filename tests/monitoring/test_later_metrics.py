"""Metrics made after `sauci serve`'s "watching" line (sauci.monitoring.later):
prometheus_client is not imported before it, and what happened before the
metrics were made is counted as if they had been there from the start."""

from __future__ import annotations

import subprocess
import sys

import pytest
from monitoring_helpers import run_builds, value

from sauci.core.models import Status
from sauci.monitoring import install
from sauci.storage.memory import MemoryStore

pytest.importorskip("prometheus_client")


def test_builds_and_store_calls_before_the_metrics_are_made_are_counted(tmp_path):
    store = MemoryStore()
    handle = install(
        store=store, component="serve", data_dir=tmp_path / "data", analytics=False,
        metrics_later=True,
    )  # fmt: skip
    try:
        assert None is handle.metrics
        before = run_builds(handle.store, tmp_path, names=("one", "fail"))
        handle.make_metrics()
        after = run_builds(handle.store, tmp_path, names=("two",))
        assert [Status.PASSED, Status.FAILED, Status.PASSED] == [
            o.build.status for o in (*before, *after)
        ]
        text = handle.metrics.render()[0].decode()
        assert 2 == value(text, "sauci_builds_total", repo="/srv/app.git", status="passed")
        assert 1 == value(text, "sauci_builds_total", repo="/srv/app.git", status="failed")
        assert 3 == value(text, "sauci_build_duration_seconds_count")
        assert 4 == value(text, "sauci_step_duration_seconds_count")  # 1 + 1 + 2
        assert 0 == value(text, "sauci_running_builds")
        assert 3 == value(
            text, "sauci_store_operation_seconds_count", backend="memory", operation="create_build"
        )
    finally:
        handle.close()


def test_make_metrics_makes_them_once(tmp_path):
    handle = install(
        store=MemoryStore(), component="serve", data_dir=tmp_path, analytics=False,
        metrics_later=True,
    )  # fmt: skip
    try:
        handle.make_metrics()
        made = handle.metrics
        handle.make_metrics()
        assert made is handle.metrics is not None
    finally:
        handle.close()


SERVE = """
import sys
from sauci.app.flags import policy_overrides
from sauci.app.serve import run_server
from sauci.cli import build_parser
from sauci.cli._context import open_cli_store, settings_from
from sauci.monitoring import current
args = build_parser("serve").parse_args(
    ["serve", "--data-dir", sys.argv[1], "--sandbox", "local", "--no-ui"]
)
settings = settings_from(args, **policy_overrides(args))

def web(store):
    def start():  # run_server's last step: stop at once (its handlers are not in yet)
        print("metrics made before the UI:", current().metrics is not None)
        raise SystemExit(0)

    return "", start, lambda: None

def said(line):
    print("prometheus_client at the line:", "prometheus_client" in sys.modules)

run_server(open_cli_store(settings), settings, args, web=web, out=said)
"""


def test_serve_imports_prometheus_client_after_its_watching_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", SERVE, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert [
        "prometheus_client at the line: False",
        "metrics made before the UI: True",
    ] == done.stdout.splitlines(), done.stderr
