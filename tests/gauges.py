"""Reading one unlabelled gauge from a ``/metrics`` scrape, for the tests of gauges."""

from __future__ import annotations

import re


def gauge(scraped: str, name: str) -> float:
    """The value of the unlabelled series ``name`` in Prometheus' text format."""
    found = re.search(rf"^{re.escape(name)} (\S+)$", scraped, re.M)
    assert found is not None, f"no {name} on /metrics"
    return float(found.group(1))
