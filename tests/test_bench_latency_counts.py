"""The soak's latency counts (load_tests/bench/latency_counts.py): percentiles without a sort."""

from __future__ import annotations

import pytest

from load_tests.bench.harness import percentiles
from load_tests.bench.latency_counts import LatencyCounts


def test_the_counts_give_a_lists_percentiles_within_one_percent() -> None:
    values = [(i % 1000 + 1) / 1000 for i in range(7919 * 3)]  # 1 ms .. 1 s, many times
    counts = LatencyCounts()
    for value in values:
        counts.append(value)
    assert len(counts) == len(values)
    found, exact = counts.take(), percentiles(values)
    for q in ("p50", "p95", "p99"):
        assert found[q] == pytest.approx(exact[q], rel=0.01)
    assert found["max"] == pytest.approx(1000, rel=0.01)


def test_taking_empties_them_and_nothing_is_out_of_range() -> None:
    counts = LatencyCounts()
    assert counts.take() == {"p50": None, "p95": None, "p99": None, "max": None}
    counts.append(0.0)  # under a microsecond: counted as one
    counts.append(7200.0)  # two hours: counted as the longest kept, an hour
    found = counts.take()
    assert found["p50"] == pytest.approx(0.001, abs=0.001)
    assert found["max"] == pytest.approx(3_600_000, rel=0.01)
    assert len(counts) == 0
    assert counts.take()["p99"] is None
