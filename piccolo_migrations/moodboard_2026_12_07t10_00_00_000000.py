"""The one-edit function checks the editor's role under the project's lock.

``moodboard_edit_update`` (migration "edit function: a plain ack's outcome
is its event row") checked the role before locking the project row: an edit
racing the removal (or downgrade to viewer) of its author could commit after
the removal, which the event log then showed as ``member.deleted`` at seq S
and the removed member's edit at S + 1 (issue 18, case 5). The same function,
with the check moved after ``FOR UPDATE``: every change of access takes the
project's lock too (server/projects/access.py ``require_locked``), so the
check sees any change that committed before the lock was granted.
``moodboard_edit_batch`` already checks after its lock.

PostgreSQL only, like the function.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-07T10:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "edit function: the role is checked under the project lock"

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
  -- The project's writers serialise on its row until commit (DESIGN.md write path).
  PERFORM 1 FROM project WHERE id = p_project AND deleted_at IS NULL FOR UPDATE;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  -- The role, checked under that lock: a removal or downgrade takes it too, so it
  -- either committed before this check (which sees it) or waits for this edit.
  IF NOT EXISTS (
    SELECT 1 FROM project_member m
    WHERE m.project_id = p_project AND m.user_id = p_user AND m.role = ANY (p_roles)
    UNION ALL
    SELECT 1 FROM project_team_grant g JOIN team_member t ON t.team_id = g.team_id
    WHERE g.project_id = p_project AND t.user_id = p_user AND g.role = ANY (p_roles)
  ) THEN
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
