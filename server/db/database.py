"""The process's database: one object owns the engine, its pool, and every call that shares it.

A ``Database`` is made once where a process starts (the app's lifespan, a
CLI command, a test fixture), handed down to the code that needs it, and
closed in one place: ``async with Database(...)`` opens the pool (or sets
SQLite's journal mode) and binds the tables to its engine; leaving it gives
the statement connections back and closes the pool. It owns:

- the engine and its asyncpg pool;
- the statement connections (server/db/statement_connections.py) that run
  the hottest one-statement calls, or the pool itself when it is too small
  to share;
- the calls that share a statement: the socket edits' group commits
  (server/projects/edits.py) and the batched reads (server/db/read_batch.py).
  Each is made by its own module on first use (:meth:`Database.owned`), so
  this module knows no domain;
- the read replica's engine and pool (``MOODBOARD_DATABASE_REPLICA_URL``),
  when there is one: :attr:`Database.replica`. Which reads go there, and
  when, the read model decides (server/events/reads.py).

Queries written with Piccolo still find the engine through the tables'
binding (``bind_tables``), as Piccolo does; the engine carries its
statement connections for the fixed reads that go that way
(:func:`server.db.raw.runner_of`).
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine

from server import metrics
from server.concurrency.group_commit import MAX_BATCH
from server.db.engine import (
    REPLICA,
    SERVER_WRITER_SETTING,
    ServerPostgresEngine,
    bind_tables,
    create_engine,
)
from server.db.statement_connections import StatementConnections, share_of
from server.settings import DatabaseUrl

Owned = TypeVar("Owned")


class DatabaseSetupError(RuntimeError):
    """The database answers, but is set up so that the server would misbehave (says how)."""


WRITER_LOST = (
    "the server's connections do not carry {setting} = 'server' (a pooler in front of "
    "PostgreSQL dropped that startup parameter): the outside-writer triggers would log the "
    "server's own writes twice. Behind PgBouncer, give the database entry "
    "connect_query='SET {setting} = ''server''' and ignore_startup_parameters = {setting} "
    "(docs/operations.md, PgBouncer)"
)


async def _keep_session(_connection: Any) -> None:
    """What a pool connection needs when it goes back: nothing more than asyncpg always does.

    asyncpg rolls back an open transaction on release either way; its default
    reset then runs ``RESET ALL; UNLISTEN *; CLOSE ALL; pg_advisory_unlock_all()``,
    one more round trip per query. Pool connections carry no session state to
    undo: LISTEN and the migration's advisory lock use dedicated connections,
    and settings are only set per transaction (SET TRANSACTION) or at connect
    (moodboard.writer), which the reset would keep anyway.
    """


async def _observe_queries(connection: Any) -> None:
    """Every pool connection reports each statement's duration (moodboard_db_query_seconds)."""
    connection.add_query_logger(metrics.query_logged)


async def _check_writer_setting(pool: Any) -> None:
    """Refuse to run when the pool's sessions lost ``moodboard.writer`` (a pooler dropped it)."""
    value = await pool.fetchval("SELECT current_setting($1, true)", SERVER_WRITER_SETTING)
    if value != "server":
        raise DatabaseSetupError(WRITER_LOST.format(setting=SERVER_WRITER_SETTING))


class Database:
    """An engine with its pool, its statement connections and its shared calls.

    Args:
        engine: from :func:`server.db.engine.create_engine`.
        pool_size: the most PostgreSQL connections the pool opens.
        edit_batch: how many of a busy project's waiting socket edits one
            call may take (MOODBOARD_EDIT_BATCH; 1: a transaction each).
    """

    def __init__(self, engine: Engine[Any], *, pool_size: int, edit_batch: int = MAX_BATCH) -> None:
        self.engine = engine
        self.pool_size = pool_size
        self.edit_batch = edit_batch
        # What runs a fixed statement: the statement connections, else the pool.
        # None on SQLite and while closed.
        self.statements: Any = None
        self._connections: StatementConnections | None = None
        self._owned: dict[Callable[[Database], Any], Any] = {}
        # The read replica's engine (a node of ``engine``): None without one.
        nodes = getattr(engine, "extra_nodes", None) or {}
        self.replica: ServerPostgresEngine | None = nodes.get(REPLICA)

    @classmethod
    def of(cls, url: DatabaseUrl, *, pool_size: int, edit_batch: int = MAX_BATCH) -> Database:
        """The database ``url`` names (nothing is opened before ``async with``)."""
        return cls(create_engine(url), pool_size=pool_size, edit_batch=edit_batch)

    async def __aenter__(self) -> Database:
        engine = self.engine
        bind_tables(engine)
        if isinstance(engine, PostgresEngine):
            await engine.start_connection_pool(
                min_size=1, max_size=self.pool_size, init=_observe_queries, reset=_keep_session
            )
            size = share_of(self.pool_size)
            self._connections = StatementConnections(engine.pool, size) if size else None
            self.statements = self._connections or engine.pool
            if isinstance(engine, ServerPostgresEngine):
                engine.statements = self.statements
            try:
                await _check_writer_setting(engine.pool)
            except BaseException:
                await self.__aexit__(None, None, None)
                raise
            if self.replica is not None:
                # min_size 0: a replica that is down at start delays nothing (its
                # reads go to the primary until it answers).
                await self.replica.start_connection_pool(
                    min_size=0, max_size=self.pool_size, init=_observe_queries, reset=_keep_session
                )
        else:
            # WAL lets readers run while one writer commits: the embedded server
            # reads snapshots while it writes events.
            await engine.run_ddl("PRAGMA journal_mode=WAL")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        engine = self.engine
        self.statements = None
        self._owned.clear()
        if isinstance(engine, PostgresEngine):
            if isinstance(engine, ServerPostgresEngine):
                engine.statements = None
            if self._connections is not None:
                connections, self._connections = self._connections, None
                await connections.close()
            if self.replica is not None:
                await self.replica.close_connection_pool()
            await engine.close_connection_pool()

    def statement_runner(self) -> Any | None:
        """What runs a fixed statement now, or None: take the general Piccolo path.

        The statement connections (or the pool): both offer ``fetch``,
        ``fetchrow``, ``fetchval`` and ``execute``, one statement in its own
        transaction. None on SQLite, while closed, and inside a Piccolo
        transaction (a pool query would run on another connection, outside
        the transaction, and hold a second connection while the first waits).
        """
        statements = self.statements
        if statements is None or self.engine.current_transaction.get() is not None:
            return None
        return statements

    def owned(self, make: Callable[[Database], Owned]) -> Owned:
        """This database's one ``make(self)`` (a group commit, a batched read), made on first use.

        ``make`` is a module-level function of the module whose calls it
        gathers, and the key: the calls in flight on this database share it,
        another database (a test's) has its own. Dropped when the database closes.
        """
        owned = self._owned.get(make)
        if owned is None:
            owned = self._owned[make] = make(self)
        result: Owned = owned
        return result
