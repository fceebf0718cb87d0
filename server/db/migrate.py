"""Apply pending migrations, once, even when several instances start together.

PostgreSQL: the runner holds a session advisory lock on a dedicated
connection; the instances that wait for it find nothing left to do. Both the
lock and the migrations use the direct session URL
(``MOODBOARD_DATABASE_LISTEN_URL`` when set): a transaction-mode pooler would
leave a session lock on a server connection other clients then share. SQLite
(embedded, one instance): an exclusive file lock beside the database does the
same for two processes started by mistake.

:func:`schema_state` compares, without changing anything, the migrations
this code has with those the database ran: the console commands refuse to
run on a database with pending ones (migrating is a release step, never a
side effect), and a database that ran migrations this code lacks is a newer
release's, which this one serves only when those migrations were
expand-only (docs/operations.md "Upgrades and rollbacks").
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import importlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from piccolo.apps.migrations.commands.base import BaseMigrationManager
from piccolo.apps.migrations.commands.forwards import run_forwards
from piccolo.apps.migrations.tables import Migration

from server.db.engine import create_engine
from server.db.piccolo_app import APP_NAME, migrations_folder
from server.log import get_logger
from server.settings import DatabaseUrl

# Any constant shared by every instance; spells "mood" in ASCII.
MIGRATION_LOCK_KEY = 0x6D6F6F64
PICCOLO_CONF_MODULE = "server.db.piccolo_conf"

log = get_logger(__name__)


class MigrationError(RuntimeError):
    """A migration failed; the database is left at the last one that succeeded."""


@dataclass(frozen=True, slots=True)
class SchemaState:
    """How a database's migrations compare with this code's (ids, oldest first)."""

    pending: list[str]  # this code's migrations the database has not run
    unknown: list[str]  # migrations the database ran that this code lacks (a newer release's)


def known_migrations() -> list[str]:
    """The ids of this code's migrations (``piccolo_migrations/``), oldest first."""
    modules = BaseMigrationManager().get_migration_modules(str(migrations_folder()))
    return sorted(modules)


async def _ran() -> set[str]:
    if not await Migration.table_exists().run():
        return set()
    return set(await Migration.get_migrations_which_ran(app_name=APP_NAME))


def _bind(database: DatabaseUrl) -> None:
    """Point Piccolo's migration runner and its Migration table at ``database``."""
    # The runner finds its engine through the PICCOLO_CONF module (and caches
    # it on its Migration table): point both at ``database``.
    os.environ.setdefault("PICCOLO_CONF", PICCOLO_CONF_MODULE)
    conf = importlib.import_module(os.environ["PICCOLO_CONF"])
    engine = create_engine(database)
    conf.__dict__["DB"] = engine
    Migration._meta.db = engine


async def schema_state(database: DatabaseUrl) -> SchemaState:
    """The migrations ``database`` lacks and those it has that this code does not; reads only."""
    _bind(database)
    ran = await _ran()
    known = known_migrations()
    return SchemaState(pending=[m for m in known if m not in ran], unknown=sorted(ran - set(known)))


async def _forwards(database: DatabaseUrl) -> list[str]:
    """Run the pending migrations; the ids of those it applied."""
    _bind(database)
    before = await _ran()
    # The runner prints (emoji lines) into what is our JSON log stream: keep its
    # text for a failure's record, and log what it did as one record instead.
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            result = await run_forwards(APP_NAME)
    except Exception:
        log.error("migrations.failed", output=printed.getvalue())
        raise
    if not result.success:
        log.error("migrations.failed", message=result.message, output=printed.getvalue())
        raise MigrationError(result.message)
    return sorted(await _ran() - before)


async def migrate(database: DatabaseUrl) -> None:
    """Run every pending migration of ``database`` under a cross-process lock."""
    if database.kind == "postgres":
        database = database.direct
        connection = await asyncpg.connect(dsn=database.url)
        try:
            log.info("migrations.waiting_for_lock")
            await connection.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
            try:
                applied = await _forwards(database)
            finally:
                await connection.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
        finally:
            await connection.close()
    else:
        assert database.sqlite_path is not None
        lock_path = Path(f"{database.sqlite_path}.migrate.lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        # A lock file opens instantly; only the wait for the lock may block.
        with lock_path.open("w") as lock_file:  # noqa: ASYNC230
            await asyncio.to_thread(fcntl.flock, lock_file, fcntl.LOCK_EX)
            try:
                applied = await _forwards(database)
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)
    log.info("migrations.done", database=database.redacted, applied=applied)
    log_if_newer(await schema_state(database))


def log_if_newer(state: SchemaState) -> None:
    """Log ``migrations.database_newer`` when a newer release migrated the database."""
    if state.unknown:
        log.warning(
            "migrations.database_newer",
            detail="the database ran migrations this release does not have (a newer "
            "release migrated it): serving it is supported only when they were expand-only "
            "(docs/operations.md, Upgrades and rollbacks)",
            unknown=state.unknown,
        )
