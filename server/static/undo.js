// Undo and redo of the user's own changes to a board (Ctrl+Z, Ctrl+Shift+Z / Ctrl+Y).
//
// The log is never rewritten: an undo is a new versioned edit that sets back what the user
// changed. It is made only where nobody else changed the same fields since: those fields keep
// the other person's values and the user is told; the remaining fields are undone. The edit
// is sent with `reapply: false`, so a change someone makes while it travels is a conflict the
// client settles by keeping theirs (the conflict table of docs/browser-client.md), never
// overwritten.
// A deleted item comes back under its own id; undoing a creation deletes it again.

const LIMIT = 100; // steps kept per project
// What an item is, for bringing one back: everything but its id and version.
export const ITEM_FIELDS = ["room_id", "kind", "x", "y", "w", "h", "rotation", "z", "data"];

const same = (a, b) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

export function pick(value, fields) {
  const out = {};
  for (const f of fields) if (value && f in value) out[f] = structuredClone(value[f]);
  return out;
}

/**
 * The user's edits of one project, undoable. Make every user edit through `create`,
 * `update` and `remove` here (they forward to the project handle and remember the step).
 * Events: `change` (what can be undone or redone changed), `refused` {message} (a step could
 * not be undone as asked; the message says why).
 */
export class UndoHistory extends EventTarget {
  constructor(handle) {
    super();
    this.handle = handle;
    this.done = [];
    this.undone = [];
  }

  get canUndo() {
    return this.done.length > 0;
  }

  get canRedo() {
    return this.undone.length > 0;
  }

  // --- the user's edits ---------------------------------------------------------------

  create(entity, data, options = {}) {
    const id = this.handle.create(entity, data, options);
    this._push({ entity, id, before: null, after: pick({ ...data }, Object.keys(data)) });
    return id;
  }

  update(entity, id, fields, options = {}) {
    const current = this.handle.get(entity, id);
    if (!current) return;
    // `options.was`: what the user saw before the gesture (a drag's start), if not the view now.
    const was = options.was ?? current;
    const { was: _, ...rest } = options;
    this.handle.update(entity, id, fields, rest);
    const before = pick(was, Object.keys(fields));
    if (same(before, fields)) return;
    this._push({ entity, id, before, after: structuredClone(fields) });
  }

  remove(entity, id, options = {}) {
    const current = this.handle.get(entity, id);
    if (!current) return;
    this.handle.remove(entity, id, options);
    this._push({ entity, id, before: pick(current, ITEM_FIELDS), after: null });
  }

  /** Make the edits `fn` makes one step: a selection moved or deleted together undoes together. */
  batch(fn) {
    if (this._batch) return fn();
    this._batch = [];
    try {
      return fn();
    } finally {
      const steps = this._batch;
      this._batch = null;
      if (steps.length === 1) this._push(steps[0]);
      else if (steps.length) this._push({ group: steps });
    }
  }

  /** Record a step made by other code (a restore), so it can be undone too. */
  _push(step) {
    if (this._batch) {
      this._batch.push(step);
      return;
    }
    this.done.push(step);
    if (this.done.length > LIMIT) this.done.shift();
    this.undone = [];
    this._changed();
  }

  // --- undo and redo ------------------------------------------------------------------

  undo() {
    const step = this.done.pop();
    if (!step) return false;
    const kept = this._each(step, "undo", [...(step.group ?? [step])].reverse());
    if (kept) this.undone.push(kept);
    this._changed();
    return true;
  }

  redo() {
    const step = this.undone.pop();
    if (!step) return false;
    const kept = this._each(step, "redo", step.group ?? [step]);
    if (kept) this.done.push(kept);
    this._changed();
    return true;
  }

  /** Move each part of a step; what is left of it (the parts that could be done), or null. */
  _each(step, intent, parts) {
    const done = parts.filter((part) =>
      intent === "undo" ? this._move(part, part.after, part.before, intent) : this._move(part, part.before, part.after, intent),
    );
    if (!step.group) return done.length ? step : null;
    const group = step.group.filter((part) => done.includes(part));
    return group.length ? { group } : null;
  }

  /**
   * Take the entity from `from` (what the user left it as) to `to`. False when nothing of it
   * could be done (the step is then forgotten: the user was told why).
   */
  _move(step, from, to, intent) {
    const { entity, id } = step;
    const current = this.handle.get(entity, id);
    const pending = this.handle.pending.some((op) => op.key === `${entity}:${id}`);
    const baseVersion = pending || !current ? undefined : current.version;
    if (to === null) {
      // Undo a creation / redo a deletion: delete, unless its content changed since.
      if (!current) return this._refuse(intent, "it was deleted meanwhile.");
      if (!same(current.data, from.data)) return this._refuse(intent, "someone changed its content since.");
      this.handle.remove(entity, id, { baseVersion, reapply: false, intent });
      // Brought back later, it comes back as it is now (moved by others meanwhile, say).
      const now = pick(current, ITEM_FIELDS);
      if (from === step.after) step.after = now;
      else step.before = now;
      return true;
    }
    if (from === null) {
      // Undo a deletion / redo a creation: bring it back as it was, under its own id.
      if (current) return this._refuse(intent, "it is on the board already.");
      this.handle.create(entity, structuredClone(to), { id, intent });
      return true;
    }
    if (!current) return this._refuse(intent, "someone deleted it meanwhile.");
    // A field someone else changed is theirs, and so is the rest of its group (x goes with y).
    const touched = new Set(Object.keys(to).filter((f) => !same(current[f], from[f])).map(groupOf));
    const mine = Object.keys(to).filter((f) => !touched.has(groupOf(f)));
    const theirs = Object.keys(to).filter((f) => touched.has(groupOf(f)));
    if (mine.length === 0) return this._refuse(intent, `someone changed its ${words(theirs)} since; theirs is kept.`);
    this.handle.update(entity, id, pick(to, mine), { baseVersion, reapply: false, intent });
    if (theirs.length) {
      this._tell(`Partly ${intent === "undo" ? "undone" : "redone"}: someone changed the ${words(theirs)} since; theirs is kept.`);
    }
    return true;
  }

  _refuse(intent, why) {
    this._tell(`Nothing to ${intent}: ${why}`);
    return false;
  }

  _tell(message) {
    this.dispatchEvent(new CustomEvent("refused", { detail: { message } }));
  }

  _changed() {
    this.dispatchEvent(new CustomEvent("change"));
  }
}

const GROUPS = { x: "xy", y: "xy", w: "wh", h: "wh" };
const groupOf = (field) => GROUPS[field] ?? field;

const WORDS = { x: "position", y: "position", w: "size", h: "size", z: "stacking", data: "content", room_id: "room" };

export function words(fields) {
  return [...new Set(fields.map((f) => WORDS[f] ?? f))].join(" and ");
}

/** Ctrl+Z / Cmd+Z undo, Ctrl+Shift+Z / Cmd+Shift+Z / Ctrl+Y redo; text fields keep their own. */
export function installUndoKeys(history) {
  document.addEventListener("keydown", (event) => {
    const undo = history();
    if (!undo || !(event.ctrlKey || event.metaKey) || event.altKey) return;
    if (event.target.closest?.("input, textarea, select, [contenteditable]")) return;
    const key = event.key.toLowerCase();
    if (key === "z" && !event.shiftKey) {
      event.preventDefault();
      undo.undo();
    } else if ((key === "z" && event.shiftKey) || key === "y") {
      event.preventDefault();
      undo.redo();
    }
  });
}
