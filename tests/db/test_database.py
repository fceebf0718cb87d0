"""The Database (server/db/database.py) opens, shares and closes in one place."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from server.db.database import Database
from server.db.engine import ServerPostgresEngine
from server.db.tables import TABLES
from server.settings import parse_database_url


@pytest.fixture(autouse=True)
def tables_bound_as_before() -> Iterator[None]:
    """Opening a Database binds the tables to it: later tests find them as they were."""
    bound = {table: table._meta.db for table in TABLES}
    yield
    for table, db in bound.items():
        table._meta.db = db


def _made(database: Database) -> list[Any]:
    """A stand-in for a group commit: something a module makes once per database."""
    return []


async def test_statements_run_outside_transactions_and_stop_when_it_closes(
    database_url: str,
) -> None:
    """Fixed statements take the shared connections on PostgreSQL only, never in a transaction."""
    database = Database.of(parse_database_url(database_url), pool_size=4)
    async with database:
        runner = database.statement_runner()
        if isinstance(database.engine, ServerPostgresEngine):
            assert runner is not None
            assert await runner.fetchval("SELECT 41 + 1") == 42
            assert database.engine.statements is runner  # what table-bound reads find
        else:
            assert runner is None  # SQLite: the general path
        async with database.engine.transaction():
            assert database.statement_runner() is None
    assert database.statement_runner() is None
    if isinstance(database.engine, ServerPostgresEngine):
        assert database.engine.pool is None
        assert database.engine.statements is None


async def test_each_database_owns_its_own_shared_calls(database_url: str) -> None:
    """What a module makes per database is made once, is not another database's, and goes."""
    url = parse_database_url(database_url)
    async with Database.of(url, pool_size=2) as first, Database.of(url, pool_size=2) as second:
        mine = first.owned(_made)
        assert first.owned(_made) is mine
        assert second.owned(_made) is not mine
    async with first:
        assert first.owned(_made) is not mine  # closed and opened again: made anew
