"""The one-round-trip edit function no longer writes an ``operation`` row for its ack.

A plain ack (not merged) says nothing its event row does not already say:
the event carries the op_id (unique per project, index ``event_one_op``),
the entity's id, the new version, the seq and the actor. So the server now
reads such an op's outcome back from its event (server/projects/edits.py,
``earlier_outcome``), and ``operation`` keeps only the outcomes no event
describes: conflicts and merged acks. For the edit function that removes one
row, its three index entries, its foreign-key check and its sequence step
from every edit.

An op_id seen before is still never applied twice:

- its conflict or merged ack is in ``operation``: the function returns NULL
  before writing, as before;
- its plain ack is on an event: the event insert violates ``event_one_op``,
  the statement (the edit's one transaction) rolls back, and the server
  answers from the general path, which finds the event.

PostgreSQL only: SQLite has no such function (the general path applies the
same rule there).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-27T10:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "edit function: a plain ack's outcome is its event row"

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
  -- A conflict or merged ack of this op_id; its plain ack is on an event,
  -- and the event insert below refuses a second one (event_one_op).
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
  -- The op's outcome, a plain ack, is this row: the server reads it back from here.
  INSERT INTO event (project_id, seq, kind, entity, entity_id, version, data, actor_id, op_id, at)
  VALUES (p_project, v_seq, p_entity || '.updated', p_entity, p_id, v_version, p_fields,
          p_user, p_op, p_at);
  RETURN v_seq;
END
$$ LANGUAGE plpgsql
"""


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="moodboard", description=DESCRIPTION)

    async def run():
        engine = engine_finder()
        if engine.engine_type == "postgres":
            await engine.run_ddl(EDIT_UPDATE)

    manager.add_raw(run)
    return manager
