// Part of the Moodboard browser client (../moodboard-client.js): what a browser keeps of
// each project between visits (localStorage, or any object with its methods), under
// `moodboard.v1.<user id>.<project id>`: `{seq, state: {entity: [...]}, pending: [...]}`.

import { emptyState, ENTITIES } from "./confirmed-state.js";

const STORAGE_PREFIX = "moodboard.v1";

export function storageKey(userId, projectId) {
  return `${STORAGE_PREFIX}.${userId ?? "anon"}.${projectId}`;
}

/** The stored copy `{seq, state, pending}`, or null (none, unreadable, or not ours). */
export function readStoredProject(storage, key) {
  let saved;
  try {
    saved = JSON.parse(storage.getItem(key) ?? "null");
  } catch {
    saved = null;
  }
  if (!saved || typeof saved.seq !== "number") return null;
  return saved;
}

/** The confirmed state (Maps) from a stored copy's `state`. */
export function stateFromStored(state) {
  const confirmed = emptyState();
  for (const entity of ENTITIES) for (const value of state[entity] ?? []) confirmed[entity].set(value.id ?? value.user_id, value);
  return confirmed;
}

export function writeStoredProject(storage, key, seq, confirmed, pending) {
  const state = {};
  for (const entity of ENTITIES) state[entity] = [...confirmed[entity].values()];
  const ops = pending.map((op) => ({ ...op, ref: null }));
  try {
    storage.setItem(key, JSON.stringify({ seq, state, pending: ops }));
  } catch {
    // Storage full or disabled: the session still works, it just starts from a snapshot.
  }
}

export function removeStoredProject(storage, key) {
  try {
    storage?.removeItem(key);
  } catch {
    // nothing stored, or storage disabled
  }
}

/** Erase every project stored for the user. */
export function forgetStoredUser(storage, userId) {
  if (!storage || !userId) return;
  const prefix = `${STORAGE_PREFIX}.${userId}.`;
  const keys = [];
  for (let i = 0; i < storage.length; i += 1) {
    const key = storage.key(i);
    if (key && key.startsWith(prefix)) keys.push(key);
  }
  for (const key of keys) storage.removeItem(key);
}
