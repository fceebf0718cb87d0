// Part of the Moodboard browser client (../moodboard-client.js): how an op the server
// answered with `conflict` is settled (docs/browser-client.md, "What it guarantees, and
// how", **Conflicts.**).

// Fields whose concurrent change we settle by re-applying the user's value on
// top of the current entity: where a thing sits, how big it is, its tab order.
// A conflict on any other field (a note's text, a name) keeps the other
// person's value and tells the app, which shows what the user had typed.
export const REAPPLY_FIELDS = new Set(["x", "y", "w", "h", "rotation", "z", "position", "room_id"]);

/**
 * The settlement of `op` given the `conflict` frame: `{resolution, retry, data}`. With
 * `retry` the op goes again on the current version with `data`; without, it is dropped.
 * `before`: the confirmed entity; `roomExists(id)`: whether the view still has the room.
 */
export function settleConflict(op, conflict, before, roomExists) {
  const current = conflict.current;
  const retry = (data, resolution) => ({ resolution, retry: true, data });
  const drop = (resolution) => ({ resolution, retry: false, data: null });
  if (op.action === "delete") {
    if (!current) return drop("already_deleted");
    if (op.reapply !== false && onlyPlacementChanged(op.seen ?? before, current)) return retry(null, "reapplied");
    return drop("kept_theirs");
  }
  if (op.action === "update" && current) {
    const contested = conflict.fields.filter((f) => op.reapply === false || !REAPPLY_FIELDS.has(f));
    const roomGone = op.data.room_id && !roomExists(op.data.room_id);
    const data = { ...op.data };
    for (const f of contested) delete data[f];
    if (roomGone) delete data.room_id;
    if (contested.length === 0 && !roomGone) return retry(data, "reapplied");
    if (Object.keys(data).length > 0) return retry(data, "partly_reapplied");
    return drop("kept_theirs");
  }
  return drop(current ? "kept_theirs" : "deleted_by_others");
}

/** A delete re-applies when someone only moved or resized the thing meanwhile. */
function onlyPlacementChanged(before, current) {
  if (!before) return false;
  for (const [field, value] of Object.entries(current)) {
    if (field === "version" || REAPPLY_FIELDS.has(field)) continue;
    if (JSON.stringify(value) !== JSON.stringify(before[field])) return false;
  }
  return true;
}
