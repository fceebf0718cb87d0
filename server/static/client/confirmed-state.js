// Part of the Moodboard browser client (../moodboard-client.js): a project's confirmed
// state, exactly as the server's event log says (per entity kind, a Map id -> entity).

export const ENTITIES = ["project", "room", "item", "member", "generation"];

/** No entities of any kind. */
export function emptyState() {
  return Object.fromEntries(ENTITIES.map((e) => [e, new Map()]));
}

/** The key of one entity among all kinds: what pending ops are grouped by. */
export function keyOf(entity, id) {
  return `${entity}:${id}`;
}

/** Every entity's key. */
export function allKeys(confirmed) {
  const keys = [];
  for (const entity of ENTITIES) for (const id of confirmed[entity].keys()) keys.push(keyOf(entity, id));
  return keys;
}

/** The state a `joined` frame's snapshot describes. */
export function stateFromSnapshot(snap) {
  const confirmed = emptyState();
  confirmed.project.set(snap.project.id, snap.project);
  for (const room of snap.rooms) confirmed.room.set(room.id, room);
  for (const item of snap.items) confirmed.item.set(item.id, item);
  for (const gen of snap.generations) confirmed.generation.set(gen.id, gen);
  for (const m of snap.members) confirmed.member.set(m.user_id ?? m.id, m);
  return confirmed;
}

/**
 * Apply one event frame to the state. Its verb ("created", "updated", "deleted", or a
 * generation's), or null for an entity kind the client does not keep.
 */
export function applyEvent(confirmed, ev) {
  const table = confirmed[ev.entity];
  if (!table) return null;
  const verb = ev.kind.slice(ev.kind.indexOf(".") + 1);
  if (verb === "deleted") {
    table.delete(ev.id);
  } else if (verb === "updated") {
    const current = table.get(ev.id);
    const next = { ...(current ?? { id: ev.id }), ...ev.data };
    if (ev.version !== null && ev.version !== undefined) next.version = ev.version;
    table.set(ev.id, next);
  } else {
    // created, and every generation kind: the whole entity
    table.set(ev.id, { ...ev.data });
  }
  return verb;
}
