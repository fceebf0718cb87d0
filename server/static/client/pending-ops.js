// Part of the Moodboard browser client (../moodboard-client.js): the user's pending
// operations (optimistic edits not yet confirmed), in the order made.
//
// An op: {op_id, seen, key, action, entity, id, data, base_version, reapply, intent,
// status: "queued" -> "sent" -> "acked" (until its event arrives), sentOnce, ref,
// version, seq}. At most one op per entity is in flight; `base_version` null means
// "on top of the earlier pending op on this entity, once it resolves".

import { keyOf } from "./confirmed-state.js";
import { uuid4 } from "./uuid.js";

/** A new queued op. `seen`: what the user saw when deleting (a conflict compares it). */
export function newOp({ action, entity, id, data, baseVersion, reapply, intent, seen }) {
  return {
    op_id: uuid4(),
    seen,
    key: keyOf(entity, id),
    action,
    entity,
    id,
    data,
    base_version: baseVersion,
    reapply,
    intent,
    status: "queued",
    sentOnce: false,
    ref: null,
    version: null,
    seq: null,
  };
}

/** The entity as the user sees it: confirmed, with the pending ops on it applied; or null. */
export function viewOf(confirmed, pending, entity, id) {
  const key = keyOf(entity, id);
  let value = confirmed[entity].get(id) ?? null;
  for (const op of pending) {
    if (op.key !== key) continue;
    if (op.action === "delete") value = null;
    else if (op.action === "create") value = { ...(value ?? {}), ...op.data, id, version: 0 };
    else if (value) value = { ...value, ...op.data };
  }
  return value;
}

/**
 * Whether an update may join `last` (the entity's latest pending op) instead of
 * becoming an op of its own: several unsent changes to one entity travel as one (the
 * latest values win). Never into an op sent before: if it was applied, its op_id
 * stands for what it was then.
 */
export function canMergeUpdate(last, reapply) {
  if (!last) return false;
  return last.status === "queued" && !last.sentOnce && last.reapply === reapply && last.action !== "delete";
}

/** The ops that may be sent now: queued, and not waiting on an earlier op of their entity. */
export function opsReadyToSend(pending) {
  const busy = new Set();
  const ready = [];
  for (const op of pending) {
    if (op.status === "queued" && !busy.has(op.key) && op.base_version !== null) ready.push(op);
    if (op.status !== "acked") busy.add(op.key); // queued, or in flight
  }
  return ready;
}

/** The `edit` frame for an op. */
export function editFrame(op, ref, projectId) {
  const frame = {
    type: "edit",
    ref,
    project_id: projectId,
    op_id: op.op_id,
    action: op.action,
    entity: op.entity,
    id: op.id,
  };
  if (op.action !== "create") frame.base_version = op.base_version;
  if (op.action !== "delete") {
    const data = { ...op.data };
    if (op.action === "create" && op.entity === "item") {
      frame.room_id = data.room_id;
      delete data.room_id;
    }
    frame.data = data;
  }
  return frame;
}

/** The next pending op on the same entity was made on top of this one's result. */
export function resolveNext(pending, op, version) {
  const next = pending.find((o) => o !== op && o.key === op.key && o.base_version === null);
  if (next && version !== null) next.base_version = version;
}

/**
 * Forget an op the server did not apply. The next op on its entity was made on top of
 * it: it now builds on `version` (the entity as it is), or goes too when the entity is
 * gone. `table`: the confirmed entities of the op's kind. The pending list (a new one
 * when ops went with it).
 */
export function releaseOp(pending, table, op, version) {
  const index = pending.indexOf(op);
  if (index >= 0) pending.splice(index, 1);
  const exists = version !== null || table.has(op.id);
  if (!exists) return pending.filter((o) => o.key !== op.key || o.action === "create");
  resolveNext(pending, op, version ?? table.get(op.id).version);
  return pending;
}

/** Acked ops whose events a snapshot up to `seq` already holds are settled (removed). */
export function settleAckedUpTo(pending, seq) {
  for (const op of pending.filter((o) => o.status === "acked" && o.seq <= seq)) {
    resolveNext(pending, op, op.version);
    pending.splice(pending.indexOf(op), 1);
  }
}

/** Ops restored from storage go first, unless already pending; their fate is unknown again. */
export function restorePending(stored, pending) {
  const known = new Set(pending.map((op) => op.op_id));
  const restored = (stored ?? []).filter((op) => !known.has(op.op_id));
  for (const op of restored) op.status = op.status === "acked" ? "acked" : "queued";
  return [...restored, ...pending];
}
