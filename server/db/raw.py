"""Fixed SQL straight on the asyncpg pool, for the few reads hot enough to need it.

Building a query with Piccolo costs about 0.1 ms of Python each time (column
copies, joins, query strings); a fixed SQL string sent with asyncpg costs a
few microseconds, and asyncpg prepares it once per connection. The socket
resume path (authenticate, role, replay read) runs a handful of queries per
socket, thousands of times a second in a reconnect storm, so those queries
take this path on PostgreSQL. SQLite (embedded mode) keeps the general
Piccolo path: callers fall back to it whenever :func:`pool_of` answers None.
"""

from __future__ import annotations

from typing import Any

from piccolo.engine.postgres import PostgresEngine
from piccolo.table import Table


def pool_of(table: type[Table]) -> Any | None:
    """The asyncpg pool ``table`` is bound to, or None: take the general path.

    None on SQLite, before the pool is open, and inside a Piccolo transaction
    (a pool query would run on another connection, outside the transaction,
    and hold a second connection while the first waits).
    """
    engine = table._meta.db
    if not isinstance(engine, PostgresEngine) or engine.pool is None:
        return None
    if engine.current_transaction.get() is not None:
        return None
    return engine.pool
