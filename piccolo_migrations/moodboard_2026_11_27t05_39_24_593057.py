"""Operation-outcome indexes, and the triggers that log changes made outside the server.

Outside writers (worker processes, other services, psql) may change project,
room, item and generation rows directly (PROTOCOL.md section 2). On
PostgreSQL, triggers give each such change what the server's own write path
gives its changes: the version bump, the next per-project seq, an event row in
the same transaction, and a NOTIFY doorbell (moodboard_events, payload
<project_id>:<seq>) that every instance LISTENs to.

How a trigger tells the server's own writes apart: every connection of the
server sets moodboard.writer = 'server' when it opens (server/db/engine.py,
create_engine). Without that setting a change is an outside one. SQLite
(embedded mode) has no outside writers: no triggers there.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-27T05:39:24:593057"
VERSION = "1.38.0"
DESCRIPTION = "operation indexes and outside-writer triggers"

INDEXES = (
    "CREATE UNIQUE INDEX operation_one_op ON operation (project_id, op_id)",
    "CREATE INDEX operation_at ON operation (at)",
)

BUMP_VERSION = """
CREATE OR REPLACE FUNCTION moodboard_outside_version() RETURNS trigger AS $$
DECLARE
  v_new jsonb := to_jsonb(NEW) - 'version';
  v_old jsonb := to_jsonb(OLD) - 'version';
  v_key text;
BEGIN
  IF current_setting('moodboard.writer', true) = 'server' OR NEW.version <> OLD.version THEN
    RETURN NEW;
  END IF;
  -- Only the entity's own fields (the trigger's arguments) count as a change:
  -- a seq bump of the project row, say, is not a new version of the project.
  FOREACH v_key IN ARRAY TG_ARGV LOOP
    IF v_new -> v_key IS DISTINCT FROM v_old -> v_key THEN
      NEW.version := OLD.version + 1;
      RETURN NEW;
    END IF;
  END LOOP;
  RETURN NEW;
END
$$ LANGUAGE plpgsql
"""

LOG_EVENT = """
CREATE OR REPLACE FUNCTION moodboard_outside_event() RETURNS trigger AS $$
DECLARE
  v_entity text := TG_TABLE_NAME;
  v_row jsonb;
  v_old jsonb;
  v_data jsonb;
  v_kind text;
  v_project uuid;
  v_version int;
  v_seq bigint;
  v_key text;
BEGIN
  IF current_setting('moodboard.writer', true) = 'server' THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'DELETE' THEN v_row := to_jsonb(OLD); ELSE v_row := to_jsonb(NEW); END IF;
  v_project := CASE WHEN v_entity = 'project' THEN (v_row ->> 'id')::uuid
                    ELSE (v_row ->> 'project_id')::uuid END;
  v_version := (v_row ->> 'version')::int;
  v_data := '{}'::jsonb;
  IF TG_OP = 'INSERT' THEN
    FOREACH v_key IN ARRAY TG_ARGV LOOP
      v_data := v_data || jsonb_build_object(v_key, v_row -> v_key);
    END LOOP;
    v_kind := v_entity || '.created';
  ELSIF TG_OP = 'UPDATE' THEN
    v_old := to_jsonb(OLD);
    FOREACH v_key IN ARRAY TG_ARGV LOOP
      IF v_key <> 'version' AND v_row -> v_key IS DISTINCT FROM v_old -> v_key THEN
        v_data := v_data || jsonb_build_object(v_key, v_row -> v_key);
      END IF;
    END LOOP;
    IF v_data = '{}'::jsonb THEN
      RETURN NULL;  -- nothing a client sees changed (e.g. only the project's seq)
    END IF;
    v_kind := v_entity || '.updated';
  ELSE
    v_kind := v_entity || '.deleted';
    v_version := v_version + 1;
  END IF;
  IF v_entity = 'generation' AND TG_OP <> 'DELETE' THEN
    -- Generation events carry the whole entity and are named by what happened.
    v_data := '{}'::jsonb;
    FOREACH v_key IN ARRAY TG_ARGV LOOP
      v_data := v_data || jsonb_build_object(v_key, v_row -> v_key);
    END LOOP;
    IF TG_OP = 'UPDATE' AND v_row -> 'status' IS NOT DISTINCT FROM v_old -> 'status' THEN
      v_kind := 'generation.progress';
    ELSE
      v_kind := 'generation.' || CASE v_row ->> 'status' WHEN 'running' THEN 'started'
                                                         ELSE v_row ->> 'status' END;
    END IF;
  END IF;
  UPDATE project SET seq = seq + 1 WHERE id = v_project RETURNING seq INTO v_seq;
  IF v_seq IS NULL THEN
    RETURN NULL;  -- the project itself is being deleted
  END IF;
  INSERT INTO event (project_id, seq, kind, entity, entity_id, version, data, actor_id, op_id, at)
  VALUES (v_project, v_seq, v_kind, v_entity, (v_row ->> 'id')::uuid, v_version, v_data,
          NULL, NULL, now());
  PERFORM pg_notify('moodboard_events', v_project::text || ':' || v_seq::text);
  RETURN NULL;
END
$$ LANGUAGE plpgsql
"""

FIELDS = {
    "project": ("id", "name", "description", "owner_id", "team_id", "version", "created_at",
                "updated_at", "deleted_at"),
    "room": ("id", "project_id", "name", "room_type", "attributes", "position", "version"),
    "item": ("id", "project_id", "room_id", "kind", "x", "y", "w", "h", "rotation", "z", "data",
             "version"),
    "generation": ("id", "project_id", "room_id", "requested_by", "prompt", "params", "status",
                   "progress", "stage", "cost", "result", "error", "attempts", "created_at",
                   "started_at", "finished_at", "version"),
}


def trigger_ddl():
    statements = [BUMP_VERSION, LOG_EVENT]
    for table, fields in FIELDS.items():
        args = ", ".join(f"'{f}'" for f in fields)
        statements.append(
            f'CREATE TRIGGER {table}_outside_version BEFORE UPDATE ON "{table}" '
            f"FOR EACH ROW EXECUTE FUNCTION moodboard_outside_version({args})"
        )
        statements.append(
            f'CREATE TRIGGER {table}_outside_event AFTER INSERT OR UPDATE OR DELETE ON "{table}" '
            f"FOR EACH ROW EXECUTE FUNCTION moodboard_outside_event({args})"
        )
    return statements


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="moodboard", description=DESCRIPTION)

    async def run():
        engine = engine_finder()
        for statement in INDEXES:
            await engine.run_ddl(statement)
        if engine.engine_type == "postgres":
            for statement in trigger_ddl():
                await engine.run_ddl(statement)

    manager.add_raw(run)
    return manager
