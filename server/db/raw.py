"""Fixed SQL straight on the asyncpg pool, for the few reads hot enough to need it.

Building a query with Piccolo costs about 0.1 ms of Python each time (column
copies, joins, query strings); a fixed SQL string sent with asyncpg costs a
few microseconds, and asyncpg prepares it once per connection. They run on
the statement connections (server/db/statement_connections.py), which lend a
connection without the pool's per-use work. The socket resume path
(authenticate, role, replay read) runs a handful of queries per socket,
thousands of times a second in a reconnect storm, so those queries take this
path on PostgreSQL. SQLite (embedded mode) keeps the general Piccolo path:
callers fall back to it whenever :func:`runner_of` (or
:meth:`server.db.database.Database.statement_runner`) answers None.

The two reads every resuming socket makes (``authenticate``,
``read_resume_as``) go one step further in a storm: concurrent calls share
one statement (server/db/read_batch.py).
"""

from __future__ import annotations

from typing import Any

from piccolo.table import Table

from server.db.engine import ServerPostgresEngine


def runner_of(table: type[Table]) -> Any | None:
    """What runs a fixed statement for ``table``, or None: take the general path.

    For callers that find the engine through the table rather than being
    handed the Database: the engine's statement connections when it has
    them, else its asyncpg pool (see
    :meth:`server.db.database.Database.statement_runner`, which answers the
    same). None on SQLite, before the pool is open, and inside a Piccolo
    transaction.
    """
    engine = table._meta.db
    if not isinstance(engine, ServerPostgresEngine) or engine.statements is None:
        return None
    if engine.current_transaction.get() is not None:
        return None
    return engine.statements
