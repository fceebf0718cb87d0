// The project's history panel: who changed what, when, from GET /api/projects/{pid}/events
// (the same log the socket replays), newest first, followed live while it is open. An item
// can be restored to how it was right after any of its changes (or, for a deletion, right
// before it): a new edit, which the user can undo like any other.

import { ITEM_FIELDS, pick } from "/static/undo.js";

const SHOWN = 60; // the latest events listed
const PAGE = 1000; // the events endpoint's largest page

// Generation steps the worker takes: said without a "who".
const GENERATION_NEWS = {
  "generation.started": "A picture is being generated",
  "generation.succeeded": "A generated picture is ready",
  "generation.failed": "A generation failed",
};

const ENTITY_WORDS = { project: "the project", room: "a room", member: "a member", generation: "a generation" };
const ITEM_WORDS = { note: "a note", color: "a colour", image: "a picture", asset: "a picture", generation: "a generated picture" };

function describeItemUpdate(fields) {
  if (fields.includes("data")) return "edited";
  if (fields.includes("room_id")) return "moved to another room";
  if (fields.includes("w") || fields.includes("h")) return "resized";
  if (fields.includes("x") || fields.includes("y")) return "moved";
  if (fields.includes("z")) return "brought forward";
  return "changed";
}

function when(at) {
  const time = new Date(at);
  if (Number.isNaN(time.getTime())) return "";
  const seconds = Math.round((Date.now() - time.getTime()) / 1000);
  if (seconds < 45) return "just now";
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  return time.toLocaleString([], { dateStyle: "short", timeStyle: "short" });
}

/**
 * `app`: `client`, `handle()`, `me()`, `undo()` (the UndoHistory), `canEdit()`, `el`,
 * `notify(message, options)`, `colourFor(userId)`.
 */
export class HistoryPanel {
  constructor(app) {
    this.app = app;
    this.list = document.getElementById("history");
    this.toggle = document.getElementById("history-toggle");
    this.events = []; // oldest first
    this.itemKinds = new Map(); // item id -> kind, from the events seen
    this.open = false;
    this.toggle.addEventListener("click", () => (this.open ? this.close() : this.show()));
  }

  /** The project changed (opened, closed): start over, closed. */
  reset() {
    this.close();
  }

  close() {
    this.open = false;
    this.events = [];
    this.list.replaceChildren();
    this.list.hidden = true;
    this.toggle.textContent = "Show history";
    this.toggle.setAttribute("aria-expanded", "false");
  }

  async show() {
    const handle = this.app.handle();
    if (!handle) return;
    this.open = true;
    this.list.hidden = false;
    this.toggle.textContent = "Hide history";
    this.toggle.setAttribute("aria-expanded", "true");
    this.list.replaceChildren(this.app.el("li", { class: "muted", text: "Loading…" }));
    try {
      const after = Math.max(0, (handle.seq ?? 0) - SHOWN);
      const page = await this.app.client.api("GET", `/projects/${handle.id}/events?after=${after}&limit=${SHOWN}`);
      if (!this.open || this.app.handle() !== handle) return;
      const seen = new Set(this.events.map((e) => e.seq));
      this.events = [...page.events.filter((e) => !seen.has(e.seq)), ...this.events].sort((a, b) => a.seq - b.seq);
    } catch (err) {
      this.app.notify(`The history could not be loaded: ${err.message}`, { kind: "error" });
    }
    this.render();
  }

  /** A live event of the open project (the handle's `event`). */
  applied(frame) {
    if (frame.entity === "item" && frame.data?.kind) this.itemKinds.set(frame.id, frame.data.kind);
    if (!this.open) return;
    this.events.push(frame);
    if (this.events.length > SHOWN * 2) this.events.splice(0, this.events.length - SHOWN);
    this.render();
  }

  who(actorId) {
    if (!actorId) return "Someone outside the app";
    if (actorId === this.app.me()?.id) return "You";
    return this.app.handle()?.confirmed.member.get(actorId)?.name ?? "A former member";
  }

  what(event) {
    const verb = event.kind.slice(event.kind.indexOf(".") + 1);
    if (event.entity === "item") {
      const kind = event.data?.kind ?? this.itemKinds.get(event.id) ?? this.app.handle()?.get("item", event.id)?.kind;
      const noun = ITEM_WORDS[kind] ?? "an item";
      if (verb === "created") return `added ${noun}`;
      if (verb === "deleted") return `deleted ${noun}`;
      return `${describeItemUpdate(Object.keys(event.data ?? {}))} ${noun}`;
    }
    if (event.entity === "generation") return verb === "queued" ? "asked for a generated picture" : "canceled a generation";
    const noun = ENTITY_WORDS[event.entity] ?? event.entity;
    return `${{ created: "added", updated: "changed", deleted: "removed" }[verb] ?? verb} ${noun}`;
  }

  render() {
    const { el } = this.app;
    const rows = this.events
      .filter((e) => e.kind !== "generation.progress")
      .slice(-SHOWN)
      .reverse()
      .map((event) => {
        const row = el(
          "li",
          { class: "history-entry", "data-testid": "history-entry", "data-seq": String(event.seq), "data-kind": event.kind },
          el("span", { class: "dot", style: `background:${this.app.colourFor(event.actor_id ?? "")}` }),
          el("span", { class: "history-what", text: GENERATION_NEWS[event.kind] ?? `${this.who(event.actor_id)} ${this.what(event)}` }),
          el("time", { class: "history-when", datetime: event.at, title: event.at, text: when(event.at) }),
        );
        if (event.entity === "item" && this.app.canEdit()) {
          const label = event.kind === "item.deleted" ? "Bring back" : "Restore";
          row.append(
            el("button", {
              class: "link history-restore",
              "data-testid": "history-restore",
              title: event.kind === "item.deleted" ? "Put it back as it was before it was deleted" : "Set the item back to how it was after this change",
              text: label,
              onclick: () => this.restore(event),
            }),
          );
        }
        return row;
      });
    this.list.replaceChildren(...rows);
    if (!rows.length) this.list.append(el("li", { class: "muted", text: "No changes yet." }));
  }

  /** The item as it was right after event `seq` (null: it did not exist then). */
  async itemAt(itemId, seq) {
    const handle = this.app.handle();
    let state = null;
    let after = 0;
    let first = true;
    while (after < seq) {
      const limit = Math.min(PAGE, seq - after);
      const page = await this.app.client.api("GET", `/projects/${handle.id}/events?after=${after}&limit=${limit}`);
      if (first && page.events.length && page.events[0].seq !== 1) {
        throw new Error("the log no longer holds the item's whole history");
      }
      first = false;
      if (!page.events.length) break;
      for (const event of page.events) {
        if (event.seq > seq) break;
        if (event.entity !== "item" || event.id !== itemId) continue;
        const verb = event.kind.slice(event.kind.indexOf(".") + 1);
        if (verb === "created") state = { ...event.data };
        else if (verb === "deleted") state = null;
        else if (state) state = { ...state, ...event.data };
      }
      after = page.events[page.events.length - 1].seq;
    }
    return state;
  }

  async restore(event) {
    const handle = this.app.handle();
    const undo = this.app.undo();
    if (!handle || !undo) return;
    // A deleted item comes back as it was just before; any other, as after this change.
    const seq = event.kind === "item.deleted" ? event.seq - 1 : event.seq;
    let then;
    try {
      then = await this.itemAt(event.id, seq);
    } catch (err) {
      this.app.notify(`Cannot restore: ${err.message}.`, { kind: "error" });
      return;
    }
    if (this.app.handle() !== handle) return;
    if (!then) {
      this.app.notify("Cannot restore: the item did not exist at that point.", { kind: "error" });
      return;
    }
    if (then.room_id && !handle.get("room", then.room_id)) {
      this.app.notify("Cannot restore: its room was deleted.", { kind: "error" });
      return;
    }
    const wanted = pick(then, ITEM_FIELDS);
    const now = handle.get("item", event.id);
    if (!now) {
      undo.create("item", wanted, { id: event.id, intent: "restore" });
      this.app.notify("Brought back.", { kind: "info", timeoutMs: 4000 });
      return;
    }
    const fields = {};
    for (const [field, value] of Object.entries(wanted)) {
      if (field !== "kind" && JSON.stringify(now[field]) !== JSON.stringify(value)) fields[field] = value;
    }
    if (!Object.keys(fields).length) {
      this.app.notify("It is already like that.", { kind: "info", timeoutMs: 4000 });
      return;
    }
    undo.update("item", event.id, fields, { baseVersion: now.version || undefined, intent: "restore" });
    this.app.notify("Restored.", { kind: "info", timeoutMs: 4000 });
  }
}
