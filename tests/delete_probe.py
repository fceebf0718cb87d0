"""How many rows each DELETE statement on a table removed (PostgreSQL): batches made visible.

A statement-level trigger with a transition table counts the rows of each
``DELETE`` into a table of its own; the caller reads the counts back (and
the probe is dropped). On SQLite there are no statement triggers: None.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from piccolo.engine.postgres import PostgresEngine


async def delete_statement_sizes(
    engine: Any, table: str
) -> Callable[[], Awaitable[list[int]]] | None:
    """Start counting; the returned function stops and gives each statement's row count."""
    if not isinstance(engine, PostgresEngine):
        return None
    name = f"delete_probe_{uuid.uuid4().hex[:8]}"
    for statement in (
        f"CREATE TABLE {name} (n int)",
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN INSERT INTO {name} SELECT count(*) FROM gone; RETURN NULL; END $$",
        f"CREATE TRIGGER {name} AFTER DELETE ON {table} REFERENCING OLD TABLE AS gone "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()",
    ):
        await engine.run_ddl(statement)

    async def sizes() -> list[int]:
        rows = await engine.run_ddl(f"SELECT n FROM {name} WHERE n > 0")
        for statement in (
            f"DROP TRIGGER {name} ON {table}",
            f"DROP FUNCTION {name}()",
            f"DROP TABLE {name}",
        ):
            await engine.run_ddl(statement)
        return [row["n"] for row in rows]

    return sizes
