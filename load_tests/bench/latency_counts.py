"""Latencies counted as they come, for percentiles read while the load goes on (the soak).

A list of every delivery's latency, sorted at each sample, stopped the
generator's loop: 1,000 sockets at 50 events a second make 1.5 million
floats in a 30-second window, and sorting them (with the collections those
lists cost) held the loop 0.4-0.8 s, late for every frame that came in
meanwhile: the soak then measured its own stall as the server's p99
(docs/benchmarks.md "Session 12"). An HDR histogram (the ``hdrhistogram``
package) counts each value in its bucket instead: the same percentiles
within 1 %, read in a fraction of a millisecond whatever the count.
"""

from __future__ import annotations

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # an hour: anything later is counted as an hour
SIGNIFICANT_DIGITS = 2  # each value within 1 %


class LatencyCounts:
    """Latencies in seconds (``append``, as onto a list), read and emptied by ``take``."""

    def __init__(self) -> None:
        self._counts = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)

    def append(self, seconds: float) -> None:
        self._counts.record_value(min(HIGHEST_US, max(LOWEST_US, int(seconds * 1_000_000))))

    def __len__(self) -> int:
        return int(self._counts.get_total_count())

    def take(self) -> dict[str, float | None]:
        """p50/p95/p99 and the longest, in ms (None when none came), as ``percentiles`` gives."""
        counts = self._counts
        if not counts.get_total_count():
            found: dict[str, float | None] = {"p50": None, "p95": None, "p99": None, "max": None}
        else:
            found = {
                f"p{q}": round(counts.get_value_at_percentile(q) / 1000, 2) for q in (50, 95, 99)
            }
            found["max"] = round(counts.get_max_value() / 1000, 2)
        counts.reset()
        return found
