"""The soak tool (load_tests/bench/soak.py), short: a real server under load, churn and resumes.

The 30-minute run is a tool (``python -m load_tests.bench --only SOAK``); this
checks in seconds that it measures what it says: every sample read, and
sockets cut and resumed carry on without a gap.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from load_tests.bench.harness import ours
from load_tests.bench.soak import grown, read_scrape, soak, verdict
from tests.conftest import PG_ADMIN_URL, require

pytestmark = pytest.mark.e2e


async def test_a_short_soak_reads_every_sample_and_resumes_lose_nothing(
    redis_url: str, tmp_path: Path
) -> None:
    require("PostgreSQL")
    async with ours(PG_ADMIN_URL, redis_url, tmp_path) as target:
        result = await soak(target, seconds=8, subscribers=24, rate=10, churn=2, sample_s=2)
    samples = result["samples"]
    assert len(samples) >= 3
    last = samples[-1]
    assert last["resumes"] >= 6  # two a second, after the first second
    assert last["joins"] >= 6
    assert last["failed_joins"] == 0
    assert result["editors"] == 2  # 10 edits a second, 5 from each editing socket
    assert last["acked_edits"] >= 40
    assert all(s["tasks"] is not None and s["tasks"] > 0 for s in samples)
    assert all(s["open_fds"] > 24 and s["rss_mib"] > 10 for s in samples)
    assert all(s["deliveries"] > 0 for s in samples)
    # Where late frames wait: the kernel's queues (Linux) and the generator's own loop.
    assert all(s["generator_loop_lag_ms"]["p99"] is not None for s in samples)
    assert all(s["ack_ms"]["p99"] is not None for s in samples)
    # Each ack's time split at the server's `at`: both parts seen, the first never negative
    # beyond the clocks' rounding (the server cannot take an edit before it was sent).
    assert all(s["commit_ms"]["p99"] is not None for s in samples)
    assert all(s["before_server_ms"]["p50"] > -1 for s in samples)
    assert all(s["heap_blocks"] is not None and s["heap_blocks"] > 0 for s in samples)
    # Stalls: the generator's longest loop lag and collection, the server's late timer
    # readings and full collections, per window (counters read as their growth).
    assert all(s["generator_loop_lag_max_ms"] is not None for s in samples)
    assert all(s["generator_gc_max_ms"] >= 0 for s in samples)
    assert all(s["server_lag_over_100ms"] is not None for s in samples)
    assert all(s["server_full_collections"] is not None for s in samples)
    assert all(s["server_buffered_kib"] is not None for s in samples)
    if sys.platform.startswith("linux"):
        assert all(s["server_unsent_kib"] is not None for s in samples)
        assert all(s["generator_unread_kib"] is not None for s in samples)
    found = verdict(samples)
    assert found["gaps"] == 0, "a resumed or live socket missed, doubled or reordered an event"
    assert found["closed_unasked"] == 0
    assert found["stalled_windows"] == 0
    assert found["rss_mib_per_hour"] is not None


def test_the_slope_is_per_hour_and_warm_up_is_left_out() -> None:
    """A value growing 1 MiB a minute after a warm-up jump reads 60 MiB an hour."""
    samples = [
        {
            "t_s": 60.0 * i,
            "rss_mib": (500.0 if i == 0 else 100.0 + i),
            "open_fds": 50,
            "threads": 7,
            "tasks": 30.0 + (i == 0) * 100,
            "delivery_ms": {"p99": 5.0 + i},
            "gaps": 0,
            "closed_unasked": 0,
            "acked_edits": 100 * min(i, 6),  # 100 a minute, then none after minute 6
        }
        for i in range(10)
    ]
    found = verdict(samples)
    assert found["rss_mib_per_hour"] == pytest.approx(60.0)
    assert found["rss_mib_per_hour_second_half"] == pytest.approx(60.0)  # a leak keeps its slope
    assert found["stalled_windows"] == 3
    assert found["acked_edits_per_s"] == pytest.approx(400 / 420, abs=0.05)
    assert found["tasks"] == [30.0, 30.0]
    assert found["p99_ms"] == [7.0, 14.0]


def test_a_warm_up_that_ends_late_has_no_slope_in_the_second_half() -> None:
    """RSS climbing for the first half of the steady samples, then flat: not a leak."""
    samples = [
        {
            "t_s": 60.0 * i,
            "rss_mib": 100.0 + min(i, 10),
            "acked_edits": 100 * i,
            "delivery_ms": {"p99": 5.0},
            "gaps": 0,
            "closed_unasked": 0,
        }
        for i in range(20)
    ]
    found = verdict(samples)
    assert found["rss_mib_per_hour"] > 10
    assert found["rss_mib_per_hour_second_half"] == pytest.approx(0.0)


def test_a_scrape_is_read_by_name_and_counters_as_their_growth() -> None:
    first = read_scrape(
        "moodboard_asyncio_tasks 12.0\n"
        'moodboard_event_loop_lag_seconds_bucket{le="0.1"} 90.0\n'
        'moodboard_event_loop_lag_seconds_bucket{le="0.25"} 95.0\n'
        "moodboard_event_loop_lag_seconds_count 100.0\n"
        'python_gc_collections_total{generation="2"} 3.0\n'
    )
    later = read_scrape(
        'moodboard_event_loop_lag_seconds_bucket{le="0.1"} 290.0\n'
        "moodboard_event_loop_lag_seconds_count 304.0\n"
        'python_gc_collections_total{generation="2"} 5.0\n'
    )
    assert first["tasks"] == 12.0
    assert later["tasks"] is None
    assert grown(later, first, "lag_readings") == 204
    assert grown(later, first, "lag_readings_within_100ms") == 200
    assert grown(later, first, "full_collections") == 2
    assert grown(later, first, "heap_blocks") is None
