"""Constraints and indexes that Piccolo's table definitions cannot express
portably: composite unique keys, CHECK invariants, secondary, composite and
partial indexes for the access paths of PROTOCOL.md.

The same statements serve PostgreSQL and SQLite, except CHECK constraints:
SQLite cannot add one to an existing table, so there each becomes a pair of
BEFORE INSERT/UPDATE triggers that abort with the constraint's name.
server/db/constraints.py says why each index exists; tests/db/test_schema.py
checks that this file and that list agree on both engines.
"""

import re

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-27T04:42:35:274657"
VERSION = "1.38.0"
DESCRIPTION = "constraints and indexes"

_ROLES = "role IN ('owner', 'editor', 'viewer')"

CHECKS = (
    ("app_user", "app_user_role_known", "role IN ('user', 'admin')"),
    ("app_user", "app_user_credits_never_negative", "credits >= 0"),
    ("team_member", "team_member_role_known", "role IN ('owner', 'member')"),
    ("project", "project_version_positive", "version >= 1"),
    ("project", "project_seq_never_negative", "seq >= 0"),
    (
        "project",
        "project_storage_within_quota",
        "storage_bytes >= 0 AND storage_bytes <= storage_quota_bytes",
    ),
    ("project_member", "project_member_role_known", _ROLES),
    ("project_team_grant", "project_team_grant_role_known", _ROLES),
    ("invitation", "invitation_role_known", _ROLES),
    (
        "room",
        "room_type_known",
        "room_type IN ('living_room', 'bedroom', 'kitchen', 'bathroom', "
        "'dining_room', 'office', 'outdoor', 'other')",
    ),
    ("room", "room_version_positive", "version >= 1"),
    ("item", "item_kind_known", "kind IN ('image', 'note', 'color', 'asset', 'generation')"),
    ("item", "item_size_positive", "w > 0 AND h > 0"),
    ("item", "item_version_positive", "version >= 1"),
    ("project_resource", "project_resource_size_never_negative", "size_bytes >= 0"),
    (
        "generation",
        "generation_status_known",
        "status IN ('queued', 'running', 'succeeded', 'failed', 'canceled')",
    ),
    ("generation", "generation_progress_in_range", "progress >= 0 AND progress <= 100"),
    ("generation", "generation_cost_never_negative", "cost >= 0"),
    ("generation", "generation_version_positive", "version >= 1"),
    ("credit_ledger", "credit_ledger_balance_never_negative", "balance >= 0"),
)

INDEXES = (
    "CREATE UNIQUE INDEX team_member_one_membership ON team_member (team_id, user_id)",
    "CREATE UNIQUE INDEX project_member_one_membership ON project_member (project_id, user_id)",
    "CREATE UNIQUE INDEX project_team_grant_one_grant ON project_team_grant (project_id, team_id)",
    "CREATE UNIQUE INDEX event_one_seq ON event (project_id, seq)",
    "CREATE UNIQUE INDEX event_one_op ON event (project_id, op_id)",
    "CREATE INDEX user_session_user_created ON user_session (user_id, created_at)",
    "CREATE INDEX user_session_expires ON user_session (expires_at)",
    "CREATE INDEX team_member_user ON team_member (user_id)",
    "CREATE INDEX project_owner ON project (owner_id)",
    "CREATE INDEX project_team ON project (team_id)",
    "CREATE INDEX project_member_user ON project_member (user_id)",
    "CREATE INDEX project_team_grant_team ON project_team_grant (team_id)",
    "CREATE INDEX invitation_project ON invitation (project_id)",
    "CREATE INDEX invitation_expires ON invitation (expires_at)",
    "CREATE INDEX room_project_position ON room (project_id, position)",
    "CREATE INDEX item_project ON item (project_id)",
    "CREATE INDEX item_room_z ON item (room_id, z)",
    "CREATE INDEX project_resource_project_created ON project_resource (project_id, created_at)",
    "CREATE INDEX generation_project_created ON generation (project_id, created_at)",
    "CREATE INDEX generation_room ON generation (room_id)",
    "CREATE INDEX generation_queued ON generation (created_at) WHERE status = 'queued'",
    "CREATE INDEX generation_running_lease ON generation (lease_expires_at)"
    " WHERE status = 'running'",
    "CREATE INDEX credit_ledger_user_at ON credit_ledger (user_id, at)",
    "CREATE INDEX audit_log_at ON audit_log (at)",
    "CREATE INDEX audit_log_actor_at ON audit_log (actor_id, at)",
    "CREATE INDEX audit_log_action_at ON audit_log (action, at)",
)


_KEYWORDS = {"in", "and", "or", "not", "null", "is"}


def _on_new_row(condition):
    """Qualify column names with NEW. (outside string literals) for a trigger."""
    parts = re.split(r"('[^']*')", condition)
    return "".join(
        part
        if part.startswith("'")
        else re.sub(
            r"\b([a-z_]+)\b",
            lambda m: m.group(1) if m.group(1) in _KEYWORDS else f"NEW.{m.group(1)}",
            part,
        )
        for part in parts
    )


def check_ddl(engine_type, table, name, condition):
    if engine_type == "postgres":
        return [f'ALTER TABLE "{table}" ADD CONSTRAINT {name} CHECK ({condition})']
    return [
        f'CREATE TRIGGER {name}_{when} BEFORE {when.upper()} ON "{table}" '
        f"FOR EACH ROW WHEN NOT ({_on_new_row(condition)}) "
        f"BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: {name}'); END"
        for when in ("insert", "update")
    ]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="moodboard", description=DESCRIPTION)

    async def run():
        engine = engine_finder()
        for table, name, condition in CHECKS:
            for statement in check_ddl(engine.engine_type, table, name, condition):
                await engine.run_ddl(statement)
        for statement in INDEXES:  # one statement per call: asyncpg refuses several
            await engine.run_ddl(statement)

    manager.add_raw(run)
    return manager
