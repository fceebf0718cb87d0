"""An access-change counter, bumped by every change that can end someone's access.

Each instance re-checks the access of its sockets every second
(server/realtime/access_check.py). With this counter a round reads every
held session and (project, user) pair only when the counter moved since its
last full round (server/realtime/access_rounds.py); a quiet second costs
one one-row read instead of a statement over every socket.

- ``access_change``: one row, ``n`` counting changes.
- ``moodboard_access_changed()``: bumps ``n`` once per transaction (a
  transaction-local setting remembers it did).
- Constraint triggers, deferred to commit, on what can end access: a
  membership, team membership or team grant deleted or moved to another
  project, user or team; a project soft-deleted (or restored) or deleted; a
  session revoked, cut short or deleted. Deferred, the bump is the last thing
  a transaction does, so its row lock is held only while it commits and never
  before another of the transaction's statements (no lock-order deadlock with
  a concurrent change of the same rows). Triggers, so an outside writer's SQL
  counts as much as the server's.

Inserts never end access and are not counted; a session's ``expires_at``
moving forward (the touch of server/access/sessions.py) is not either:
expiry is time, which the rounds follow from the sessions' expiry times.

Expand-only (docs/operations.md "Upgrades and rollbacks"): the previous
release never reads the table and its writes fire the triggers harmlessly.
PostgreSQL only: SQLite (embedded, one instance) reads everything each round.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-07T16:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "access_change: a counter of changes that can end access, for the access check"

COUNTER = """
CREATE TABLE access_change (
  id int PRIMARY KEY,  -- one row: id 1
  n bigint NOT NULL DEFAULT 0
)
"""
FIRST_ROW = "INSERT INTO access_change (id, n) VALUES (1, 0)"
BUMP = """
CREATE OR REPLACE FUNCTION moodboard_access_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('moodboard.access_changed', true) IS DISTINCT FROM 'yes' THEN
    PERFORM set_config('moodboard.access_changed', 'yes', true);
    UPDATE access_change SET n = n + 1 WHERE id = 1;
  END IF;
  RETURN NULL;
END
$$
"""

# (table, trigger name's end, events, WHEN condition or None)
TRIGGERS = [
    ("project_member", "gone", "DELETE OR UPDATE OF project_id, user_id", None),
    ("team_member", "gone", "DELETE OR UPDATE OF team_id, user_id", None),
    ("project_team_grant", "gone", "DELETE OR UPDATE OF project_id, team_id", None),
    ("project", "gone", "DELETE", None),
    (
        "project",
        "deleted",
        "UPDATE OF deleted_at",
        "OLD.deleted_at IS DISTINCT FROM NEW.deleted_at",
    ),
    ("user_session", "gone", "DELETE", None),
    (
        "user_session",
        "ended",
        "UPDATE OF revoked_at, expires_at",
        "OLD.revoked_at IS DISTINCT FROM NEW.revoked_at OR NEW.expires_at < OLD.expires_at",
    ),
]


def trigger_ddl():
    statements = []
    for table, end, events, when in TRIGGERS:
        condition = f" WHEN ({when})" if when else ""
        statements.append(
            f'CREATE CONSTRAINT TRIGGER {table}_access_{end} AFTER {events} ON "{table}" '
            f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW{condition} "
            "EXECUTE FUNCTION moodboard_access_changed()"
        )
    return statements


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="moodboard", description=DESCRIPTION)

    async def run():
        engine = engine_finder()
        if engine.engine_type == "postgres":
            for statement in [COUNTER, FIRST_ROW, BUMP, *trigger_ddl()]:
                await engine.run_ddl(statement)

    manager.add_raw(run)
    return manager
