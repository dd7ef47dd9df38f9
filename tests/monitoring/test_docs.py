"""The dashboard, the alert rules and docs/monitoring.md name only metrics SauCI exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from sauci.monitoring.metrics import Metrics
from sauci.storage.memory import MemoryStore

pytest.importorskip("prometheus_client")

DOCS = Path(__file__).parent.parent.parent / "docs"
NAME = re.compile(r"\bsauci_[a-z_]+\b")
SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def exported() -> set[str]:
    """Every sample name the metrics can produce (with histogram and counter suffixes)."""
    registry = Metrics(store=MemoryStore()).registry
    names = set()
    for family in registry.collect():
        names.add(family.name)
        names.update(family.name + suffix for suffix in SUFFIXES)
    return names


def test_dashboard_queries_use_exported_metrics():
    dashboard = json.loads((DOCS / "grafana" / "sauci-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 15
    used = {name for expr in exprs for name in NAME.findall(expr)}
    assert used and used <= exported(), used - exported()


def test_alert_rules_are_well_formed_and_use_exported_metrics():
    rules = yaml.safe_load((DOCS / "grafana" / "alerts.yml").read_text())
    (group,) = rules["groups"]
    alerts = {rule["alert"]: rule for rule in group["rules"]}
    assert {"SauCIQueueStuck", "SauCIWorkerHeartbeatMissing", "SauCIBuildErrorRate"} <= set(alerts)
    for rule in alerts.values():
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"]
    used = {name for rule in alerts.values() for name in NAME.findall(rule["expr"])}
    assert used <= exported(), used - exported()


def test_the_docs_list_every_metric_family():
    text = (DOCS / "monitoring.md").read_text()
    documented = {m for m in NAME.findall(text)}
    families = {f.name for f in Metrics(store=MemoryStore()).registry.collect()}
    # Counters are documented with their _total sample name.
    shown = {n.removesuffix("_total") for n in documented} | documented
    assert families <= shown, families - shown
