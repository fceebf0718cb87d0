"""The one-round-trip versioned update, and outside-writer triggers that skip the server's writes.

1. ``moodboard_edit_update``: the whole write path of DESIGN.md for the
   common edit (a room or item update whose ``base_version`` is current) in
   one statement, so one transaction and one round trip: the caller's role,
   the project's row lock, the op_id's earlier outcome, the version check,
   the write, the next seq, the event row and the op's outcome. Whenever it
   cannot simply apply (no role, project gone, op_id seen before, entity
   missing or of another project, stale base) it writes nothing and returns
   NULL, and the server takes its general path (server/projects/edits.py),
   which answers every such case. Field values arrive as a JSON object the
   server has validated; ``jsonb_populate_record`` turns them into the row's
   column types.

2. The outside-writer triggers of the previous migration called their
   functions on every row the server writes too (the functions then saw
   moodboard.writer = 'server' and returned, after building two jsonb copies
   of the row). The triggers are recreated with that test as their WHEN
   condition, so a server write no longer runs PL/pgSQL at all. What the
   triggers do for outside writers is unchanged.

PostgreSQL only: SQLite keeps the general path and has no triggers.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-27T07:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "one-round-trip edit function; triggers skip server writes"

EDIT_UPDATE = """
CREATE OR REPLACE FUNCTION moodboard_edit_update(
  p_entity text,       -- 'room' or 'item'
  p_project uuid,
  p_user uuid,
  p_id uuid,
  p_base int,          -- the edit's base_version
  p_fields jsonb,      -- the validated fields, as the event's data carries them
  p_op text,           -- the client's op_id, or NULL
  p_at timestamptz,    -- the event's time (and updated_at)
  p_roles text[]       -- the roles that may edit (server/access/policy.py)
) RETURNS bigint AS $$
DECLARE
  v_seq bigint;
  v_version int;
  v_room room%ROWTYPE;
  v_item item%ROWTYPE;
BEGIN
  IF NOT EXISTS (
    SELECT 1 FROM project_member m
    WHERE m.project_id = p_project AND m.user_id = p_user AND m.role = ANY (p_roles)
    UNION ALL
    SELECT 1 FROM project_team_grant g JOIN team_member t ON t.team_id = g.team_id
    WHERE g.project_id = p_project AND t.user_id = p_user AND g.role = ANY (p_roles)
  ) THEN
    RETURN NULL;
  END IF;
  -- The project's writers serialise on its row until commit (DESIGN.md write path).
  PERFORM 1 FROM project WHERE id = p_project AND deleted_at IS NULL FOR UPDATE;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  IF p_op IS NOT NULL AND EXISTS (
    SELECT 1 FROM operation WHERE project_id = p_project AND op_id = p_op
  ) THEN
    RETURN NULL;
  END IF;
  v_version := p_base + 1;
  IF p_entity = 'item' THEN
    SELECT * INTO v_item FROM item WHERE id = p_id AND project_id = p_project FOR UPDATE;
    IF NOT FOUND OR v_item.version <> p_base THEN
      RETURN NULL;
    END IF;
    v_item := jsonb_populate_record(v_item, p_fields);
    UPDATE item SET kind = v_item.kind, x = v_item.x, y = v_item.y, w = v_item.w,
                    h = v_item.h, rotation = v_item.rotation, z = v_item.z,
                    data = v_item.data, version = v_version, updated_at = p_at
    WHERE id = p_id;
  ELSIF p_entity = 'room' THEN
    SELECT * INTO v_room FROM room WHERE id = p_id AND project_id = p_project FOR UPDATE;
    IF NOT FOUND OR v_room.version <> p_base THEN
      RETURN NULL;
    END IF;
    v_room := jsonb_populate_record(v_room, p_fields);
    UPDATE room SET name = v_room.name, room_type = v_room.room_type,
                    attributes = v_room.attributes, position = v_room.position,
                    version = v_version, updated_at = p_at
    WHERE id = p_id;
  ELSE
    RETURN NULL;
  END IF;
  UPDATE project SET seq = seq + 1 WHERE id = p_project RETURNING seq INTO v_seq;
  INSERT INTO event (project_id, seq, kind, entity, entity_id, version, data, actor_id, op_id, at)
  VALUES (p_project, v_seq, p_entity || '.updated', p_entity, p_id, v_version, p_fields,
          p_user, p_op, p_at);
  IF p_op IS NOT NULL THEN
    INSERT INTO operation (project_id, op_id, user_id, outcome, at)
    VALUES (p_project, p_op, p_user,
            jsonb_build_object('type', 'ack', 'id', p_id, 'version', v_version,
                               'seq', v_seq, 'merged', false),
            p_at);
  END IF;
  RETURN v_seq;
END
$$ LANGUAGE plpgsql
"""

# The entity fields each trigger compares (as in the previous migration).
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

OUTSIDE = "current_setting('moodboard.writer', true) IS DISTINCT FROM 'server'"


def trigger_ddl():
    statements = []
    for table, fields in FIELDS.items():
        args = ", ".join(f"'{f}'" for f in fields)
        statements += [
            f'DROP TRIGGER {table}_outside_version ON "{table}"',
            f'DROP TRIGGER {table}_outside_event ON "{table}"',
            f'CREATE TRIGGER {table}_outside_version BEFORE UPDATE ON "{table}" '
            f"FOR EACH ROW WHEN ({OUTSIDE}) EXECUTE FUNCTION moodboard_outside_version({args})",
            f'CREATE TRIGGER {table}_outside_event AFTER INSERT OR UPDATE OR DELETE ON "{table}" '
            f"FOR EACH ROW WHEN ({OUTSIDE}) EXECUTE FUNCTION moodboard_outside_event({args})",
        ]
    return statements


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="moodboard", description=DESCRIPTION)

    async def run():
        engine = engine_finder()
        if engine.engine_type == "postgres":
            for statement in [EDIT_UPDATE, *trigger_ddl()]:
                await engine.run_ddl(statement)

    manager.add_raw(run)
    return manager
