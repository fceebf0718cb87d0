"""Delivery races across processes: a first joiner and outside writers (issue 18, cases 1 and 4).

A real server on PostgreSQL and Redis; an outside writer over SQL (its
changes reach the server only by NOTIFY) and server edits over REST (they
arrive over the bus). The feed's periodic heal is slowed to ten minutes, so
whatever arrives here arrived because the delivery path itself got it right.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.servers import ServerProcess, call, running_server, server_env
from tests.wsclient import Ws, signup, ws

pytestmark = pytest.mark.e2e
NO_HEAL = "600000"  # MOODBOARD_FEED_HEAL_MS: the periodic comparison never runs in a test
ROUNDS = 3


async def rest(server: ServerProcess, method: str, path: str, token: str, **kw: Any) -> Any:
    """A REST call that must succeed (tests.servers.call); its JSON body, if any."""
    response = await call(server, method, path, token, **kw)
    assert response.status_code < 300, response.text
    return response.json() if response.content else None


async def events_until(sock: Ws, project_id: str, head: int, timeout: float) -> list[int]:
    """The seqs of the project's events the socket gets until ``head`` (or the timeout)."""
    seqs: list[int] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not seqs or seqs[-1] < head:
        left = deadline - loop.time()
        if left <= 0:
            break
        try:
            frame = await sock.first(
                lambda f: f["type"] == "event" and f["project_id"] == project_id, left
            )
        except TimeoutError:
            break
        seqs.append(frame["seq"])
    return seqs


async def join_read_waits_on_the_lock(sql: asyncpg.Connection) -> None:
    """Until a server query waits for the table lock the test holds (the join's read)."""
    while not await sql.fetchval(  # noqa: ASYNC110  # another process's state: polled
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND datname = current_database() AND query ILIKE '%generation%'"
    ):
        await asyncio.sleep(0.01)


async def test_a_first_joiner_gets_every_event_of_an_outside_write_racing_its_read(
    cluster_db: str, redis_url: str, tmp_path: Path
) -> None:
    """Issue 18 case 1: NOTIFY k, then bus k+1, both during the first join's read: both arrive.

    The join's snapshot read is held in the middle (the test locks a table it
    reads last) while the two writes commit, so the race is hit every round.
    """
    env = server_env(cluster_db, REDIS_URL=redis_url, MOODBOARD_FEED_HEAL_MS=NO_HEAL)
    async with running_server(env, tmp_path) as server:
        owner = await signup(server.url, "Owner", f"o-{uuid.uuid4().hex[:8]}@example.com")
        pid = (await rest(server, "POST", "/api/projects", owner[1], json={"name": "P"}))["id"]
        room = await rest(
            server, "POST", f"/api/projects/{pid}/rooms", owner[1], json={"name": "R"}
        )
        items_path = f"/api/projects/{pid}/rooms/{room['id']}/items"
        target = await rest(server, "POST", items_path, owner[1], json={"kind": "note"})
        sql = await asyncpg.connect(cluster_db)
        locker = await asyncpg.connect(cluster_db)
        try:
            for _ in range(ROUNDS):
                async with ws(server.url, owner[1]) as sock:
                    await sock.expect("ready")
                    # This socket is the project's only one on the instance: its join
                    # starts the feed. While its snapshot read waits, an outside write
                    # commits (NOTIFY only), then a server edit (over the bus).
                    hold = locker.transaction()
                    await hold.start()
                    await locker.execute("LOCK TABLE generation IN ACCESS EXCLUSIVE MODE")
                    await sock.send({"type": "join", "ref": "j", "project_id": pid})
                    await asyncio.wait_for(join_read_waits_on_the_lock(sql), 10)
                    await sql.execute(
                        "UPDATE item SET x = x + 1 WHERE id = $1", uuid.UUID(target["id"])
                    )
                    await rest(server, "POST", items_path, owner[1], json={"kind": "note"})
                    head = await sql.fetchval(
                        "SELECT seq FROM project WHERE id = $1", uuid.UUID(pid)
                    )
                    await asyncio.sleep(0.2)  # the NOTIFY and the bus message reach the server
                    await hold.rollback()
                    joined = await sock.expect("joined", ref="j")
                    assert joined["seq"] == head - 2  # the read began before both writes
                    assert await events_until(sock, pid, head, timeout=5.0) == [head - 1, head]
        finally:
            await locker.close()
            await sql.close()


async def test_one_statements_rows_all_arrive_without_the_periodic_heal(
    cluster_db: str, redis_url: str, tmp_path: Path
) -> None:
    """Issue 18 case 4: an outside statement changing 10 items: all 10 events arrive, in order."""
    env = server_env(cluster_db, REDIS_URL=redis_url, MOODBOARD_FEED_HEAL_MS=NO_HEAL)
    async with running_server(env, tmp_path) as server:
        owner = await signup(server.url, "Owner", f"o-{uuid.uuid4().hex[:8]}@example.com")
        pid = (await rest(server, "POST", "/api/projects", owner[1], json={"name": "P"}))["id"]
        room = await rest(
            server, "POST", f"/api/projects/{pid}/rooms", owner[1], json={"name": "R"}
        )
        items_path = f"/api/projects/{pid}/rooms/{room['id']}/items"
        for _ in range(10):
            await rest(server, "POST", items_path, owner[1], json={"kind": "note"})
        sql = await asyncpg.connect(cluster_db)
        try:
            async with ws(server.url, owner[1]) as sock:
                await sock.expect("ready")
                await sock.send({"type": "join", "ref": "j", "project_id": pid})
                joined = await sock.expect("joined", ref="j")
                for burst in range(3):
                    await sql.execute(
                        "UPDATE item SET y = y + 1 WHERE project_id = $1", uuid.UUID(pid)
                    )
                    first = joined["seq"] + burst * 10 + 1
                    seqs = await events_until(sock, pid, first + 9, timeout=10.0)
                    assert seqs == list(range(first, first + 10)), json.dumps(seqs)
        finally:
            await sql.close()
