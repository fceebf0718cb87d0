"""The edit functions: one lock order for every writer, the role checked under the lock.

Two changes to ``moodboard_edit_update`` and ``moodboard_edit_batch``
(migrations "a plain ack's outcome is its event row" and "a batch of one
project's edits in one transaction"), both found from outside (issue 18):

- the role was checked before the project row was locked (the one-edit
  function): an edit racing the removal (or downgrade to viewer) of its
  author could commit after the removal, which the event log then showed as
  ``member.deleted`` at seq S and the removed member's edit at S + 1. It is
  now checked after ``FOR UPDATE``: every change of access takes the
  project's lock too (server/projects/access.py ``require_locked``);
- they locked the project row, then the entity rows. An outside writer's
  statement locks its rows first, then its triggers lock the project row
  (for the next seq): the two could deadlock, and PostgreSQL aborted one of
  them. Both functions now lock the entity rows first (a batch: by id), then
  the project row, like every other writer (docs/architecture.md §2).

PostgreSQL only, like the functions.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-07T10:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "edit functions: one lock order, the role checked under the project lock"

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
  -- One lock order for every writer: the entity's row, then the project's. The
  -- outside-writer triggers run after their row is locked and then take the project's
  -- row (for the next seq); taken the other way round here, the two could deadlock.
  IF p_entity = 'item' THEN
    SELECT * INTO v_item FROM item WHERE id = p_id AND project_id = p_project FOR UPDATE;
  ELSIF p_entity = 'room' THEN
    SELECT * INTO v_room FROM room WHERE id = p_id AND project_id = p_project FOR UPDATE;
  ELSE
    RETURN NULL;
  END IF;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  -- The project's writers serialise on its row until commit (docs/architecture.md §2).
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
    IF v_item.version <> p_base THEN
      RETURN NULL;
    END IF;
    v_item := jsonb_populate_record(v_item, p_fields);
    UPDATE item SET kind = v_item.kind, x = v_item.x, y = v_item.y, w = v_item.w,
                    h = v_item.h, rotation = v_item.rotation, z = v_item.z,
                    data = v_item.data, version = v_version, updated_at = p_at
    WHERE id = p_id;
  ELSE
    IF v_room.version <> p_base THEN
      RETURN NULL;
    END IF;
    v_room := jsonb_populate_record(v_room, p_fields);
    UPDATE room SET name = v_room.name, room_type = v_room.room_type,
                    attributes = v_room.attributes, position = v_room.position,
                    version = v_version, updated_at = p_at
    WHERE id = p_id;
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


EDIT_BATCH = """
CREATE OR REPLACE FUNCTION moodboard_edit_batch(
  p_project uuid,
  p_entities text[],     -- per edit: 'room' or 'item'
  p_users uuid[],        -- per edit: its author
  p_ids uuid[],          -- per edit: the entity's id
  p_bases int[],         -- per edit: its base_version
  p_fields jsonb[],      -- per edit: the validated fields, as the event's data carries them
  p_ops text[],          -- per edit: the client's op_id, or NULL
  p_at timestamptz[],    -- per edit: the event's time (and updated_at)
  p_roles text[]         -- the roles that may edit (server/access/policy.py)
) RETURNS bigint[] AS $$
DECLARE
  v_count int := cardinality(p_ids);
  v_seqs bigint[] := array_fill(NULL::bigint, ARRAY[cardinality(p_ids)]);
  v_first bigint;
  v_seq bigint;
  v_version int;
  v_editors uuid[] := '{}';
  v_room room%ROWTYPE;
  v_item item%ROWTYPE;
  i int;
BEGIN
  -- One lock order for every writer: the batch's rows (items, then rooms, each by id),
  -- then the project's, as the outside-writer triggers take them (see the one-edit function).
  PERFORM 1 FROM item WHERE id = ANY (p_ids) AND project_id = p_project ORDER BY id FOR UPDATE;
  PERFORM 1 FROM room WHERE id = ANY (p_ids) AND project_id = p_project ORDER BY id FOR UPDATE;
  -- The project's writers serialise on its row until commit (docs/architecture.md §2).
  SELECT seq INTO v_first FROM project WHERE id = p_project AND deleted_at IS NULL FOR UPDATE;
  IF NOT FOUND THEN
    RETURN v_seqs;
  END IF;
  v_seq := v_first;
  FOR i IN 1 .. v_count LOOP
    IF NOT p_users[i] = ANY (v_editors) THEN
      CONTINUE WHEN NOT EXISTS (
        SELECT 1 FROM project_member m
        WHERE m.project_id = p_project AND m.user_id = p_users[i] AND m.role = ANY (p_roles)
        UNION ALL
        SELECT 1 FROM project_team_grant g JOIN team_member t ON t.team_id = g.team_id
        WHERE g.project_id = p_project AND t.user_id = p_users[i] AND g.role = ANY (p_roles)
      );
      v_editors := v_editors || p_users[i];
    END IF;
    -- An op_id seen before: its outcome is in operation (conflict, merged ack) or on an event.
    CONTINUE WHEN p_ops[i] IS NOT NULL AND (
      EXISTS (SELECT 1 FROM operation WHERE project_id = p_project AND op_id = p_ops[i])
      OR EXISTS (SELECT 1 FROM event WHERE project_id = p_project AND op_id = p_ops[i])
    );
    v_version := p_bases[i] + 1;
    IF p_entities[i] = 'item' THEN
      SELECT * INTO v_item FROM item WHERE id = p_ids[i] AND project_id = p_project FOR UPDATE;
      CONTINUE WHEN NOT FOUND OR v_item.version <> p_bases[i];
      v_item := jsonb_populate_record(v_item, p_fields[i]);
      UPDATE item SET kind = v_item.kind, x = v_item.x, y = v_item.y, w = v_item.w,
                      h = v_item.h, rotation = v_item.rotation, z = v_item.z,
                      data = v_item.data, version = v_version, updated_at = p_at[i]
      WHERE id = p_ids[i];
    ELSIF p_entities[i] = 'room' THEN
      SELECT * INTO v_room FROM room WHERE id = p_ids[i] AND project_id = p_project FOR UPDATE;
      CONTINUE WHEN NOT FOUND OR v_room.version <> p_bases[i];
      v_room := jsonb_populate_record(v_room, p_fields[i]);
      UPDATE room SET name = v_room.name, room_type = v_room.room_type,
                      attributes = v_room.attributes, position = v_room.position,
                      version = v_version, updated_at = p_at[i]
      WHERE id = p_ids[i];
    ELSE
      CONTINUE;
    END IF;
    v_seq := v_seq + 1;
    -- The op's outcome, a plain ack, is this row: the server reads it back from here.
    INSERT INTO event (project_id, seq, kind, entity, entity_id, version, data, actor_id, op_id, at)
    VALUES (p_project, v_seq, p_entities[i] || '.updated', p_entities[i], p_ids[i], v_version,
            p_fields[i], p_users[i], p_ops[i], p_at[i]);
    v_seqs[i] := v_seq;
  END LOOP;
  IF v_seq <> v_first THEN
    UPDATE project SET seq = v_seq WHERE id = p_project;
  END IF;
  RETURN v_seqs;
END
$$ LANGUAGE plpgsql
"""


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="moodboard", description=DESCRIPTION)

    async def run():
        engine = engine_finder()
        if engine.engine_type == "postgres":
            await engine.run_ddl(EDIT_UPDATE)
            await engine.run_ddl(EDIT_BATCH)

    manager.add_raw(run)
    return manager
