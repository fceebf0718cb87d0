// Moodboard browser client: one socket, any number of projects (docs/protocol.md §3).
//
// A dependency-free ES module, and the client's entry point: import it from here. It
// keeps, per project, the confirmed state (what the server's event log says, applied
// exactly once in seq order) and the user's pending operations (optimistic edits not
// yet confirmed). What an app renders is the view: confirmed state with the pending
// operations applied on top. See docs/browser-client.md for the API and the guarantees.
//
// Its parts live in ./client/ (relative imports: copy this file and that folder
// together): rest.js (REST, ApiError), socket.js (reconnect, backoff, heartbeat),
// project-handle.js (a project's handle) with confirmed-state.js, pending-ops.js,
// conflicts.js, presence-throttle.js and stored-projects.js (localStorage).

import { emit } from "./client/emit.js";
import { ProjectHandle } from "./client/project-handle.js";
import { restRequest } from "./client/rest.js";
import { ReconnectingSocket } from "./client/socket.js";
import { forgetStoredUser } from "./client/stored-projects.js";

export { REAPPLY_FIELDS } from "./client/conflicts.js";
export { ProjectHandle } from "./client/project-handle.js";
export { ApiError } from "./client/rest.js";
export { backoffDelay } from "./client/socket.js";
export { uuid4 } from "./client/uuid.js";

export const PROTOCOL = 1;

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
    this._refs = 0;
    // The socket reads url, backoff and heartbeat from this client when it needs them.
    this._connection = new ReconnectingSocket(this, {
      status: (status) => this._setStatus(status),
      opened: () => {
        if (this.token) this._send({ type: "auth", token: this.token });
      },
      frame: (frame) => this._frame(frame),
      closed: () => {
        this.connectionId = null;
        for (const project of this.projects.values()) project._disconnected();
      },
      unauthorized: (code, reason) => {
        this._setStatus("unauthorized");
        emit(this, "unauthorized", { code, reason });
      },
      heartbeat: () => this._send({ type: "ping", ref: this._ref("p") }),
    });
    // Stored state is written a moment after changes; a closing page writes it now.
    this._onPageHide = () => {
      for (const project of this.projects.values()) project._save(true);
    };
  }

  // --- connection --------------------------------------------------------------------

  /** Start (or keep) a connection; reconnects by itself until `close()`. */
  connect() {
    if (this._connection.wanted) return;
    globalThis.addEventListener?.("pagehide", this._onPageHide);
    this._connection.start();
  }

  /** Close for good (no reconnect). Pending edits stay stored for the next session. */
  close() {
    this._connection.stop();
    globalThis.removeEventListener?.("pagehide", this._onPageHide);
    for (const project of this.projects.values()) project._save(true);
    this._connection.drop(1000, "client closed");
    this._setStatus("closed");
  }

  /** Erase what this browser stored for the user (call on an explicit log out). */
  forgetUser(userId = this.userId) {
    forgetStoredUser(this.storage, userId);
  }

  /** Use a fresh token (same user): sent as `auth` on the open socket, and on every reconnect. */
  setToken(token) {
    this.token = token;
    this._send({ type: "auth", token });
  }

  /** Drop the current socket as if the network failed (it reconnects): for tests and debugging. */
  dropConnection() {
    this._connection.drop(4000, "dropped by the client");
  }

  _setStatus(status) {
    if (this.status === status) return;
    this.status = status;
    emit(this, "status", { status });
  }

  _send(frame) {
    return this._connection.send(frame);
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
        this._connection.resetBackoff();
        this._setStatus("live");
        this._connection.startHeartbeat();
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

  // --- REST (client/rest.js) ---------------------------------------------------------

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
    return restRequest({ apiBase: this.apiBase, token: this.token }, method, path, body, contentType);
  }

  /** Request a generation in a room (REST; its progress comes as generation.* events). */
  generate(projectId, roomId, prompt, params) {
    const body = { room_id: roomId, prompt };
    if (params) body.params = params;
    return this.api("POST", `/projects/${projectId}/generations`, body);
  }
}
