"""``moodboard_asyncio_tasks``: the scrape counts the tasks alive in the server's loop."""

from __future__ import annotations

import asyncio

from tests.api.conftest import app_for, serving
from tests.gauges import gauge


def tasks(scraped: str) -> float:
    return gauge(scraped, "moodboard_asyncio_tasks")


async def test_the_gauge_follows_the_tasks_of_the_loop(sqlite_url: str) -> None:
    """Twenty tasks more in the loop show as twenty more; gone again, they are not counted."""
    async with serving(app_for(sqlite_url)) as client:
        before = tasks((await client.get("/metrics")).text)
        release = asyncio.Event()
        extra = [asyncio.create_task(release.wait()) for _ in range(20)]
        during = tasks((await client.get("/metrics")).text)
        release.set()
        await asyncio.gather(*extra)
        after = tasks((await client.get("/metrics")).text)
    assert before >= 1
    assert during - before >= 20  # (a transient task of the server's may come or go meanwhile)
    assert during - after >= 20
