"""``moodboard_ws_buffered_bytes``: what a slow reader's frames hold in the server's memory."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_cluster import a_big_edit, a_reader_and_one_that_stops
from tests.gauges import gauge
from tests.servers import ServerProcess, running_server, server_env

pytestmark = pytest.mark.e2e


async def buffered(server: ServerProcess) -> float:
    async with httpx.AsyncClient(base_url=server.url) as client:
        scraped = (await client.get("/metrics")).text
    return gauge(scraped, "moodboard_ws_buffered_bytes")


async def test_a_slow_readers_frames_show_in_the_gauge_and_leave_it_once_read(
    tmp_path: Path,
) -> None:
    env = server_env(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    async with (
        running_server(env, tmp_path) as server,
        a_reader_and_one_that_stops(server, "slow@example.com") as (token, pid, slow, fast),
    ):
        assert await buffered(server) == 0
        version, description = 0, ""
        # Quickly (a scrape every ten edits): the slow reader cannot answer the server's
        # pings, and a peer silent for 50 s is dropped.
        while await buffered(server) < 100_000:
            assert version < 400, "the slow reader's frames never backed up in the server"
            for _ in range(10):
                version += 1
                description = await a_big_edit(server, token, pid, version)
                await fast.expect("event")
        # The slow socket reads everything now: nothing of it is held any more.
        while True:
            event = await slow.expect("event", timeout=10)
            if event["data"]["description"] == description:
                break
        for _ in range(50):
            if await buffered(server) == 0:
                break
            await asyncio.sleep(0.1)
        assert await buffered(server) == 0
