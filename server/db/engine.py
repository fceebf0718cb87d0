"""Engines: PostgreSQL (asyncpg pool) or SQLite (embedded), chosen by DATABASE_URL.

Tables are bound to the engine explicitly (``bind_tables``) rather than found
through ``piccolo_conf`` at first use, so a process (or a test) decides once
which database its tables talk to.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, TransactionType

from server import metrics
from server.db.statement_connections import StatementConnections, share_of
from server.db.tables import TABLES
from server.settings import DatabaseUrl

SERVER_WRITER_SETTING = "moodboard.writer"

SQLITE_BUSY_TIMEOUT_S = 30.0


def create_engine(database: DatabaseUrl) -> Engine[Any]:
    """Build the Piccolo engine for ``database`` (no connection is opened yet)."""
    if database.kind == "postgres":
        # extensions=(): UUIDs come from gen_random_uuid() (built in since PG 13)
        # or from Python, so no CREATE EXTENSION privilege is needed.
        # Every connection of the server says so at its start: the outside-writer
        # triggers leave the server's own writes to its write path (see the
        # migration "operation indexes and outside-writer triggers").
        config = {"dsn": database.url, "server_settings": {SERVER_WRITER_SETTING: "server"}}
        return PostgresEngine(config=config, extensions=(), log_queries=False)
    assert database.sqlite_path is not None
    Path(database.sqlite_path).parent.mkdir(parents=True, exist_ok=True)
    # IMMEDIATE write transactions queue on SQLite's busy handler; its 5 s default
    # turns a burst of concurrent writers into "database is locked" errors.
    return SQLiteEngine(path=database.sqlite_path, timeout=SQLITE_BUSY_TIMEOUT_S)


async def _keep_session(_connection: Any) -> None:
    """What a pool connection needs when it goes back: nothing more than asyncpg always does.

    asyncpg rolls back an open transaction on release either way; its default
    reset then runs ``RESET ALL; UNLISTEN *; CLOSE ALL; pg_advisory_unlock_all()``,
    one more round trip per query. Pool connections carry no session state to
    undo: LISTEN and the migration's advisory lock use dedicated connections,
    and settings are only set per transaction (SET TRANSACTION) or at connect
    (moodboard.writer), which the reset would keep anyway.
    """


def bind_tables(engine: Engine[Any]) -> None:
    """Point every table of the schema at ``engine``."""
    for table in TABLES:
        table._meta.db = engine


@asynccontextmanager
async def engine_lifespan(engine: Engine[Any], pool_size: int) -> AsyncIterator[Engine[Any]]:
    """Open the pool (PostgreSQL) or set journal mode (SQLite); close on exit."""
    bind_tables(engine)
    if isinstance(engine, PostgresEngine):
        await engine.start_connection_pool(
            min_size=1, max_size=pool_size, init=_observe_queries, reset=_keep_session
        )
        lane = (
            StatementConnections(engine.pool, share_of(pool_size)) if share_of(pool_size) else None
        )
        if lane is not None:
            _lanes[id(engine)] = lane
        try:
            yield engine
        finally:
            if lane is not None:
                _lanes.pop(id(engine), None)
                await lane.close()
            await engine.close_connection_pool()
    else:
        # WAL lets readers run while one writer commits: the embedded server
        # reads snapshots while it writes events.
        await engine.run_ddl("PRAGMA journal_mode=WAL")
        yield engine


# By id(engine) (engines take no weak references); an entry lives as long as its lifespan.
_lanes: dict[int, StatementConnections] = {}


def statement_runner(engine: PostgresEngine) -> Any:
    """What runs a one-statement call: the engine's lane (server/db/statement_connections.py),
    else its pool.

    Both offer ``fetchval(query, *args)``; a pool too small to share has no lane.
    """
    return _lanes.get(id(engine)) or engine.pool


async def _observe_queries(connection: Any) -> None:
    """Every pool connection reports each statement's duration (moodboard_db_query_seconds)."""
    connection.add_query_logger(metrics.query_logged)


async def ping(engine: Engine[Any]) -> None:
    """Run a trivial query; raises when the database does not answer."""
    await engine.run_ddl("SELECT 1")


def write_transaction(engine: Engine[Any]) -> Any:
    """The transaction of every server write.

    SQLite's default DEFERRED transactions fail with "database is locked" when
    two of them read and then both try to write; IMMEDIATE takes the write lock
    up front. PostgreSQL needs nothing special (row locks do the work).
    """
    if isinstance(engine, SQLiteEngine):
        return engine.transaction(transaction_type=TransactionType.immediate)
    return engine.transaction()


def is_unique_violation(exc: BaseException) -> bool:
    """True when ``exc`` is a unique-constraint violation, on either engine."""
    import sqlite3

    import asyncpg

    if isinstance(exc, asyncpg.UniqueViolationError):
        return True
    return isinstance(exc, sqlite3.IntegrityError) and "UNIQUE constraint failed" in str(exc)
