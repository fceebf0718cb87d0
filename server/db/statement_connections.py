"""Statement connections: a few PostgreSQL connections kept from the pool, lent per statement.

A side door to the pool for the hottest one-statement calls
(docs/performance.md calls it the statement lane). The socket edit is one statement
(``moodboard_edit_batch``), thousands a second; so are a socket's handshake
and resume reads in a reconnect storm (``authenticate``,
``read_resume_as``: server/db/raw.py). Through the pool each one also paid
for asyncpg's lending: a queue wait, a connection proxy, the release hook
and a shielded release task, about a tenth of the server's CPU per edit.
:class:`StatementConnections` takes a few connections out of the pool once,
keeps them, and lends them with a list and a FIFO of waiters.

It stays inside the pool's limit: it holds at most ``size`` connections
(half the pool, see :func:`share_of`), taken one at a time when every one
it holds is busy, so the rest of the server keeps the other half. A
connection whose call ended in anything but a PostgreSQL error (which
leaves an autocommit connection usable), or that closed while idle (its
backend went away), goes back to the pool instead: the pool knows how to
wait out a cancelled query, reset, close or replace it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import asyncpg

from server.log import get_logger

log = get_logger(__name__)


def share_of(pool_size: int) -> int:
    """How many connections they may hold: half the pool; 0 (none) for a pool of one."""
    return pool_size // 2


def _open(connection: Any) -> bool:
    """False once the connection closed (the pool then takes its proxy back at once)."""
    try:
        return not connection.is_closed()
    except asyncpg.InterfaceError:  # "released back to the pool": it closed
        return False


class StatementConnections:
    """Up to ``size`` connections taken from ``pool``; one statement per loan."""

    def __init__(self, pool: Any, size: int) -> None:
        self._pool = pool
        self._size = size
        self._held = 0  # connections taken from the pool, idle, lent or being taken
        self._idle: list[Any] = []
        self._waiters: deque[asyncio.Future[Any]] = deque()
        self._returning: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def held(self) -> int:
        """Connections taken from the pool and not given back."""
        return self._held

    async def fetchval(self, query: str, *args: Any) -> Any:
        """``Connection.fetchval`` on a lent connection (one statement, its own transaction)."""
        return await self._one("fetchval", query, args)

    async def fetchrow(self, query: str, *args: Any) -> Any:
        """``Connection.fetchrow`` on a lent connection (one statement, its own transaction)."""
        return await self._one("fetchrow", query, args)

    async def fetch(self, query: str, *args: Any) -> list[Any]:
        """``Connection.fetch`` on a lent connection (one statement, its own transaction)."""
        rows: list[Any] = await self._one("fetch", query, args)
        return rows

    async def execute(self, query: str, *args: Any) -> str:
        """``Connection.execute`` on a lent connection (one statement, its own transaction)."""
        status: str = await self._one("execute", query, args)
        return status

    async def _one(self, method: str, query: str, args: tuple[Any, ...]) -> Any:
        connection = await self._borrow()
        try:
            value = await getattr(connection, method)(query, *args)
        except asyncpg.PostgresError:  # refused (or its backend went away: _give_back sees it)
            self._give_back(connection)
            raise
        except BaseException:  # cancelled, or the link broke: the pool sorts it out
            self._return_to_pool(connection)
            raise
        self._give_back(connection)
        return value

    async def close(self) -> None:
        """Give every connection back to the pool (before the pool closes)."""
        self._closed = True
        while self._idle:
            self._return_to_pool(self._idle.pop())
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(asyncpg.InterfaceError("the statement connections are closed"))
        if self._returning:
            await asyncio.gather(*self._returning, return_exceptions=True)

    async def _borrow(self) -> Any:
        while True:
            if self._closed:
                raise asyncpg.InterfaceError("the statement connections are closed")
            while self._idle:
                connection = self._idle.pop()
                if _open(connection):
                    return connection
                self._return_to_pool(connection)  # its backend went away while idle
            if self._held < self._size:
                self._held += 1
                try:
                    return await self._pool.acquire()
                except BaseException:
                    self._held -= 1
                    self._wake_for_a_slot()
                    raise
            waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                connection = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():  # served just as the caller gave up
                    if waiter.result() is not None:
                        self._give_back(waiter.result())
                    else:
                        self._wake_for_a_slot()
                raise
            if connection is not None:
                return connection
            # Woken without one: a connection went back to the pool, so take another.

    def _give_back(self, connection: Any) -> None:
        if self._closed or not _open(connection):
            self._return_to_pool(connection)
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        self._idle.append(connection)

    def _return_to_pool(self, connection: Any) -> None:
        self._held -= 1
        task = asyncio.get_running_loop().create_task(self._pool.release(connection))
        self._returning.add(task)
        task.add_done_callback(self._returned)
        self._wake_for_a_slot()

    def _wake_for_a_slot(self) -> None:
        """Fewer than ``size`` are held: the first waiter may take one from the pool."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _returned(self, task: asyncio.Task[None]) -> None:
        self._returning.discard(task)
        error = None if task.cancelled() else task.exception()
        if error is not None:  # the pool has already replaced a broken connection
            log.debug("statement_connections.release_failed", error=repr(error))
