"""The edit function takes a batch: one project's waiting edits, one transaction, one commit.

``moodboard_edit_batch`` does for each edit of the batch what
``moodboard_edit_update`` does for one (permission, op_id seen before,
version check, write, event with the next seq), under one lock of the
project row taken once, and answers each edit's seq, or NULL where the
general path must answer (no role, stale base, an op_id seen before, a gone
entity...). The server sends a project's socket edits that arrive while its
previous call is in flight as one such batch (server/projects/group_commit.py):
a busy project's edits then share one lock, one round trip and one WAL flush.

Two differences from the one-edit function, both because one edit must not
abort the others:

- an op_id that is already on an event is looked up (index ``event_one_op``)
  instead of being left to the unique index to refuse: a refusal would roll
  back the whole batch. Under the project's lock no other writer can add
  that event meanwhile, so the lookup is exact;
- the project's seq is written once, after the batch's events.

``moodboard_edit_update`` stays: a lone edit (none waiting with it) still
calls it, one lookup cheaper than a batch of one.

PostgreSQL only: SQLite has no such function (the general path applies the
same rules there).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-27T14:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "edit function: a batch of one project's edits in one transaction"

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
  -- The project's writers serialise on its row until commit (DESIGN.md write path).
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
            await engine.run_ddl(EDIT_BATCH)

    manager.add_raw(run)
    return manager
