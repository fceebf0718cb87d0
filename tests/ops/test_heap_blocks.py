"""``moodboard_python_heap_blocks``: the scrape counts the blocks Python's allocator holds."""

from __future__ import annotations

from tests.api.conftest import app_for, serving
from tests.gauges import gauge


def blocks(scraped: str) -> float:
    return gauge(scraped, "moodboard_python_heap_blocks")


async def test_objects_kept_alive_show_in_the_gauge_and_leave_it_when_freed(
    sqlite_url: str,
) -> None:
    async with serving(app_for(sqlite_url)) as client:
        before = blocks((await client.get("/metrics")).text)
        kept = [[n] for n in range(100_000)]  # a list block each, at least
        during = blocks((await client.get("/metrics")).text)
        del kept
        after = blocks((await client.get("/metrics")).text)
    assert during - before >= 100_000
    assert during - after >= 100_000
