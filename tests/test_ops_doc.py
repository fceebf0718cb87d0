"""docs/operations.md is in step with the settings and the metrics it documents."""

from __future__ import annotations

from prometheus_client.metrics import MetricWrapperBase

from server import metrics
from server.ops_doc import DESCRIPTIONS, DOC, read_variables, updated


def test_generated_reference_parts_are_up_to_date() -> None:
    """Regenerating the configuration and metrics tables of docs/operations.md changes nothing."""
    current = DOC.read_text()
    assert updated(current) == current, "run: .venv/bin/python -m server.ops_doc"


def test_every_variable_the_settings_read_is_described() -> None:
    """A variable settings.py reads has a description, and every description is a variable."""
    read = set(read_variables())
    assert read == set(DESCRIPTIONS), (
        f"undocumented: {sorted(read - set(DESCRIPTIONS))}; "
        f"documented but never read: {sorted(set(DESCRIPTIONS) - read)}"
    )


def test_every_series_is_listed_once() -> None:
    """metrics.ALL (what the docs list) holds every series server/metrics.py defines."""
    defined = [
        v
        for v in vars(metrics).values()
        if isinstance(v, MetricWrapperBase) and not v._labelvalues  # not a labelled child
    ]
    assert len(metrics.ALL) == len(set(map(id, metrics.ALL)))
    assert {id(v) for v in defined} == {id(v) for v in metrics.ALL}
