"""docs/prometheus-alerts.yml: valid rules (promtool), naming only series the server exports."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

import server.metrics  # noqa: F401 - registers the series

RULES = Path(__file__).resolve().parents[1] / "docs" / "prometheus-alerts.yml"
RULE_TESTS = Path(__file__).resolve().with_name("alert_rules_test.yml")


def test_alert_rules_name_only_exported_series() -> None:
    """Each moodboard_* and process_* name in an alert expression is a series we export."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    expressions = [rule["expr"] for group in groups for rule in group["rules"]]
    assert expressions
    exported = {
        sample_name
        for family in REGISTRY.collect()
        for sample_name in (family.name, f"{family.name}_total", f"{family.name}_bucket")
    }
    named = {
        name for expr in expressions for name in re.findall(r"\b(?:moodboard|process)_\w+", expr)
    }
    assert {"process_resident_memory_bytes", "process_open_fds", "process_max_fds"} <= named
    assert not named - exported, f"alerts name series nobody exports: {named - exported}"


def test_promtool_accepts_every_rule() -> None:
    """``promtool check rules`` (Debian's prometheus package) parses every expression, and
    ``promtool test rules`` shows the backup, worker and maintenance alerts firing on time."""
    promtool = shutil.which("promtool")
    if promtool is None:
        message = "promtool not installed (apt-get install prometheus): alert rules unchecked"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    result = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rules = sum(len(group["rules"]) for group in yaml.safe_load(RULES.read_text())["groups"])
    assert f"SUCCESS: {rules} rules found" in result.stdout
    result = subprocess.run(
        [promtool, "test", "rules", str(RULE_TESTS)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
