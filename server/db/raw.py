"""Fixed SQL straight on the asyncpg pool, for the few reads hot enough to need it.

Building a query with Piccolo costs about 0.1 ms of Python each time (column
copies, joins, query strings); a fixed SQL string sent with asyncpg costs a
few microseconds, and asyncpg prepares it once per connection. They run on
the statement lane, which lends a connection without the pool's per-use work. The socket
resume path (authenticate, role, replay read) runs a handful of queries per
socket, thousands of times a second in a reconnect storm, so those queries
take this path on PostgreSQL. SQLite (embedded mode) keeps the general
Piccolo path: callers fall back to it whenever :func:`runner_of` answers None.

The two reads every resuming socket makes (``authenticate``,
``read_resume_as``) go one step further in a storm: concurrent calls share
one statement (server/db/read_batch.py).
"""

from __future__ import annotations

from typing import Any

from piccolo.engine.postgres import PostgresEngine
from piccolo.table import Table

from server.db.engine import statement_runner


def runner_of(table: type[Table]) -> Any | None:
    """What runs a fixed statement for ``table``, or None: take the general path.

    The engine's statement lane (server/db/statement_connections.py) when it has one, else its
    asyncpg pool: either offers ``fetch``, ``fetchrow``, ``fetchval`` and
    ``execute``, one statement in its own transaction. None where
    :func:`statement_engine` answers None.
    """
    engine = statement_engine(table)
    return None if engine is None else statement_runner(engine)


def statement_engine(table: type[Table]) -> PostgresEngine | None:
    """The engine of ``table`` when a fixed statement may run on its lane, else None.

    None on SQLite, before the pool is open, and inside a Piccolo transaction
    (a pool query would run on another connection, outside the transaction,
    and hold a second connection while the first waits). The batched reads
    (server/db/read_batch.py) take the engine: their statement may run later,
    in another task, and looks its runner up then.
    """
    engine = table._meta.db
    if not isinstance(engine, PostgresEngine) or engine.pool is None:
        return None
    if engine.current_transaction.get() is not None:
        return None
    return engine
