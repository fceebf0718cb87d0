"""The migrated schema equals the tables and the documented constraints, on both engines."""

from __future__ import annotations

from typing import Any

from piccolo.apps.migrations.commands.new import AutoMigrationManager

from server.db.constraints import CHECKS, INDEXES
from server.db.migrate import schema_state
from server.db.piccolo_app import APP_CONFIG
from server.db.tables import TABLES
from server.settings import parse_database_url


async def _indexes(engine: Any) -> set[tuple[str, tuple[str, ...], bool, bool]]:
    """(table, columns, unique, partial) of every non-primary-key index."""
    found = set()
    if engine.engine_type == "postgres":
        rows = await engine.run_ddl(
            """
            SELECT t.relname AS tablename, ix.indisunique AS is_unique,
                   ix.indpred IS NOT NULL AS partial,
                   array(SELECT a.attname FROM unnest(ix.indkey) WITH ORDINALITY k(num, ord)
                         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.num
                         ORDER BY k.ord) AS columns
            FROM pg_index ix
            JOIN pg_class t ON t.oid = ix.indrelid
            JOIN pg_namespace n ON n.oid = t.relnamespace
            WHERE n.nspname = 'public' AND NOT ix.indisprimary AND t.relname <> 'migration'
            """
        )
        for row in rows:
            found.add((row["tablename"], tuple(row["columns"]), row["is_unique"], row["partial"]))
        return found
    for table in TABLES:
        name = table._meta.tablename
        for index in await engine.run_ddl(f'PRAGMA index_list("{name}")'):
            if index["origin"] == "pk":
                continue
            info = await engine.run_ddl(f'PRAGMA index_info("{index["name"]}")')
            columns = tuple(col["name"] for col in sorted(info, key=lambda c: c["seqno"]))
            found.add((name, columns, bool(index["unique"]), bool(index["partial"])))
    return found


async def test_indexes_match_the_documented_list(engine: Any) -> None:
    """Every index the migrations create is in server/db/constraints.py, and nothing else."""
    documented = {(i.table, i.columns, i.unique, i.where is not None) for i in INDEXES}
    assert await _indexes(engine) == documented


async def test_checks_match_the_documented_list(engine: Any) -> None:
    """Every CHECK invariant exists (as a constraint, or a trigger pair on SQLite)."""
    if engine.engine_type == "postgres":
        rows = await engine.run_ddl(
            "SELECT c.conname FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace"
            " WHERE c.contype = 'c' AND n.nspname = 'public'"
        )
        found = {row["conname"] for row in rows}
    else:
        rows = await engine.run_ddl("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        names = [row["name"] for row in rows]
        found = {n.rsplit("_", 1)[0] for n in names}
        assert len(names) == 2 * len(found)  # BEFORE INSERT and BEFORE UPDATE each
    assert found == {check.name for check in CHECKS}


async def test_columns_match_the_tables(engine: Any) -> None:
    """Each table has exactly the columns of its Piccolo class, with the same nullability."""
    for table in TABLES:
        name = table._meta.tablename
        expected = {
            col._meta.db_column_name: bool(col._meta.null) and not col._meta.primary_key
            for col in table._meta.columns
        }
        if engine.engine_type == "postgres":
            rows = await engine.run_ddl(
                "SELECT column_name, is_nullable FROM information_schema.columns "
                f"WHERE table_schema = 'public' AND table_name = '{name}'"
            )
            actual = {row["column_name"]: row["is_nullable"] == "YES" for row in rows}
        else:
            rows = await engine.run_ddl(f'PRAGMA table_info("{name}")')
            actual = {row["name"]: not (row["notnull"] or row["pk"]) for row in rows}
        assert actual == expected, name


async def test_migrations_are_in_step_with_the_tables(pg_url: str) -> None:
    """Piccolo's auto-migration finds nothing to add: the tables and migrations agree.

    Against PostgreSQL, whatever engine the tests before bound last: a migration
    may skip on SQLite what SQLite does not enforce (varchar lengths).
    """
    await schema_state(parse_database_url(pg_url))  # binds Piccolo's engine to it
    statements = await AutoMigrationManager(auto_input="n").get_alter_statements(
        app_config=APP_CONFIG
    )
    assert [s.statements for s in statements if s.statements] == []
