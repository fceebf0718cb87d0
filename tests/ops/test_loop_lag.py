"""``moodboard_event_loop_lag_seconds``: a server's sampler sees the loop held up."""

from __future__ import annotations

import asyncio
import re
import time

from tests.api.conftest import app_for, serving


def lag(scraped: str) -> tuple[float, float]:
    """(count, sum) of the lag histogram in an exposition text."""
    count = re.search(r"^moodboard_event_loop_lag_seconds_count (\S+)$", scraped, re.M)
    total = re.search(r"^moodboard_event_loop_lag_seconds_sum (\S+)$", scraped, re.M)
    assert count is not None, "no lag histogram on /metrics"
    assert total is not None
    return float(count.group(1)), float(total.group(1))


async def test_a_blocked_loop_shows_as_lag(sqlite_url: str) -> None:
    async with serving(app_for(sqlite_url)) as client:
        await asyncio.sleep(0.3)  # samples of an idle loop
        count, total = lag((await client.get("/metrics")).text)
        assert count >= 1
        time.sleep(0.5)  # a blocking call on the loop (what the gauge is for)  # noqa: ASYNC251
        await asyncio.sleep(0.3)
        later_count, later_total = lag((await client.get("/metrics")).text)
    assert later_count > count
    assert later_total - total >= 0.35  # the stall minus at most one interval (0.1 s)
