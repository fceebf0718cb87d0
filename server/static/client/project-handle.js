// Part of the Moodboard browser client (../moodboard-client.js): one project's handle.
//
// It keeps the confirmed state (what the server's event log says, applied exactly
// once in seq order) and the user's pending operations (optimistic edits not yet
// confirmed). What an app renders is the view: confirmed state with the pending
// operations applied on top. See docs/browser-client.md for the API and the guarantees.

import { allKeys, applyEvent, emptyState, keyOf, stateFromSnapshot } from "./confirmed-state.js";
import { settleConflict } from "./conflicts.js";
import { emit } from "./emit.js";
import {
  canMergeUpdate,
  editFrame,
  newOp,
  opsReadyToSend,
  releaseOp,
  resolveNext,
  restorePending,
  settleAckedUpTo,
  viewOf,
} from "./pending-ops.js";
import { Throttle } from "./presence-throttle.js";
import { readStoredProject, removeStoredProject, stateFromStored, storageKey, writeStoredProject } from "./stored-projects.js";
import { uuid4 } from "./uuid.js";

/**
 * One project: confirmed state, pending edits, presence.
 *
 * Events: `sync` {mode} (joined and caught up; `mode` is "replay" or "snapshot"),
 * `change` {entity, id, value} (what the view shows changed; value null = gone),
 * `event` {frame} (every event applied, once, in seq order), `presence` {peers},
 * `conflict` {entity, id, fields, resolution, mine, current} , `rejected` {code, message, op},
 * `left` {reason}, `generation` {generation}.
 */
export class ProjectHandle extends EventTarget {
  constructor(client, projectId) {
    super();
    this.client = client;
    this.id = projectId;
    this.state = "idle"; // idle -> joining -> syncing (replay) -> live
    this.seq = null; // the last seq applied to the confirmed state
    this.confirmed = emptyState();
    this.pending = []; // ops in the order the user made them
    this.peers = new Map(); // connection_id -> {user_id, name, state}
    this.applied = []; // the last events applied: {seq, kind, id, op_id} (for apps and tests)
    this.lastPresence = null;
    this.mode = null; // how the last join caught up: "replay" or "snapshot"
    this._joinRef = null;
    this._target = null;
    this._saveTimer = null;
    this._loadedFor = null;
    this._presence = new Throttle(client.presenceIntervalMs, (state) =>
      this.client._send({ type: "presence", project_id: this.id, state }),
    );
    this._load();
  }

  // --- reading the view --------------------------------------------------------------

  /** The entity as the user sees it (pending edits applied), or null. */
  get(entity, id) {
    return viewOf(this.confirmed, this.pending, entity, id);
  }

  /** Every entity of a kind in the view, optionally filtered. */
  list(entity, filter = () => true) {
    const ids = new Set(this.confirmed[entity].keys());
    for (const op of this.pending) if (op.entity === entity) ids.add(op.id);
    const out = [];
    for (const id of ids) {
      const value = this.get(entity, id);
      if (value && filter(value)) out.push(value);
    }
    return out;
  }

  get project() {
    return this.confirmed.project.get(this.id) ?? null;
  }

  /** How many of the user's edits the server has not confirmed yet. */
  get pendingCount() {
    return this.pending.length;
  }

  // --- editing -----------------------------------------------------------------------

  /**
   * Create a room or an item (an item needs `room_id` in data); returns the new id.
   * `options.id` chooses it (bringing back a deleted item under its own id).
   */
  create(entity, data, options = {}) {
    const id = options.id ?? uuid4();
    this._enqueue({ action: "create", entity, id, data: { ...data }, base: 0, intent: options.intent });
    return id;
  }

  /**
   * Set fields of a project, room or item.
   *
   * `options.baseVersion` pins the version the user's intent was based on (for a
   * drag: the version when the drag started), so a change made meanwhile by
   * someone else is a conflict the client settles, not silently overwritten.
   */
  update(entity, id, fields, options = {}) {
    this._enqueue({ action: "update", entity, id, data: { ...fields }, ...this._opOptions(options) });
  }

  /** Delete a room or an item. */
  remove(entity, id, options = {}) {
    this._enqueue({ action: "delete", entity, id, data: null, ...this._opOptions(options) });
  }

  /**
   * `baseVersion` (above); `reapply: false` settles a conflict on placement fields like one on
   * content (the other person's values are kept), for edits that must never overwrite someone
   * (an undo); `intent` ("undo", "redo", "restore", ...) comes back in `conflict` events.
   */
  _opOptions({ baseVersion, reapply, intent } = {}) {
    return { base: baseVersion, reapply, intent };
  }

  /** Share ephemeral state (cursor, selection) with the others here; throttled. */
  setPresence(state) {
    this.lastPresence = state;
    if (this.state === "live") this._presence.push(state);
  }

  _enqueue({ action, entity, id, data, base, reapply = true, intent = null }) {
    const key = keyOf(entity, id);
    const earlier = this.pending.filter((op) => op.key === key);
    const last = earlier[earlier.length - 1];
    if (action === "update" && canMergeUpdate(last, reapply)) {
      Object.assign(last.data, data);
      this._changed(entity, id);
      this._flush();
      return;
    }
    let baseVersion = null; // null: after the earlier pending op on this entity resolves
    if (action === "create") baseVersion = 0;
    else if (!last) {
      const current = this.confirmed[entity].get(id);
      if (!current) return; // nothing to change
      baseVersion = base ?? current.version;
    }
    const seen = action === "delete" ? this.get(entity, id) : null;
    this.pending.push(newOp({ action, entity, id, data, baseVersion, reapply, intent, seen }));
    this._changed(entity, id);
    this._save();
    this._flush();
  }

  /** Send every op that may go now: live, and not waiting on an earlier op of its entity. */
  _flush() {
    if (this.state !== "live") return;
    for (const op of opsReadyToSend(this.pending)) this._sendOp(op);
  }

  _sendOp(op) {
    const frame = editFrame(op, this.client._ref("e"), this.id);
    if (this.client._send(frame)) {
      op.status = "sent";
      op.sentOnce = true;
      op.ref = frame.ref;
    }
  }

  // --- answers to our frames: ack, conflict, error -----------------------------------

  _owns(frame) {
    if (frame.type === "error" && frame.ref && frame.ref === this._joinRef) {
      this.state = "idle";
      this._joinRef = null;
      if (frame.code === "forbidden" || frame.code === "not_found") this._forget();
      emit(this, "error", { code: frame.code, message: frame.message });
      return true;
    }
    const op = this.pending.find(
      (o) => (frame.op_id && o.op_id === frame.op_id) || (frame.ref && o.ref === frame.ref),
    );
    if (!op) return false;
    if (frame.type === "ack") this._acked(op, frame);
    else if (frame.type === "conflict") this._conflicted(op, frame);
    else this._rejected(op, frame);
    return true;
  }

  _acked(op, ack) {
    op.status = "acked";
    op.version = ack.version;
    op.seq = ack.seq;
    resolveNext(this.pending, op, ack.version);
    if (this.seq !== null && ack.seq <= this.seq) this._settle(op); // its event came first
    this._flush();
  }

  _settle(op) {
    const index = this.pending.indexOf(op);
    if (index < 0) return;
    this.pending.splice(index, 1);
    this._changed(op.entity, op.id);
    this._save();
  }

  _conflicted(op, conflict) {
    // The confirmed state changes only through events (the one that beat us is on
    // its way), so `current` serves the decision and the app, nothing else.
    const { entity, id } = op;
    const before = this.confirmed[entity].get(id) ?? null;
    const current = conflict.current;
    const mine = op.data ? { ...op.data } : null;
    const detail = { entity, id, fields: conflict.fields, mine, current, action: op.action, intent: op.intent ?? null };
    const roomExists = (roomId) => Boolean(this.get("room", roomId));
    const { resolution, retry, data } = settleConflict(op, conflict, before, roomExists);
    if (retry) {
      // A new operation: the server answers a repeated op_id with its first outcome.
      op.op_id = uuid4();
      op.sentOnce = false;
      op.data = data;
      op.base_version = conflict.current_version;
      op.status = "queued";
      op.ref = null;
    } else {
      this._release(op, current ? conflict.current_version : null);
    }
    emit(this, "conflict", { ...detail, resolution });
    this._changed(entity, id);
    this._save();
    this._flush();
  }

  _release(op, version) {
    this.pending = releaseOp(this.pending, this.confirmed[op.entity], op, version);
  }

  _rejected(op, error) {
    if (error.code === "rate_limited") {
      // Not a verdict on the edit: try it again a little later.
      op.status = "queued";
      op.ref = null;
      setTimeout(() => this._flush(), 1000);
      return;
    }
    this._release(op, null);
    this._changed(op.entity, op.id);
    this._save();
    emit(this, "rejected", { code: error.code, message: error.message, op });
  }

  // --- joining and the event stream ---------------------------------------------------

  _join() {
    // The user became known with `ready`: pick up what this browser stored for them.
    if (this.seq === null && this._loadedFor !== this.client.userId) this._load();
    const frame = { type: "join", ref: this.client._ref("j"), project_id: this.id };
    if (this.seq !== null) frame.last_seq = this.seq;
    if (this.client._send(frame)) {
      this.state = "joining";
      this._joinRef = frame.ref;
    }
  }

  _disconnected() {
    this.state = "idle";
    this._presence.cancel();
    for (const op of this.pending) {
      // Unknown fate: sent again after the resume (same op_id, so never applied twice).
      if (op.status === "sent") op.status = "queued";
    }
    if (this.peers.size) {
      this.peers.clear();
      emit(this, "presence", { peers: this.peers });
    }
  }

  _frame(frame) {
    switch (frame.type) {
      case "joined":
        return this._joined(frame);
      case "event":
        return this._event(frame);
      case "presence_diff":
        return this._presenceDiff(frame);
      case "left":
        // A reply to a leave (it has our ref) may reach a handle opened again since.
        if (frame.ref) return;
        this.state = "idle";
        emit(this, "left", { reason: frame.reason ?? null });
        return;
      default:
    }
  }

  _joined(frame) {
    if (this.state !== "joining") return;
    this.mode = frame.mode;
    this.peers = new Map(
      Object.entries(frame.presence).filter(([cid]) => cid !== this.client.connectionId),
    );
    emit(this, "presence", { peers: this.peers });
    if (frame.mode === "snapshot") {
      const before = allKeys(this.confirmed);
      this.confirmed = stateFromSnapshot(frame.snapshot);
      this.seq = frame.seq;
      settleAckedUpTo(this.pending, this.seq);
      for (const key of new Set([...before, ...allKeys(this.confirmed)])) {
        const [entity, id] = key.split(/:(.*)/s);
        this._changed(entity, id);
      }
    }
    this._target = frame.seq;
    this.state = "syncing";
    this._caughtUp(frame.mode);
  }

  _caughtUp(mode) {
    if (this.state !== "syncing" || this.seq < this._target) return;
    this.state = "live";
    this._save();
    emit(this, "sync", { mode: mode ?? "replay", seq: this.seq });
    if (this.lastPresence) this._presence.push(this.lastPresence);
    this._flush();
  }

  _event(ev) {
    if (this.state !== "syncing" && this.state !== "live") return;
    if (ev.seq <= this.seq) return; // seen already: applied exactly once
    if (ev.seq !== this.seq + 1) {
      // A gap breaks the exactly-once promise: resume from what we have.
      this.client.dropConnection();
      return;
    }
    this._apply(ev);
    this.seq = ev.seq;
    this.applied.push({ seq: ev.seq, kind: ev.kind, id: ev.id, op_id: ev.op_id });
    if (this.applied.length > 1000) this.applied.splice(0, this.applied.length - 1000);
    const own = ev.op_id ? this.pending.find((op) => op.op_id === ev.op_id) : null;
    if (own) {
      resolveNext(this.pending, own, ev.version);
      this._settle(own);
    }
    emit(this, "event", { frame: ev });
    if (ev.entity === "generation") emit(this, "generation", { generation: this.confirmed.generation.get(ev.id) });
    this._save();
    if (this.state === "syncing") this._caughtUp("replay");
    else this._flush();
  }

  _apply(ev) {
    const verb = applyEvent(this.confirmed, ev);
    if (verb === null) return;
    if (verb === "deleted" && ev.entity === "project") {
      this.state = "idle";
      emit(this, "left", { reason: "project_deleted" });
    }
    this._changed(ev.entity, ev.id);
  }

  _presenceDiff(diff) {
    for (const cid of Object.keys(diff.leaves)) this.peers.delete(cid);
    for (const [cid, entry] of Object.entries(diff.joins)) {
      if (cid !== this.client.connectionId) this.peers.set(cid, entry);
    }
    emit(this, "presence", { peers: this.peers });
  }

  _changed(entity, id) {
    emit(this, "change", { entity, id, value: this.get(entity, id) });
  }

  // --- persistence (stored-projects.js) ----------------------------------------------

  _storageKey() {
    return storageKey(this.client.userId, this.id);
  }

  _load() {
    const storage = this.client.storage;
    this._loadedFor = this.client.userId;
    if (!storage || !this.client.userId) return;
    const saved = readStoredProject(storage, this._storageKey());
    if (!saved) return;
    this.seq = saved.seq;
    this.confirmed = stateFromStored(saved.state);
    this.pending = restorePending(saved.pending, this.pending);
  }

  /** Drop the stored copy (the project is gone or closed to this user). */
  _forget() {
    clearTimeout(this._saveTimer);
    removeStoredProject(this.client.storage, this._storageKey());
  }

  _save(now = false) {
    if (!this.client.storage || !this.client.userId) return;
    clearTimeout(this._saveTimer);
    const write = () => {
      if (this.seq === null && this.pending.length === 0) return;
      writeStoredProject(this.client.storage, this._storageKey(), this.seq, this.confirmed, this.pending);
    };
    if (now) write();
    else this._saveTimer = setTimeout(write, 250);
  }
}
