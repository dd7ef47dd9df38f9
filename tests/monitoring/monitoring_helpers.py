"""Helpers shared by the monitoring tests (and tests/django/test_monitoring.py)."""

from __future__ import annotations

from pathlib import Path

from sauci.core.config import Settings
from sauci.core.models import BuildRequest, Pipeline, Step

PIPELINES = {
    "one": [Step(name="hello", run="echo hi")],
    "two": [Step(name="hello", run="echo hi"), Step(name="world", run="echo world")],
    "timeout": [
        Step(name="slow", run="sleep 30", timeout=0.5, allow_failure=True),
        Step(name="hello", run="echo hi"),
    ],
    "fail": [Step(name="bad", run="echo no; exit 1")],
}


def run_builds(store, tmp_path: Path, names=("one", "two", "timeout", "fail"), repo="/srv/app.git"):
    """Run each named pipeline once with a LocalRunner; returns the outcomes."""
    from sauci.app import LocalRunner

    settings = Settings(data_dir=tmp_path / "data", grace=0.2, sandbox="local")
    runner = LocalRunner(store=store, settings=settings, secrets={})
    outcomes = []
    for i, name in enumerate(names):
        ws = tmp_path / f"ws-{i}"
        ws.mkdir(exist_ok=True)
        outcomes.append(
            runner.run_pipeline(
                Pipeline(steps=PIPELINES[name]),
                ws,
                BuildRequest(
                    repo=repo,
                    ref="refs/heads/main",
                    sha=f"{i:040d}",
                    event="push",
                    author="Ann Author",
                    message="SECRET-COMMIT-MESSAGE",
                ),
            )
        )
    return outcomes


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition text: (name, sorted labels) -> value."""
    from prometheus_client.parser import text_string_to_metric_families

    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, tuple(sorted(labels.items()))))
