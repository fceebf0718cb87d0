"""``moodboard_python_heap_blocks``: the scrape counts the blocks Python's allocator holds."""

from __future__ import annotations

import gc

import httpx

from tests.api.conftest import app_for, serving
from tests.gauges import gauge


async def blocks(client: httpx.AsyncClient) -> float:
    # Garbage from earlier tests in this process would be freed at any moment in between
    # (millions of blocks in a long run): collect it first, so the reading moves with ours.
    gc.collect()
    return gauge((await client.get("/metrics")).text, "moodboard_python_heap_blocks")


async def test_objects_kept_alive_show_in_the_gauge_and_leave_it_when_freed(
    sqlite_url: str,
) -> None:
    async with serving(app_for(sqlite_url)) as client:
        before = await blocks(client)
        kept = [[n] for n in range(1_000, 301_000)]  # a list, its items and an int each
        during = await blocks(client)
        del kept
        after = await blocks(client)
    assert during - before >= 300_000
    assert during - after >= 300_000
