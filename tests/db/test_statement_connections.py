"""The statement connections (server/db/statement_connections.py) lend one statement each."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from server.db.statement_connections import StatementConnections, share_of


@pytest.fixture
async def pool(pg_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(pg_url, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        pool.terminate()


def test_they_take_half_the_pool_and_none_of_a_pool_of_one() -> None:
    """A pool of one keeps its connection for everything else; bigger pools lend half."""
    assert [share_of(n) for n in (1, 2, 4, 5, 20)] == [0, 1, 2, 2, 10]


async def test_more_calls_than_connections_all_answer_over_at_most_its_size(
    pool: asyncpg.Pool,
) -> None:
    """Twenty concurrent statements run over two connections; the pool still serves others."""
    shared = StatementConnections(pool, 2)
    calls = [
        shared.fetchval("SELECT pg_backend_pid() FROM pg_sleep(0.01) WHERE $1::int >= 0", i)
        for i in range(20)
    ]
    gathered = asyncio.gather(*calls)
    assert await pool.fetchval("SELECT 41 + 1") == 42  # the pool's other half is free
    pids = await gathered
    assert len(pids) == 20
    assert len(set(pids)) <= 2
    assert shared.held <= 2
    await shared.close()
    await asyncio.wait_for(pool.close(), 10)  # everything went back: close does not wait


async def test_a_refused_statement_reaches_its_caller_and_the_connection_stays(
    pool: asyncpg.Pool,
) -> None:
    """A PostgreSQL error is raised to the caller; the same connection serves the next call."""
    shared = StatementConnections(pool, 2)
    first = await shared.fetchval("SELECT pg_backend_pid()")
    with pytest.raises(asyncpg.DivisionByZeroError):
        await shared.fetchval("SELECT 1 / $1::int", 0)
    assert await shared.fetchval("SELECT pg_backend_pid()") == first
    assert shared.held == 1
    await shared.close()


async def test_a_cancelled_call_gives_its_connection_back_to_the_pool(
    pool: asyncpg.Pool,
) -> None:
    """A call cancelled mid-statement leaves no broken connection among them."""
    shared = StatementConnections(pool, 1)
    slow = asyncio.create_task(shared.fetchval("SELECT pg_sleep(30)"))
    waiting = asyncio.create_task(shared.fetchval("SELECT 7"))  # queued behind the slow one
    await asyncio.sleep(0.2)
    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await slow
    assert await asyncio.wait_for(waiting, 10) == 7
    assert await shared.fetchval("SELECT 8") == 8
    await shared.close()
    await asyncio.wait_for(pool.close(), 10)


async def test_a_waiter_that_gives_up_does_not_lose_the_connection(pool: asyncpg.Pool) -> None:
    """Cancelling a queued call hands the connection on to the next caller."""
    shared = StatementConnections(pool, 1)
    busy = asyncio.create_task(shared.fetchval("SELECT 1 FROM pg_sleep(0.2)"))
    await asyncio.sleep(0.05)
    quitter = asyncio.create_task(shared.fetchval("SELECT 2"))
    patient = asyncio.create_task(shared.fetchval("SELECT 3"))
    await asyncio.sleep(0.05)
    quitter.cancel()
    assert await busy == 1
    assert await asyncio.wait_for(patient, 10) == 3
    assert quitter.cancelled()
    assert shared.held == 1
    await shared.close()
    with pytest.raises(asyncpg.InterfaceError):
        await shared.fetchval("SELECT 4")
    await asyncio.wait_for(pool.close(), 10)


async def test_a_connection_whose_backend_died_is_replaced(pool: asyncpg.Pool) -> None:
    """An idle connection whose backend went away is not lent: the next call gets a fresh one."""
    shared = StatementConnections(pool, 1)
    dead = await shared.fetchval("SELECT pg_backend_pid()")
    assert await pool.fetchval("SELECT pg_terminate_backend($1)", dead)
    for _ in range(100):  # until the client has seen the connection close
        if await pool.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", dead) == 0:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)
    fresh = await shared.fetchval("SELECT pg_backend_pid()")
    assert fresh != dead
    assert await shared.fetchval("SELECT pg_backend_pid()") == fresh
    assert shared.held == 1
    await shared.close()
    await asyncio.wait_for(pool.close(), 10)


async def test_a_call_that_gives_up_waiting_for_the_pool_lets_the_next_one_try(
    pg_url: str,
) -> None:
    """Cancelled while the pool had no connection free: the call queued behind it still runs."""
    pool = await asyncpg.create_pool(pg_url, min_size=1, max_size=1)
    try:
        shared = StatementConnections(pool, 1)
        outside = await pool.acquire()  # the pool's only connection, busy elsewhere
        first = asyncio.create_task(shared.fetchval("SELECT 1"))  # waits in the pool
        second = asyncio.create_task(shared.fetchval("SELECT 2"))  # waits for a held one
        await asyncio.sleep(0.1)
        first.cancel()
        await asyncio.sleep(0.1)
        await pool.release(outside)
        assert await asyncio.wait_for(second, 10) == 2
        assert first.cancelled()
        await shared.close()
        await asyncio.wait_for(pool.close(), 10)
    finally:
        pool.terminate()


async def test_calls_waiting_when_they_close_get_an_error(pool: asyncpg.Pool) -> None:
    """Shutting down: queued calls fail with an error, not a stray cancellation."""
    shared = StatementConnections(pool, 1)
    busy = asyncio.create_task(shared.fetchval("SELECT 1 FROM pg_sleep(0.2)"))
    queued = asyncio.create_task(shared.fetchval("SELECT 2"))
    await asyncio.sleep(0.05)
    closing = asyncio.create_task(shared.close())
    with pytest.raises(asyncpg.InterfaceError):
        await queued
    assert await busy == 1
    await closing
    await asyncio.wait_for(pool.close(), 10)


async def test_rows_one_row_and_a_status_come_back_as_the_pool_gives_them(
    pool: asyncpg.Pool,
) -> None:
    """``fetch``, ``fetchrow`` and ``execute`` answer like the pool's, on a held connection."""
    shared = StatementConnections(pool, 1)
    rows = await shared.fetch("SELECT n, n * 2 AS twice FROM generate_series(1, $1::int) n", 3)
    assert [(r["n"], r["twice"]) for r in rows] == [(1, 2), (2, 4), (3, 6)]
    row = await shared.fetchrow("SELECT $1::text AS name, pg_backend_pid() AS pid", "ada")
    assert row is not None
    assert row["name"] == "ada"
    assert await shared.fetchrow("SELECT 1 WHERE false") is None
    assert await shared.execute("SELECT pg_backend_pid()") == "SELECT 1"
    assert await shared.fetchval("SELECT pg_backend_pid()") == row["pid"]  # the one connection
    assert shared.held == 1
    await shared.close()
    await asyncio.wait_for(pool.close(), 10)
