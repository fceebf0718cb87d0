"""The credit ledger's ``reason`` holds 256 characters (was 64).

An admin's adjustment is logged as ``admin: <reason>``, and the API takes
reasons of up to 200 characters: the ledger used to cut them at 64, so the
user's export showed a truncated reason. Widening a ``varchar`` is a
catalogue change in PostgreSQL (no table rewrite). SQLite does not enforce
``varchar`` lengths, so there is nothing to do there.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Varchar
from piccolo.engine import engine_finder

ID = "2026-11-27T12:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "credit_ledger.reason: 256 characters"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="moodboard", description=DESCRIPTION)
    if engine_finder().engine_type == "sqlite":
        return manager  # lengths are not enforced there (and Piccolo warns it skips them)
    manager.alter_column(
        table_class_name="CreditLedger",
        tablename="credit_ledger",
        column_name="reason",
        db_column_name="reason",
        params={"length": 256},
        old_params={"length": 64},
        column_class=Varchar,
        old_column_class=Varchar,
        schema=None,
    )
    return manager
