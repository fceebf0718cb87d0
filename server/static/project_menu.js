// Renaming and deleting the open project and its rooms (deletes ask first), and the account's
// corner of the page: exporting my data, the credit balance beside Generate and what a
// generation costs.

import { ApiError } from "/static/moodboard-client.js";

const $ = (id) => document.getElementById(id);

/** Swap `target` for a text field holding `current`; Enter or leaving it saves, Escape cancels. */
function renameInline(el, target, current, save) {
  const input = el("input", { class: "rename-input", "data-testid": "rename-input", maxlength: "200", "aria-label": "New name" });
  input.value = current;
  target.hidden = true;
  target.after(input);
  input.focus();
  input.select();
  let done = false;
  const finish = (keep) => {
    if (done) return;
    done = true;
    const name = input.value.trim();
    input.remove();
    target.hidden = false;
    if (keep && name && name !== current) save(name);
  };
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      finish(true);
    } else if (e.key === "Escape") finish(false);
  });
  input.addEventListener("blur", () => finish(true));
}

/**
 * `app`: `client`, `el`, `notify(message, options)`, `problem(err)`, `handle()`, `roomId()`,
 * `myRole()`.
 */
export class ProjectMenu {
  constructor(app) {
    this.app = app;
    $("project-rename").addEventListener("click", () => this.renameProject());
    $("project-delete").addEventListener("click", () => this.deleteProject());
    $("room-rename").addEventListener("click", () => this.renameRoom());
    $("room-delete").addEventListener("click", () => this.deleteRoom());
  }

  /** Show what the user's role allows on the open project and room. */
  render() {
    const handle = this.app.handle();
    const role = this.app.myRole();
    $("project-delete").hidden = role !== "owner";
    $("room-actions").hidden = !handle || !this.app.roomId() || role === "viewer";
  }

  renameProject() {
    const handle = this.app.handle();
    const project = handle?.project;
    if (!project) return;
    renameInline(this.app.el, $("project-name"), project.name, (name) =>
      handle.update("project", project.id, { name }, { baseVersion: project.version || undefined }),
    );
  }

  async deleteProject() {
    const handle = this.app.handle();
    const project = handle?.project;
    if (!project) return;
    const rooms = handle.list("room").length;
    const question = `Delete “${project.name}” for everyone, with its ${rooms} room${rooms === 1 ? "" : "s"} and their boards? This cannot be undone.`;
    if (!window.confirm(question)) return;
    try {
      await this.app.client.api("DELETE", `/projects/${project.id}`);
      this.app.notify(`“${project.name}” was deleted.`);
      location.hash = "#/";
    } catch (err) {
      this.app.notify(this.app.problem(err), { kind: "error" });
    }
  }

  renameRoom() {
    const handle = this.app.handle();
    const room = handle?.get("room", this.app.roomId());
    const tab = document.querySelector(".room-tab.active");
    if (!room || !tab) return;
    renameInline(this.app.el, tab, room.name, (name) =>
      handle.update("room", room.id, { name }, { baseVersion: room.version || undefined }),
    );
  }

  deleteRoom() {
    const handle = this.app.handle();
    const room = handle?.get("room", this.app.roomId());
    if (!room) return;
    const items = handle.list("item", (i) => i.room_id === room.id).length;
    const what = items ? ` and the ${items} thing${items === 1 ? "" : "s"} on its board` : "";
    if (!window.confirm(`Delete the room “${room.name}”${what} for everyone?`)) return;
    handle.remove("room", room.id, { baseVersion: room.version || undefined });
    location.hash = `#/p/${handle.id}`;
  }
}

/**
 * The credits beside Generate, kept current: read from GET /api/me when a project opens and
 * whenever one of the user's generations is queued or ends (a failure or a cancel refunds).
 * `app`: `client`, `me()`.
 */
export class Credits {
  constructor(app) {
    this.app = app;
    this.statuses = new Map(); // generation id -> the status last seen
    this.refreshing = null;
  }

  reset() {
    this.statuses.clear();
  }

  async refresh() {
    if (this.refreshing) return this.refreshing;
    this.refreshing = (async () => {
      try {
        const me = await this.app.client.api("GET", "/me");
        this.show(me.credits, me.generation_cost);
      } catch {
        // the balance stays as last shown; a signed-out page is handled elsewhere
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  show(credits, cost) {
    const node = $("credits");
    const short = cost > 0 && credits < cost;
    node.dataset.credits = String(credits);
    node.classList.toggle("short", short);
    const costText = cost > 0 ? `${cost} per picture` : "pictures are free";
    node.replaceChildren(`${credits} credits`, Object.assign(document.createElement("span"), { className: "cost", textContent: costText }));
    node.title = short
      ? `A picture costs ${cost} credits; you have ${credits}. Ask an administrator for more.`
      : "Your balance. A generation that fails or is canceled gives its credits back.";
  }

  /** A generation changed: one of mine that was queued or ended moves the balance. */
  generationChanged(gen) {
    if (!gen || gen.requested_by !== this.app.me()?.id) return;
    const was = this.statuses.get(gen.id);
    this.statuses.set(gen.id, gen.status);
    if (was === gen.status) return;
    if (was === undefined || ["failed", "canceled"].includes(gen.status)) this.refresh();
  }
}

/** "Export my data": everything the server keeps about the user, saved as a JSON file. */
export function installExport({ client, notify, problem }) {
  $("export-data").addEventListener("click", async () => {
    let data;
    try {
      data = await client.api("GET", "/me/export");
    } catch (err) {
      notify(err instanceof ApiError ? problem(err) : "The server could not be reached.", { kind: "error" });
      return;
    }
    const blob = new Blob([JSON.stringify(data, null, 2)], { type: "application/json" });
    const url = URL.createObjectURL(blob);
    const link = document.createElement("a");
    link.href = url;
    link.download = `moodboard-export-${new Date().toISOString().slice(0, 10)}.json`;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
    notify("Your data was saved as a JSON file.");
  });
}
