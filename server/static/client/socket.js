// Part of the Moodboard browser client (../moodboard-client.js): the socket, kept open.
//
// One WebSocket at a time, opened again after a full-jitter backoff whenever it
// closes (but for 4401, a session that is gone), not tried while the browser
// says it is offline, dropped when the browser goes offline or when a heartbeat
// finds the path silently dead. What the frames mean is the client's business.

/** Full-jitter exponential backoff: a random delay in [0, min(max, base * 2^attempt)). */
export function backoffDelay(attempt, baseMs, maxMs, random = Math.random) {
  return Math.floor(random() * Math.min(maxMs, baseMs * 2 ** attempt));
}

/**
 * A socket that reconnects until `stop()`.
 *
 * `settings` is read whenever a value is needed (so an app may change it between
 * connects): `url`, `backoffBaseMs`, `backoffMaxMs`, `heartbeatMs`. `hooks`:
 * `status(status)` ("connecting", "reconnecting", "offline"), `opened()`,
 * `frame(frame)` (each parsed frame), `closed(code, reason)` (every close, before any
 * retry is planned), `unauthorized(code, reason)` (closed 4401: no retry) and
 * `heartbeat()` (time to send an app-level ping).
 */
export class ReconnectingSocket {
  constructor(settings, hooks) {
    this.settings = settings;
    this.hooks = hooks;
    this.wanted = false;
    this._socket = null;
    this._attempt = 0;
    this._readyOnce = false;
    this._retryTimer = null;
    this._heartbeat = null;
    this._lastFrameAt = 0;
    this._onOnline = () => this._networkChanged(true);
    this._onOffline = () => this._networkChanged(false);
  }

  /** Start connecting (and keep reconnecting); false if already started. */
  start() {
    if (this.wanted) return false;
    this.wanted = true;
    globalThis.addEventListener?.("online", this._onOnline);
    globalThis.addEventListener?.("offline", this._onOffline);
    this._open();
    return true;
  }

  /** Stop reconnecting (the open socket stays until `drop`). */
  stop() {
    this.wanted = false;
    globalThis.removeEventListener?.("online", this._onOnline);
    globalThis.removeEventListener?.("offline", this._onOffline);
    clearTimeout(this._retryTimer);
  }

  /** The connection is authenticated and usable: the next failure starts the backoff afresh. */
  resetBackoff() {
    this._attempt = 0;
    this._readyOnce = true;
  }

  /** Send a frame as JSON if the socket is open; whether it was sent. */
  send(frame) {
    const socket = this._socket;
    if (!socket || socket.readyState !== 1) return false;
    socket.send(JSON.stringify(frame));
    return true;
  }

  /** Close the current socket with `code` (it reconnects if still wanted). */
  drop(code, reason) {
    const socket = this._socket;
    if (!socket) return;
    this._closed(code, reason);
    try {
      socket.close(code, reason);
    } catch {
      // already closing
    }
  }

  /** Ping every `heartbeatMs`; drop the socket when nothing came back for two beats. */
  startHeartbeat() {
    clearInterval(this._heartbeat);
    // Browsers answer the server's pings, but never notice a silently dead path:
    // a ping that gets no frame back within two beats means the socket is gone.
    this._heartbeat = setInterval(() => {
      if (Date.now() - this._lastFrameAt > 2 * this.settings.heartbeatMs) {
        this.drop(4000, "dropped by the client");
        return;
      }
      this.hooks.heartbeat();
    }, this.settings.heartbeatMs);
  }

  _online() {
    return globalThis.navigator?.onLine !== false;
  }

  _networkChanged(online) {
    if (!this.wanted) return;
    if (online) {
      clearTimeout(this._retryTimer);
      this._attempt = 0;
      if (!this._socket) this._open();
    } else {
      // A socket can outlive the network for a long time: drop it now, edits queue.
      this.drop(4000, "offline");
      this.hooks.status("offline");
    }
  }

  _open() {
    if (!this.wanted || this._socket) return;
    if (!this._online()) {
      this.hooks.status("offline");
      return;
    }
    this.hooks.status(this._attempt === 0 && !this._readyOnce ? "connecting" : "reconnecting");
    let socket;
    try {
      socket = new WebSocket(this.settings.url);
    } catch (err) {
      this._scheduleRetry();
      return;
    }
    this._socket = socket;
    socket.onopen = () => {
      this._lastFrameAt = Date.now();
      this.hooks.opened();
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
      this.hooks.frame(frame);
    };
    socket.onclose = (event) => {
      if (socket !== this._socket) return;
      this._closed(event.code, event.reason);
    };
  }

  _closed(code, reason) {
    this._socket = null;
    clearInterval(this._heartbeat);
    this.hooks.closed(code, reason);
    if (!this.wanted) return;
    if (code === 4401) {
      // The session is gone (logged out, expired, revoked): only a new sign-in helps.
      this.wanted = false;
      this.hooks.unauthorized(code, reason);
      return;
    }
    if (!this._online()) {
      this.hooks.status("offline");
      return;
    }
    this._scheduleRetry();
  }

  _scheduleRetry() {
    this.hooks.status("reconnecting");
    const delay = backoffDelay(this._attempt, this.settings.backoffBaseMs, this.settings.backoffMaxMs);
    this._attempt += 1;
    clearTimeout(this._retryTimer);
    this._retryTimer = setTimeout(() => this._open(), delay);
  }
}
