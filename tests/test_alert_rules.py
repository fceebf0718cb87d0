"""docs/prometheus-alerts.yml: valid YAML, and every series it names is one the server exports."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from prometheus_client import REGISTRY

import server.metrics  # noqa: F401 - registers the series

RULES = Path(__file__).resolve().parents[1] / "docs" / "prometheus-alerts.yml"


def test_alert_rules_name_only_exported_series() -> None:
    """Each moodboard_* name in an alert expression is a series of server/metrics.py."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    expressions = [rule["expr"] for group in groups for rule in group["rules"]]
    assert expressions
    exported = {
        sample_name
        for family in REGISTRY.collect()
        for sample_name in (family.name, f"{family.name}_total", f"{family.name}_bucket")
    }
    named = {name for expr in expressions for name in re.findall(r"moodboard_\w+", expr)}
    assert named
    assert not named - exported, f"alerts name series nobody exports: {named - exported}"
