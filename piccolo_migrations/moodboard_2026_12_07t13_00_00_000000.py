"""A service account keeps its previous key for a grace period after a rotation.

``POST /api/admin/service-accounts/{id}/rotate`` (or ``moodboard
rotate-service-account``) issues a new key; the old one keeps working until
its grace period ends or an admin ends it, so workers can be given the new
key one by one. Three nullable columns, nothing else:

- ``previous_key_hash``: SHA-256 of the key the last rotation retired
  (indexed: a worker call looks it up when the current key does not match);
- ``previous_key_expires_at``: when it stops working;
- ``previous_key_last_used_at``: when a worker last called with it, so an
  admin sees whether every worker has the new key.

An expand-only migration (docs/operations.md "Upgrades and rollbacks"): the
previous release never reads these columns, and ``key_hash`` keeps holding
the current key, so that release still serves this schema (its workers'
current keys work; a previous key in its grace does not, there).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Timestamptz, Varchar
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-07T13:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "service_account: the previous key of a rotation, for a grace period"


def _params(**extra: object) -> dict[str, object]:
    return {
        "default": None,
        "null": True,
        "primary_key": False,
        "unique": False,
        "index": False,
        "index_method": IndexMethod.btree,
        "choices": None,
        "db_column_name": None,
        "secret": False,
        **extra,
    }


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="moodboard", description=DESCRIPTION)
    manager.add_column(
        table_class_name="ServiceAccount",
        tablename="service_account",
        column_name="previous_key_hash",
        db_column_name="previous_key_hash",
        column_class_name="Varchar",
        column_class=Varchar,
        params=_params(length=64, index=True, secret=True),
        schema=None,
    )
    for name in ("previous_key_expires_at", "previous_key_last_used_at"):
        manager.add_column(
            table_class_name="ServiceAccount",
            tablename="service_account",
            column_name=name,
            db_column_name=name,
            column_class_name="Timestamptz",
            column_class=Timestamptz,
            params=_params(),
            schema=None,
        )
    return manager
