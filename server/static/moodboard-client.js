// Moodboard browser client: one socket, any number of projects (docs/protocol.md §3).
//
// A dependency-free ES module. It keeps, per project, the confirmed state (what
// the server's event log says, applied exactly once in seq order) and the
// user's pending operations (optimistic edits not yet confirmed). What an app
// renders is the view: confirmed state with the pending operations applied on
// top. See docs/browser-client.md for the API and the guarantees.

export const PROTOCOL = 1;

// Fields whose concurrent change we settle by re-applying the user's value on
// top of the current entity: where a thing sits, how big it is, its tab order.
// A conflict on any other field (a note's text, a name) keeps the other
// person's value and tells the app, which shows what the user had typed.
export const REAPPLY_FIELDS = new Set(["x", "y", "w", "h", "rotation", "z", "position", "room_id"]);

const ENTITIES = ["project", "room", "item", "member", "generation"];
const STORAGE_PREFIX = "moodboard.v1";

/** A random UUID (crypto.randomUUID needs a secure context; getRandomValues does not). */
export function uuid4() {
  if (globalThis.crypto && typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Full-jitter exponential backoff: a random delay in [0, min(max, base * 2^attempt)). */
export function backoffDelay(attempt, baseMs, maxMs, random = Math.random) {
  return Math.floor(random() * Math.min(maxMs, baseMs * 2 ** attempt));
}

function emit(target, type, detail) {
  target.dispatchEvent(new CustomEvent(type, { detail }));
}

/** An error answered by the REST API (RFC 9457 problem details). */
export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.code = problem && problem.code;
    this.problem = problem;
  }
}

/**
 * The connection: authenticates, reconnects with backoff, routes frames to projects.
 *
 * Events: `status` {status: "connecting"|"live"|"reconnecting"|"offline"|"unauthorized"|"closed"},
 * `ready` {user, connection_id}, `unauthorized` {}, `error` {code, message}.
 */
export class MoodboardClient extends EventTarget {
  constructor(options = {}) {
    super();
    const loc = globalThis.location;
    this.url =
      options.url || (loc ? `${loc.protocol === "https:" ? "wss:" : "ws:"}//${loc.host}/ws` : null);
    this.apiBase = options.apiBase ?? "";
    this.token = options.token || null; // null: the session cookie authenticates
    this.userId = options.userId || null;
    this.storage = options.storage === undefined ? globalThis.localStorage ?? null : options.storage;
    this.backoffBaseMs = options.backoffBaseMs ?? 500;
    this.backoffMaxMs = options.backoffMaxMs ?? 15000;
    this.presenceIntervalMs = options.presenceIntervalMs ?? 60;
    this.heartbeatMs = options.heartbeatMs ?? 15000;
    this.status = "closed";
    this.user = null;
    this.connectionId = null;
    this.projects = new Map();
    this._socket = null;
    this._wanted = false;
    this._attempt = 0;
    this._retryTimer = null;
    this._heartbeat = null;
    this._lastFrameAt = 0;
    this._refs = 0;
    this._onOnline = () => this._networkChanged(true);
    this._onOffline = () => this._networkChanged(false);
    // Stored state is written a moment after changes; a closing page writes it now.
    this._onPageHide = () => {
      for (const project of this.projects.values()) project._save(true);
    };
  }

  // --- connection --------------------------------------------------------------------

  /** Start (or keep) a connection; reconnects by itself until `close()`. */
  connect() {
    if (this._wanted) return;
    this._wanted = true;
    globalThis.addEventListener?.("online", this._onOnline);
    globalThis.addEventListener?.("offline", this._onOffline);
    globalThis.addEventListener?.("pagehide", this._onPageHide);
    this._open();
  }

  /** Close for good (no reconnect). Pending edits stay stored for the next session. */
  close() {
    this._wanted = false;
    globalThis.removeEventListener?.("online", this._onOnline);
    globalThis.removeEventListener?.("offline", this._onOffline);
    globalThis.removeEventListener?.("pagehide", this._onPageHide);
    clearTimeout(this._retryTimer);
    for (const project of this.projects.values()) project._save(true);
    this._drop(1000, "client closed");
    this._setStatus("closed");
  }

  /** Erase what this browser stored for the user (call on an explicit log out). */
  forgetUser(userId = this.userId) {
    const storage = this.storage;
    if (!storage || !userId) return;
    const prefix = `${STORAGE_PREFIX}.${userId}.`;
    const keys = [];
    for (let i = 0; i < storage.length; i += 1) {
      const key = storage.key(i);
      if (key && key.startsWith(prefix)) keys.push(key);
    }
    for (const key of keys) storage.removeItem(key);
  }

  /** Use a fresh token (same user): sent as `auth` on the open socket, and on every reconnect. */
  setToken(token) {
    this.token = token;
    this._send({ type: "auth", token });
  }

  /** Drop the current socket as if the network failed (it reconnects): for tests and debugging. */
  dropConnection() {
    this._drop(4000, "dropped by the client");
  }

  _online() {
    return globalThis.navigator?.onLine !== false;
  }

  _networkChanged(online) {
    if (!this._wanted) return;
    if (online) {
      clearTimeout(this._retryTimer);
      this._attempt = 0;
      if (!this._socket) this._open();
    } else {
      // A socket can outlive the network for a long time: drop it now, edits queue.
      this._drop(4000, "offline");
      this._setStatus("offline");
    }
  }

  _setStatus(status) {
    if (this.status === status) return;
    this.status = status;
    emit(this, "status", { status });
  }

  _open() {
    if (!this._wanted || this._socket) return;
    if (!this._online()) {
      this._setStatus("offline");
      return;
    }
    this._setStatus(this._attempt === 0 && this.user === null ? "connecting" : "reconnecting");
    let socket;
    try {
      socket = new WebSocket(this.url);
    } catch (err) {
      this._scheduleRetry();
      return;
    }
    this._socket = socket;
    socket.onopen = () => {
      this._lastFrameAt = Date.now();
      if (this.token) this._send({ type: "auth", token: this.token });
    };
    socket.onmessage = (message) => {
      if (socket !== this._socket) return;
      this._lastFrameAt = Date.now();
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return;
      }
      this._frame(frame);
    };
    socket.onclose = (event) => {
      if (socket !== this._socket) return;
      this._closed(event.code, event.reason);
    };
  }

  _drop(code, reason) {
    const socket = this._socket;
    if (!socket) return;
    this._closed(code, reason);
    try {
      socket.close(code, reason);
    } catch {
      // already closing
    }
  }

  _closed(code, reason) {
    this._socket = null;
    this.connectionId = null;
    clearInterval(this._heartbeat);
    for (const project of this.projects.values()) project._disconnected();
    if (!this._wanted) return;
    if (code === 4401) {
      // The session is gone (logged out, expired, revoked): only a new sign-in helps.
      this._wanted = false;
      this._setStatus("unauthorized");
      emit(this, "unauthorized", { code, reason });
      return;
    }
    if (!this._online()) {
      this._setStatus("offline");
      return;
    }
    this._scheduleRetry();
  }

  _scheduleRetry() {
    this._setStatus("reconnecting");
    const delay = backoffDelay(this._attempt, this.backoffBaseMs, this.backoffMaxMs);
    this._attempt += 1;
    clearTimeout(this._retryTimer);
    this._retryTimer = setTimeout(() => this._open(), delay);
  }

  _send(frame) {
    const socket = this._socket;
    if (!socket || socket.readyState !== 1) return false;
    socket.send(JSON.stringify(frame));
    return true;
  }

  _ref(prefix) {
    this._refs += 1;
    return `${prefix}${this._refs}`;
  }

  _frame(frame) {
    switch (frame.type) {
      case "ready":
        this.user = frame.user;
        this.userId = frame.user.id;
        this.connectionId = frame.connection_id;
        this._attempt = 0;
        this._setStatus("live");
        this._startHeartbeat();
        emit(this, "ready", { user: frame.user, connection_id: frame.connection_id });
        for (const project of this.projects.values()) project._join();
        return;
      case "pong":
        return;
      case "error":
        if (frame.ref && this._routeRef(frame)) return;
        emit(this, "error", { code: frame.code, message: frame.message });
        return;
      case "ack":
      case "conflict":
        this._routeRef(frame);
        return;
      default: {
        const project = this.projects.get(frame.project_id);
        if (project) project._frame(frame);
      }
    }
  }

  _routeRef(frame) {
    for (const project of this.projects.values()) if (project._owns(frame)) return true;
    return false;
  }

  _startHeartbeat() {
    clearInterval(this._heartbeat);
    // Browsers answer the server's pings, but never notice a silently dead path:
    // a ping that gets no frame back within two beats means the socket is gone.
    this._heartbeat = setInterval(() => {
      if (Date.now() - this._lastFrameAt > 2 * this.heartbeatMs) {
        this.dropConnection();
        return;
      }
      this._send({ type: "ping", ref: this._ref("p") });
    }, this.heartbeatMs);
  }

  // --- projects ----------------------------------------------------------------------

  /** The project's handle (an EventTarget); joins it now or as soon as the socket is ready. */
  project(projectId) {
    let project = this.projects.get(projectId);
    if (!project) {
      project = new ProjectHandle(this, projectId);
      this.projects.set(projectId, project);
      if (this.connectionId) project._join();
    }
    return project;
  }

  /** Leave a project and forget its handle (its stored state stays for the next visit). */
  leave(projectId) {
    const project = this.projects.get(projectId);
    if (!project) return;
    project._save(true);
    if (project.state !== "idle") this._send({ type: "leave", ref: this._ref("l"), project_id: projectId });
    project._presence.cancel();
    this.projects.delete(projectId);
  }

  // --- REST --------------------------------------------------------------------------

  /** A REST call under /api: the parsed JSON (null for 204), or throws ApiError. */
  async api(method, path, body) {
    if (body === undefined) return this._request(method, path, undefined, null);
    return this._request(method, path, JSON.stringify(body), "application/json");
  }

  /**
   * Upload a picture (a File or Blob of type image/png, jpeg, webp or gif) as a resource of
   * the project: `{id, content_type, size, sha256, url}`, or throws ApiError (403 viewer,
   * 413 too large or over the project's storage quota, 415 not one of those pictures).
   */
  upload(projectId, file) {
    return this._request("POST", `/projects/${projectId}/resources`, file, file.type || "application/octet-stream");
  }

  async _request(method, path, body, contentType) {
    const headers = { Accept: "application/json" };
    if (contentType) headers["Content-Type"] = contentType;
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    const response = await fetch(`${this.apiBase}/api${path}`, { method, headers, body, credentials: "same-origin" });
    const text = await response.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = { detail: `HTTP ${response.status}` }; // a proxy's page, say
    }
    if (!response.ok) throw new ApiError(response.status, json);
    return json;
  }

  /** Request a generation in a room (REST; its progress comes as generation.* events). */
  generate(projectId, roomId, prompt, params) {
    const body = { room_id: roomId, prompt };
    if (params) body.params = params;
    return this.api("POST", `/projects/${projectId}/generations`, body);
  }
}

/** Sends the latest state at most once per interval (the last call always goes out). */
class Throttle {
  constructor(intervalMs, send) {
    this.intervalMs = intervalMs;
    this.sendFn = send;
    this.last = 0;
    this.timer = null;
    this.value = undefined;
  }
  push(value) {
    this.value = value;
    if (this.timer) return;
    const wait = this.last + this.intervalMs - Date.now();
    if (wait <= 0) this.flush();
    else this.timer = setTimeout(() => this.flush(), wait);
  }
  flush() {
    this.timer = null;
    if (this.value === undefined) return;
    this.last = Date.now();
    const value = this.value;
    this.value = undefined;
    this.sendFn(value);
  }
  cancel() {
    clearTimeout(this.timer);
    this.timer = null;
    this.value = undefined;
  }
}

function emptyState() {
  return Object.fromEntries(ENTITIES.map((e) => [e, new Map()]));
}

function keyOf(entity, id) {
  return `${entity}:${id}`;
}

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
    const key = keyOf(entity, id);
    let value = this.confirmed[entity].get(id) ?? null;
    for (const op of this.pending) {
      if (op.key !== key) continue;
      if (op.action === "delete") value = null;
      else if (op.action === "create") value = { ...(value ?? {}), ...op.data, id, version: 0 };
      else if (value) value = { ...value, ...op.data };
    }
    return value;
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
    // Several unsent changes to one entity travel as one (the latest values win). Never
    // into an op sent before: if it was applied, its op_id stands for what it was then.
    const mergeable = last && last.status === "queued" && !last.sentOnce && last.reapply === reapply;
    if (mergeable && action === "update" && last.action !== "delete") {
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
    this.pending.push({
      op_id: uuid4(),
      // What the user saw when deleting: a conflict compares it with the current entity.
      seen: action === "delete" ? this.get(entity, id) : null,
      key,
      action,
      entity,
      id,
      data,
      base_version: baseVersion,
      reapply,
      intent,
      status: "queued", // queued -> sent -> acked (until its event arrives)
      sentOnce: false,
      ref: null,
      version: null,
      seq: null,
    });
    this._changed(entity, id);
    this._save();
    this._flush();
  }

  /** Send every op that may go now: live, and not waiting on an earlier op of its entity. */
  _flush() {
    if (this.state !== "live") return;
    const busy = new Set();
    for (const op of this.pending) {
      if (op.status === "queued" && !busy.has(op.key) && op.base_version !== null) this._sendOp(op);
      if (op.status !== "acked") busy.add(op.key);
    }
  }

  _sendOp(op) {
    const frame = {
      type: "edit",
      ref: this.client._ref("e"),
      project_id: this.id,
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
    if (this.client._send(frame)) {
      op.status = "sent";
      op.sentOnce = true;
      op.ref = frame.ref;
    }
  }

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
    this._resolveNext(op, ack.version);
    if (this.seq !== null && ack.seq <= this.seq) this._settle(op); // its event came first
    this._flush();
  }

  /** The next pending op on the same entity was made on top of this one's result. */
  _resolveNext(op, version) {
    const next = this.pending.find((o) => o !== op && o.key === op.key && o.base_version === null);
    if (next && version !== null) next.base_version = version;
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
    const drop = (resolution) => {
      this._release(op, current ? conflict.current_version : null);
      emit(this, "conflict", { ...detail, resolution });
    };
    const retry = (data, resolution) => {
      // A new operation: the server answers a repeated op_id with its first outcome.
      op.op_id = uuid4();
      op.sentOnce = false;
      op.data = data;
      op.base_version = conflict.current_version;
      op.status = "queued";
      op.ref = null;
      emit(this, "conflict", { ...detail, resolution });
    };

    if (op.action === "delete") {
      if (!current) drop("already_deleted");
      else if (op.reapply !== false && this._onlyPlacementChanged(op.seen ?? before, current)) retry(null, "reapplied");
      else drop("kept_theirs");
    } else if (op.action === "update" && current) {
      const contested = conflict.fields.filter((f) => op.reapply === false || !REAPPLY_FIELDS.has(f));
      const roomGone = op.data.room_id && !this.get("room", op.data.room_id);
      const data = { ...op.data };
      for (const f of contested) delete data[f];
      if (roomGone) delete data.room_id;
      if (contested.length === 0 && !roomGone) retry(data, "reapplied");
      else if (Object.keys(data).length > 0) retry(data, "partly_reapplied");
      else drop("kept_theirs");
    } else {
      drop(current ? "kept_theirs" : "deleted_by_others");
    }
    this._changed(entity, id);
    this._save();
    this._flush();
  }

  /** A delete re-applies when someone only moved or resized the thing meanwhile. */
  _onlyPlacementChanged(before, current) {
    if (!before) return false;
    for (const [field, value] of Object.entries(current)) {
      if (field === "version" || REAPPLY_FIELDS.has(field)) continue;
      if (JSON.stringify(value) !== JSON.stringify(before[field])) return false;
    }
    return true;
  }

  /**
   * Forget an op the server did not apply. The next op on its entity was made on
   * top of it: it now builds on `version` (the entity as it is), or goes too when
   * the entity is gone.
   */
  _release(op, version) {
    const index = this.pending.indexOf(op);
    if (index >= 0) this.pending.splice(index, 1);
    const exists = version !== null || this.confirmed[op.entity].has(op.id);
    if (!exists) {
      this.pending = this.pending.filter((o) => o.key !== op.key || o.action === "create");
      return;
    }
    this._resolveNext(op, version ?? this.confirmed[op.entity].get(op.id).version);
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
      const before = this._allKeys();
      this.confirmed = emptyState();
      const snap = frame.snapshot;
      this.confirmed.project.set(snap.project.id, snap.project);
      for (const room of snap.rooms) this.confirmed.room.set(room.id, room);
      for (const item of snap.items) this.confirmed.item.set(item.id, item);
      for (const gen of snap.generations) this.confirmed.generation.set(gen.id, gen);
      for (const m of snap.members) this.confirmed.member.set(m.user_id ?? m.id, m);
      this.seq = frame.seq;
      // Acked ops whose events the snapshot already holds are settled.
      for (const op of this.pending.filter((o) => o.status === "acked" && o.seq <= this.seq)) {
        this._resolveNext(op, op.version);
        this.pending.splice(this.pending.indexOf(op), 1);
      }
      for (const key of new Set([...before, ...this._allKeys()])) {
        const [entity, id] = key.split(/:(.*)/s);
        this._changed(entity, id);
      }
    }
    this._target = frame.seq;
    this.state = "syncing";
    this._caughtUp(frame.mode);
  }

  _allKeys() {
    const keys = [];
    for (const entity of ENTITIES) for (const id of this.confirmed[entity].keys()) keys.push(keyOf(entity, id));
    return keys;
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
      this._resolveNext(own, ev.version);
      this._settle(own);
    }
    emit(this, "event", { frame: ev });
    if (ev.entity === "generation") emit(this, "generation", { generation: this.confirmed.generation.get(ev.id) });
    this._save();
    if (this.state === "syncing") this._caughtUp("replay");
    else this._flush();
  }

  _apply(ev) {
    const table = this.confirmed[ev.entity];
    if (!table) return;
    const verb = ev.kind.slice(ev.kind.indexOf(".") + 1);
    if (verb === "deleted") {
      table.delete(ev.id);
      if (ev.entity === "project") {
        this.state = "idle";
        emit(this, "left", { reason: "project_deleted" });
      }
    } else if (verb === "updated") {
      const current = table.get(ev.id);
      const next = { ...(current ?? { id: ev.id }), ...ev.data };
      if (ev.version !== null && ev.version !== undefined) next.version = ev.version;
      table.set(ev.id, next);
    } else {
      // created, and every generation kind: the whole entity
      table.set(ev.id, { ...ev.data });
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

  // --- persistence (localStorage) ----------------------------------------------------

  _storageKey() {
    return `${STORAGE_PREFIX}.${this.client.userId ?? "anon"}.${this.id}`;
  }

  _load() {
    const storage = this.client.storage;
    this._loadedFor = this.client.userId;
    if (!storage || !this.client.userId) return;
    let saved;
    try {
      saved = JSON.parse(storage.getItem(this._storageKey()) ?? "null");
    } catch {
      saved = null;
    }
    if (!saved || typeof saved.seq !== "number") return;
    this.seq = saved.seq;
    this.confirmed = emptyState();
    for (const entity of ENTITIES) for (const value of saved.state[entity] ?? []) this.confirmed[entity].set(value.id ?? value.user_id, value);
    const known = new Set(this.pending.map((op) => op.op_id));
    const restored = (saved.pending ?? []).filter((op) => !known.has(op.op_id));
    for (const op of restored) op.status = op.status === "acked" ? "acked" : "queued";
    this.pending = [...restored, ...this.pending];
  }

  /** Drop the stored copy (the project is gone or closed to this user). */
  _forget() {
    clearTimeout(this._saveTimer);
    try {
      this.client.storage?.removeItem(this._storageKey());
    } catch {
      // nothing stored, or storage disabled
    }
  }

  _save(now = false) {
    if (!this.client.storage || !this.client.userId) return;
    clearTimeout(this._saveTimer);
    const write = () => {
      if (this.seq === null && this.pending.length === 0) return;
      const state = {};
      for (const entity of ENTITIES) state[entity] = [...this.confirmed[entity].values()];
      const pending = this.pending.map((op) => ({ ...op, ref: null }));
      try {
        this.client.storage.setItem(this._storageKey(), JSON.stringify({ seq: this.seq, state, pending }));
      } catch {
        // Storage full or disabled: the session still works, it just starts from a snapshot.
      }
    };
    if (now) write();
    else this._saveTimer = setTimeout(write, 250);
  }
}
