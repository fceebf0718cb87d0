"""Engines: PostgreSQL (asyncpg pool) or SQLite (embedded), chosen by DATABASE_URL.

Tables are bound to the engine explicitly (``bind_tables``) rather than found
through ``piccolo_conf`` at first use, so a process (or a test) decides once
which database its tables talk to. The pool and what shares it belong to the
engine's :class:`server.db.database.Database`.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, TransactionType

from server.db.tables import TABLES
from server.settings import DatabaseUrl

SERVER_WRITER_SETTING = "moodboard.writer"

SQLITE_BUSY_TIMEOUT_S = 30.0

# The name of the read replica's engine among the engine's nodes (Piccolo's
# ``extra_nodes``; a query runs there with ``.run(node=REPLICA)``).
REPLICA = "replica"


class ServerPostgresEngine(PostgresEngine):
    """Piccolo's PostgreSQL engine, carrying what runs its fixed statements.

    ``statements`` is set by the :class:`server.db.database.Database` that
    owns the engine while it is open (its statement connections, or the
    pool), for the fixed reads that find the engine through a table
    (:func:`server.db.raw.runner_of`); None otherwise. ``session_dsn`` is
    where a direct session goes (LISTEN, advisory locks): the pool's own
    DSN may be a transaction-mode pooler.
    """

    __slots__ = ("session_dsn", "statements")

    def __init__(self, *args: Any, session_dsn: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.statements: Any = None
        self.session_dsn = session_dsn


def create_engine(database: DatabaseUrl) -> Engine[Any]:
    """Build the Piccolo engine for ``database`` (no connection is opened yet)."""
    if database.kind == "postgres":
        # extensions=(): UUIDs come from gen_random_uuid() (built in since PG 13)
        # or from Python, so no CREATE EXTENSION privilege is needed.
        # Every connection of the server says so at its start: the outside-writer
        # triggers leave the server's own writes to its write path (see the
        # migration "operation indexes and outside-writer triggers").
        # statement_cache: 0 behind a transaction-mode PgBouncer older than 1.21, which
        # cannot carry asyncpg's named prepared statements from one transaction to the next.
        settings = {SERVER_WRITER_SETTING: "server"}
        config = {
            "dsn": database.url,
            "server_settings": settings,
            "statement_cache_size": database.statement_cache,
        }
        replica = (
            {
                REPLICA: ServerPostgresEngine(
                    config={"dsn": database.replica_url, "server_settings": settings},
                    extensions=(),
                    log_queries=False,
                    session_dsn=database.replica_url,
                )
            }
            if database.replica_url is not None
            else None
        )
        return ServerPostgresEngine(
            config=config,
            extensions=(),
            log_queries=False,
            extra_nodes=replica,
            session_dsn=database.session_url,
        )
    assert database.sqlite_path is not None
    Path(database.sqlite_path).parent.mkdir(parents=True, exist_ok=True)
    _owner_only(Path(database.sqlite_path))
    # IMMEDIATE write transactions queue on SQLite's busy handler; its 5 s default
    # turns a burst of concurrent writers into "database is locked" errors.
    return SQLiteEngine(path=database.sqlite_path, timeout=SQLITE_BUSY_TIMEOUT_S)


def _owner_only(path: Path) -> None:
    """Create the database file 0600, or narrow an existing one that others could read.

    It holds password and token hashes and every project. SQLite gives its
    -wal and -shm files the database file's permissions.
    """
    if str(path) == ":memory:":
        return
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            path.chmod(mode & 0o700)
    else:
        os.close(fd)


def bind_tables(engine: Engine[Any]) -> None:
    """Point every table of the schema at ``engine``."""
    for table in TABLES:
        table._meta.db = engine


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
