// The moodboard page: sign in, projects, rooms as tabs, a live board per room.
// All state comes from the client module; this file only renders it and turns
// the user's gestures into edits.

import { ApiError, MoodboardClient } from "/static/moodboard-client.js";
import { installPictures } from "/static/pictures.js";
import { UndoHistory, installUndoKeys, words as fieldWords } from "/static/undo.js";
import { HistoryPanel } from "/static/history.js";
import { glidingBoxes, isGliding, renderGlides } from "/static/glide.js";
import { Viewport } from "/static/viewport.js";
import { Selection } from "/static/selection.js";
import { editNote, noteColourPicker, noteEditors, renderEditors } from "/static/notes.js";
import { freeSpot, itemBody, progressBar } from "/static/board-items.js";
import { renderCursors, renderHeld } from "/static/cursors.js";
import { PeoplePanel, colourFor, showInvitationLanding } from "/static/people.js";
import { Credits, ProjectMenu, installExport } from "/static/project_menu.js";

const $ = (selector, root = document) => root.querySelector(selector);
const client = new MoodboardClient();
const PALETTE = ["#e9c46a", "#f4a261", "#e76f51", "#2a9d8f", "#264653", "#a8dadc", "#b5838d", "#6d6875"];
const MAX_NOTICES = 4;
const PRESENCE_HELD = 10; // dragged items shown to the others (presence states are at most 2 KiB)
const CONNECTION_LABELS = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  offline: "Offline",
  unauthorized: "Signed out",
  closed: "Offline",
};

const page = {
  me: null,
  handle: null, // the open project's ProjectHandle
  undo: null, // the user's undoable edits of the open project (an UndoHistory)
  roomId: null,
  itemEls: new Map(),
  cursorEls: new Map(),
  dragging: null, // {id, ids, boxes, ...} while the user drags the selection or resizes an item
  editing: null, // the id of the note whose text the user is editing
  editors: new Map(), // note id -> the name of someone else editing it (their presence)
  pointer: null, // where the pointer last was on the board (board coordinates)
  myGeneration: null, // the generation this tab requested last
  listeners: [],
};
window.moodboard = { client, page }; // for the console and for browser tests

// --- small helpers ---------------------------------------------------------------------

function show(id) {
  for (const view of ["auth-view", "projects-view", "project-view"]) $(`#${view}`).hidden = view !== id;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function notify(message, { kind = "info", detail = null, timeoutMs = 8000, action = null } = {}) {
  const notice = el(
    "div",
    { class: `notice ${kind}`, role: "status", "data-testid": "notice", "data-kind": kind },
    el("div", { class: "notice-text", text: message }),
    detail && el("div", { class: "notice-detail", text: detail }),
    action &&
      el("button", {
        class: "link notice-action",
        "data-testid": "notice-action",
        text: action.label,
        onclick: () => {
          notice.remove();
          action.run();
        },
      }),
    el("button", { class: "notice-close", "aria-label": "Dismiss", text: "×", onclick: () => notice.remove() }),
  );
  const shown = $("#notices");
  for (const old of shown.children) if (old.dataset.message === message) old.remove(); // no repeats
  notice.dataset.message = message;
  shown.append(notice);
  while (shown.children.length > MAX_NOTICES) shown.firstElementChild.remove();
  if (timeoutMs) setTimeout(() => notice.remove(), timeoutMs);
  return notice;
}

function problem(err) {
  return err instanceof ApiError ? err.message : "The server could not be reached.";
}

// --- signing in ------------------------------------------------------------------------

function authTab(name) {
  for (const t of document.querySelectorAll("[data-auth-tab]")) t.classList.toggle("active", t.dataset.authTab === name);
  $("#login-form").hidden = name !== "login";
  $("#signup-form").hidden = name !== "signup";
  $("#auth-error").textContent = "";
}

for (const tab of document.querySelectorAll("[data-auth-tab]")) {
  tab.addEventListener("click", () => authTab(tab.dataset.authTab));
}

async function submitAuth(event, path, fields) {
  event.preventDefault();
  const form = new FormData(event.target);
  const body = Object.fromEntries(fields.map((f) => [f, form.get(f)]));
  try {
    const result = await client.api("POST", path, body);
    signedIn(result.user);
  } catch (err) {
    $("#auth-error").textContent = problem(err);
  }
}

$("#login-form").addEventListener("submit", (e) => submitAuth(e, "/auth/login", ["email", "password"]));
$("#signup-form").addEventListener("submit", (e) =>
  submitAuth(e, "/auth/register", ["name", "email", "password"]),
);

$("#logout").addEventListener("click", async () => {
  const userId = page.me?.id;
  try {
    await client.api("POST", "/auth/logout");
  } catch {
    // signed out either way
  }
  signedOut();
  client.forgetUser(userId); // a shared computer keeps nothing of this user's boards
});

function signedIn(user) {
  page.me = user;
  client.userId = user.id;
  $("#who").textContent = user.name;
  $("#who").title = `${user.email} · ${user.credits} credits`;
  for (const id of ["who", "logout", "connection", "export-data"]) $(`#${id}`).hidden = false;
  client.connect();
  route();
}

function signedOut() {
  closeProject();
  client.close();
  page.me = null;
  for (const id of ["who", "logout", "connection", "export-data"]) $(`#${id}`).hidden = true;
  $("#crumb").textContent = "";
  for (const form of document.querySelectorAll("#auth-view form")) form.reset();
  authTab("login");
  show("auth-view");
  showInvitationLanding(client);
}

client.addEventListener("unauthorized", () => {
  notify("Your session ended. Please log in again.", { kind: "error" });
  signedOut();
});

// --- connection indicator --------------------------------------------------------------

function renderConnection() {
  const node = $("#connection");
  const pending = page.handle ? page.handle.pendingCount : 0;
  node.dataset.state = client.status;
  let label = CONNECTION_LABELS[client.status] ?? client.status;
  if (pending && client.status !== "live") label += ` · ${pending} unsent`;
  $(".label", node).textContent = label;
  node.title =
    client.status === "live"
      ? "Connected: edits are shared as you make them"
      : "Edits are kept in this browser and sent when the connection is back";
}
client.addEventListener("status", renderConnection);

// --- routing ---------------------------------------------------------------------------

window.addEventListener("hashchange", () => (page.me ? route() : showInvitationLanding(client)));

function route() {
  const [, kind, projectId, roomId] = location.hash.split("/");
  if (kind === "invite" && projectId) acceptInvitation(projectId);
  else if (kind === "p" && projectId) openProject(projectId, roomId || null);
  else {
    closeProject();
    showProjects();
  }
}

// --- projects --------------------------------------------------------------------------

async function showProjects() {
  show("projects-view");
  $("#crumb").textContent = "";
  let projects;
  try {
    projects = await client.api("GET", "/projects");
  } catch (err) {
    notify(problem(err), { kind: "error" });
    return;
  }
  const list = $("#project-list");
  list.replaceChildren(
    ...projects.map((p) =>
      el(
        "li",
        {},
        el(
          "a",
          { href: `#/p/${p.id}`, class: "project-card", "data-testid": "project-link" },
          el("strong", { text: p.name }),
          el("span", { class: "muted", text: p.description || "" }),
        ),
      ),
    ),
  );
  $("#no-projects").hidden = projects.length > 0;
}

$("#project-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  try {
    const project = await client.api("POST", "/projects", { name: form.name.value.trim() });
    form.reset();
    location.hash = `#/p/${project.id}`;
  } catch (err) {
    notify(problem(err), { kind: "error" });
  }
});

function closeProject() {
  if (!page.handle) return;
  for (const [type, fn] of page.listeners) page.handle.removeEventListener(type, fn);
  page.listeners = [];
  client.leave(page.handle.id);
  page.handle = null;
  page.undo = null;
  renderUndo();
  renderRole();
  historyPanel.reset();
  people.reset();
  credits.reset();
  page.roomId = null;
  page.itemEls.clear();
  page.cursorEls.clear();
  selection.clear();
  viewport.forget();
  $("#board").replaceChildren();
}

function openProject(projectId, roomId) {
  if (page.handle && page.handle.id !== projectId) closeProject();
  show("project-view");
  if (!page.handle) {
    const handle = client.project(projectId);
    page.handle = handle;
    page.undo = new UndoHistory(handle);
    page.undo.addEventListener("change", renderUndo);
    page.undo.addEventListener("refused", (e) => notify(e.detail.message, { kind: "undo" }));
    renderUndo();
    const on = (type, fn) => {
      handle.addEventListener(type, fn);
      page.listeners.push([type, fn]);
    };
    on("sync", renderAll);
    on("event", (e) => historyPanel.applied(e.detail.frame));
    on("change", (e) => changed(e.detail));
    on("presence", renderPresence);
    on("conflict", (e) => conflictNotice(e.detail));
    on("rejected", (e) => notify(`Your change was refused: ${e.detail.message}`, { kind: "error" }));
    on("generation", (e) => generationChanged(e.detail.generation));
    on("generation", (e) => credits.generationChanged(e.detail.generation));
    credits.refresh();
    on("error", (e) => {
      const message = e.detail.code === "forbidden" ? "You cannot open this project." : e.detail.message;
      notify(message, { kind: "error" });
      location.hash = "#/";
    });
    on("left", (e) => {
      const reasons = {
        access_revoked: "You no longer have access to this project.",
        project_deleted: "This project was deleted.",
      };
      notify(reasons[e.detail.reason] ?? "Left the project.", { kind: "error" });
      location.hash = "#/";
    });
  }
  page.roomId = roomId;
  renderAll();
}

function myRole() {
  const member = page.handle?.confirmed.member.get(page.me?.id);
  return member ? member.role : null;
}

function canEdit() {
  return myRole() !== "viewer";
}

/** Why a gesture did nothing, for a viewer (told again at most every 10 s). */
function viewOnlyNotice() {
  if (Date.now() - (page.viewOnlyToldAt ?? 0) < 10_000) return;
  page.viewOnlyToldAt = Date.now();
  notify("View only: your role on this project is viewer. An owner can make you an editor.", { kind: "info", timeoutMs: 5000 });
}

function renderRole() {
  const viewOnly = Boolean(page.handle) && myRole() === "viewer";
  document.body.classList.toggle("read-only", viewOnly);
  $("#view-only").hidden = !viewOnly;
  projectMenu.render();
}

// --- rendering the project ---------------------------------------------------------------

function rooms() {
  return page.handle
    .list("room")
    .sort((a, b) => (a.position ?? 0) - (b.position ?? 0) || a.name.localeCompare(b.name));
}

function renderAll() {
  const handle = page.handle;
  if (!handle) return;
  const project = handle.project;
  $("#project-name").textContent = project ? project.name : "Loading…";
  $("#crumb").textContent = project ? `/ ${project.name}` : "";
  const all = rooms();
  // A room in the address is kept until the project's rooms are known (a reload on a room).
  const roomGone = page.roomId && !handle.get("room", page.roomId) && handle.state === "live";
  if (!page.roomId || roomGone) page.roomId = all[0]?.id ?? null;
  viewport.showRoom(page.roomId);
  renderRooms();
  renderBoard();
  renderMembers();
  renderGenerations();
  renderPresence();
  renderConnection();
  renderRole();
}

function renderRooms() {
  const nav = $("#rooms");
  for (const tab of nav.querySelectorAll(".room-tab")) tab.remove();
  const form = $("#room-form");
  for (const room of rooms()) {
    const tab = el("a", {
      class: `room-tab${room.id === page.roomId ? " active" : ""}`,
      href: `#/p/${page.handle.id}/${room.id}`,
      "data-testid": "room-tab",
      "data-room-id": room.id,
      text: room.name,
    });
    nav.insertBefore(tab, form);
  }
  projectMenu.render();
}

$("#room-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.target;
  const positions = rooms().map((r) => r.position ?? 0);
  const id = page.handle.create("room", {
    name: form.name.value.trim(),
    room_type: form.room_type.value,
    position: positions.length ? Math.max(...positions) + 1 : 0,
  });
  form.name.value = "";
  location.hash = `#/p/${page.handle.id}/${id}`;
});

function roomItems() {
  return page.handle.list("item", (i) => i.room_id === page.roomId);
}

function renderBoard() {
  const board = $("#board");
  $("#board-empty").hidden = page.roomId !== null;
  board.hidden = page.roomId === null;
  const wanted = new Set();
  for (const item of roomItems()) {
    wanted.add(item.id);
    renderItem(item);
  }
  for (const [id, node] of page.itemEls) {
    if (!wanted.has(id)) {
      node.remove();
      page.itemEls.delete(id);
    }
  }
  selection.render();
}

function changed({ entity, id, value }) {
  if (!page.handle) return;
  renderConnection();
  if (entity === "item") {
    if (value && value.room_id === page.roomId) renderItem(value);
    else {
      page.itemEls.get(id)?.remove();
      page.itemEls.delete(id);
    }
  } else if (entity === "room") {
    if (!value && id === page.roomId) {
      page.roomId = null;
      renderAll();
    } else renderRooms();
    if (!page.roomId && value) renderAll();
  } else if (entity === "project") {
    renderAll();
  } else if (entity === "member") {
    people.render({ membersChanged: true });
    renderRole();
  }
}

function renderItem(item) {
  let node = page.itemEls.get(item.id);
  if (!node) {
    node = el("div", { class: "item", "data-testid": "item", "data-id": item.id });
    node.addEventListener("pointerdown", (e) => selection.press(e, item.id));
    $("#board").append(node);
    page.itemEls.set(item.id, node);
  }
  node.dataset.kind = item.kind;
  node.dataset.pending = item.version === 0 || page.handle.pending.some((op) => op.id === item.id);
  node.classList.toggle("selected", selection.has(item.id));
  if (!page.dragging?.ids.has(item.id) && !isGliding(node)) {
    Object.assign(node.style, {
      left: `${item.x}px`,
      top: `${item.y}px`,
      width: `${item.w}px`,
      height: `${item.h}px`,
      zIndex: String(Math.round(item.z) + 1),
    });
    node.dataset.x = String(Math.round(item.x));
    node.dataset.y = String(Math.round(item.y));
  }
  const signature = JSON.stringify([item.kind, item.data, generationOf(item)]);
  if (node.dataset.signature === signature || page.editing === item.id) return; // keep the editor
  node.dataset.signature = signature;
  node.replaceChildren(
    itemBody(el, item, { projectId: page.handle.id, generation: generationOf(item) }),
    el("button", { class: "item-delete", title: "Delete", "data-testid": "item-delete", text: "×" }),
    el("div", { class: "item-resize", title: "Resize", "data-testid": "item-resize" }),
  );
  if (page.editors.has(item.id)) renderEditors(el, new Map([[item.id, node]]), page.editors);
}

function generationOf(item) {
  if (item.kind !== "generation" || !item.data.generation_id) return null;
  return page.handle.get("generation", item.data.generation_id);
}

// --- the view and the selection (viewport.js, selection.js); editing ---------------------

const viewport = new Viewport($("#board-wrap"), $("#board"), (view) => {
  const wrap = $("#board-wrap");
  const grid = 24 * view.scale;
  wrap.style.backgroundSize = `${grid}px ${grid}px`;
  wrap.style.backgroundPosition = `${view.panX}px ${view.panY}px`;
  $("#zoom-level").textContent = `${Math.round(view.scale * 100)}%`;
});
const onBoard = () => Boolean(page.handle) && page.roomId !== null && !$("#project-view").hidden;
viewport.install({
  active: onBoard,
  boxes: () => roomItems(),
  buttons: { zoomIn: $("#zoom-in"), zoomOut: $("#zoom-out"), fit: $("#zoom-fit"), level: $("#zoom-level") },
});

const selection = new Selection({
  page,
  viewport,
  canEdit: () => canEdit(),
  viewOnlyNotice: () => viewOnlyNotice(),
  roomItems: () => roomItems(),
  renderItem: (item) => renderItem(item),
  sharePresence: (point) => sharePresence(point),
  notify,
});
selection.installKeys(onBoard);
window.moodboard.viewport = viewport;
window.moodboard.selection = selection;

$("#board-wrap").addEventListener("pointerdown", (event) => {
  if (event.target.closest(".item, .zoom-bar") || !page.handle) return;
  if (event.button === 0) selection.marquee(event, $("#board-wrap"));
});

$("#board").addEventListener("dblclick", (event) => {
  const node = event.target.closest(".item");
  if (!node || !canEdit()) return;
  const item = page.handle.get("item", node.dataset.id);
  if (!item) return;
  if (item.kind === "note") editNote(notes, node, item);
  else if (item.kind === "color") editColour(item);
});

$("#board").addEventListener("click", (event) => {
  const node = event.target.closest(".note-edit-button") && event.target.closest(".item");
  const item = node && page.handle?.get("item", node.dataset.id);
  if (item && canEdit()) editNote(notes, node, item);
});

const notes = {
  page,
  el,
  undo: () => page.undo,
  handle: () => page.handle,
  shareEditing: () => sharePresence(page.pointer),
  renderItem: (item) => renderItem(item),
};

function editColour(item) {
  const input = el("input", { type: "color", value: item.data.color ?? "#cccccc" });
  input.addEventListener("change", () =>
    page.undo.update("item", item.id, { data: { ...item.data, color: input.value, label: input.value } }, { baseVersion: item.version || undefined, was: item }),
  );
  input.click();
}

// --- adding things ----------------------------------------------------------------------

function addItem(kind, data, size = { w: 200, h: 150 }, at = null) {
  if (!page.roomId) {
    notify("Create a room first.", { kind: "info" });
    return null;
  }
  const spot = at ?? freeSpot(roomItems(), viewport.visibleRect(), size.w, size.h);
  return page.undo.create("item", { room_id: page.roomId, kind, ...spot, ...size, z: selection.maxZ() + 1, data });
}

// --- undo and redo -------------------------------------------------------------------------

function renderUndo() {
  $("#undo").disabled = !page.undo?.canUndo;
  $("#redo").disabled = !page.undo?.canRedo;
}
$("#undo").addEventListener("click", () => page.undo?.undo());
$("#redo").addEventListener("click", () => page.undo?.redo());
installUndoKeys(() => (page.handle && canEdit() && !$("#project-view").hidden ? page.undo : null));

$("#add-note").addEventListener("click", () => addItem("note", { text: "New note" }));
noteColourPicker(el, $("#note-colours"), (color) => addItem("note", { text: "New note", color }));
$("#add-color").addEventListener("click", () => {
  const color = PALETTE[Math.floor(Math.random() * PALETTE.length)];
  addItem("color", { color, label: color }, { w: 140, h: 140 });
});
installPictures({
  client,
  handle: () => page.handle,
  roomId: () => page.roomId,
  canEdit: () => canEdit(),
  addItem,
  boardPoint: (event) => viewport.boardPoint(event),
  notify,
});

// --- history ----------------------------------------------------------------------------

const historyPanel = new HistoryPanel({
  client,
  el,
  notify,
  colourFor,
  handle: () => page.handle,
  me: () => page.me,
  undo: () => page.undo,
  canEdit: () => canEdit(),
});

// --- presence ---------------------------------------------------------------------------

function sharePresence(point) {
  if (!page.handle) return;
  const drag = page.dragging;
  if (point) page.pointer = point;
  // The state must stay under the server's 2 KiB: a big selection shows its first
  // PRESENCE_HELD items held and gliding; the others jump on the drop.
  const held = drag ? [drag.id, ...[...drag.ids].filter((id) => id !== drag.id)].slice(0, PRESENCE_HELD) : [];
  const state = { room_id: page.roomId, cursor: page.pointer, selection: held };
  if (page.editing) state.editing = page.editing; // "Ann is editing" on the others' boards
  // Where the items are while they are dragged: the others see them glide (presence,
  // throttled, never the event log); the drop is the one edit.
  const boxes = [...(drag?.boxes ?? [])].map(([id, box]) => ({ id, ...box }));
  if (boxes.length) {
    state.drag = boxes.find((b) => b.id === drag.id) ?? boxes[0];
    const rest = boxes.filter((b) => b !== state.drag && state.selection.includes(b.id)).slice(0, PRESENCE_HELD - 1);
    if (rest.length) state.drags = rest;
  }
  page.handle.setPresence(state);
}

$("#board-wrap").addEventListener("pointermove", (event) => {
  if (!page.dragging) sharePresence(viewport.boardPoint(event));
});

function renderPresence() {
  const handle = page.handle;
  if (!handle) return;
  const here = new Map();
  if (page.me) here.set(page.me.id, { name: `${page.me.name} (you)`, user_id: page.me.id, where: null });
  for (const peer of handle.peers.values()) {
    const room = peer.state?.room_id ? handle.get("room", peer.state.room_id) : null;
    if (!here.has(peer.user_id)) here.set(peer.user_id, { name: peer.name, user_id: peer.user_id, where: room?.name ?? null });
  }
  renderCursors(el, $("#board"), page.cursorEls, handle.peers, page.roomId, colourFor);
  renderHeld(page.itemEls, handle.peers, page.roomId, colourFor);
  page.editors = noteEditors(handle.peers, page.roomId);
  renderEditors(el, page.itemEls, page.editors);
  renderGlides(page.itemEls, glidingBoxes(handle.peers, page.roomId), page.dragging?.ids ?? new Set(), (id) => {
    const item = page.handle?.get("item", id);
    if (item) renderItem(item);
  });
  $("#here").replaceChildren(
    ...[...here.values()].map((p) =>
      el(
        "li",
        { "data-testid": "here-user" },
        el("span", { class: "dot", style: `background:${colourFor(p.user_id)}` }),
        p.name,
        p.where && el("span", { class: "where", text: p.where }),
      ),
    ),
  );
}

// --- members ----------------------------------------------------------------------------

const people = new PeoplePanel({
  client,
  el,
  notify,
  problem,
  handle: () => page.handle,
  me: () => page.me,
  myRole,
});

function renderMembers() {
  people.render();
}

// --- renaming and deleting, the account ---------------------------------------------------

const projectMenu = new ProjectMenu({ client, el, notify, problem, handle: () => page.handle, roomId: () => page.roomId, myRole });
const credits = new Credits({ client, me: () => page.me });
installExport({ client, notify, problem });

async function acceptInvitation(token) {
  closeProject();
  try {
    const member = await client.api("POST", `/invitations/${token}/accept`);
    location.replace(`#/p/${member.project_id}`);
  } catch (err) {
    const message = err instanceof ApiError && err.status === 410 ? "This invitation was already used or has expired." : problem(err);
    notify(message, { kind: "error" });
    location.replace("#/");
  }
}

// --- generations ------------------------------------------------------------------------

$("#generate-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const prompt = form.prompt.value.trim();
  if (!page.roomId) {
    notify("Create a room first.", { kind: "info" });
    return;
  }
  const button = $("[data-testid=generate-submit]");
  button.disabled = true;
  try {
    const gen = await client.generate(page.handle.id, page.roomId, prompt);
    page.myGeneration = gen.id;
    form.reset();
    // The picture lands on the board as an item that follows the generation.
    addItem("generation", { generation_id: gen.id, prompt }, { w: 256, h: 256 });
    renderGenerations();
  } catch (err) {
    const message = err instanceof ApiError && err.status === 402 ? "Not enough credits for a generation." : problem(err);
    notify(message, { kind: "error" });
  } finally {
    button.disabled = false;
  }
});

function generationChanged(gen) {
  if (!gen) return;
  renderGenerations();
  for (const item of roomItems()) if (item.data?.generation_id === gen.id) renderItem(item);
}

function renderGenerations() {
  const handle = page.handle;
  const gens = handle
    .list("generation")
    .sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)))
    .slice(0, 8);
  $("#generations").replaceChildren(
    ...gens.map((g) => {
      const mine = g.id === page.myGeneration;
      const row = el("li", { class: "generation", "data-testid": mine ? "generate-status" : "generation", "data-status": g.status });
      row.append(el("div", { class: "gen-prompt", text: g.prompt }));
      if (g.result?.url) {
        row.append(el("img", { class: "gen-thumb", src: g.result.url, alt: g.prompt, "data-testid": mine ? "generate-result" : null }));
      } else if (g.status === "failed" || g.status === "canceled") {
        row.append(el("div", { class: "gen-error", text: g.status === "failed" ? g.error || "failed" : "canceled" }));
      } else {
        row.append(progressBar(el, g.progress ?? 0, g.status, mine ? "generate-progress" : "generation-progress"));
        if (g.requested_by === page.me?.id && (g.status === "queued" || g.status === "running")) {
          row.append(
            el("button", { class: "link", "data-testid": "generation-cancel", text: "Cancel", onclick: () => cancelGeneration(g.id) }),
          );
        }
      }
      return row;
    }),
  );
}

async function cancelGeneration(id) {
  try {
    await client.api("POST", `/generations/${id}/cancel`);
  } catch (err) {
    notify(problem(err), { kind: "error" });
  }
}

// --- conflicts --------------------------------------------------------------------------

const FIELD_WORDS = { x: "position", y: "position", w: "size", h: "size", z: "stacking", data: "content", name: "name" };

function conflictNotice({ entity, fields, resolution, mine, intent }) {
  const what = entity === "item" ? "this item" : `this ${entity}`;
  if (intent) {
    // An undo, redo or restore met someone else's change on its way: theirs stands.
    const changed = fieldWords(fields) || "it";
    const message = {
      kept_theirs: `Your ${intent} was not applied: someone changed the ${changed} of ${what} at the same time.`,
      partly_reapplied: `Your ${intent} was partly applied: someone changed the ${changed} of ${what} at the same time; theirs is kept.`,
      deleted_by_others: `Your ${intent} was not applied: someone deleted ${what}.`,
      already_deleted: `${what[0].toUpperCase()}${what.slice(1)} was already deleted.`,
    }[resolution];
    if (message) {
      notify(message, { kind: "conflict", timeoutMs: 12000 });
      return;
    }
  }
  const words = [...new Set(fields.map((f) => FIELD_WORDS[f] ?? f))].join(" and ") || "it";
  const messages = {
    reapplied: `Someone changed the ${words} of ${what} at the same time. Your change was re-applied on top.`,
    partly_reapplied: `Someone changed the ${words} of ${what} at the same time. Their ${words} was kept; the rest of your change was applied.`,
    kept_theirs: `Someone changed ${what} at the same time. Their version was kept; your change was not applied.`,
    deleted_by_others: `Someone deleted ${what} while you were editing it. Your change was dropped.`,
    already_deleted: `${what[0].toUpperCase()}${what.slice(1)} was already deleted.`,
  };
  const detail = mine?.data?.text !== undefined && resolution !== "reapplied" ? `Your text was: “${mine.data.text}”` : null;
  notify(messages[resolution] ?? `Edit conflict on ${what}.`, { kind: "conflict", detail, timeoutMs: 12000 });
}

// --- start ------------------------------------------------------------------------------

(async () => {
  // Only with a session cookie to show (its readable hint, server/http/auth.py): a signed-out
  // first visit asks nothing, so the browser's console has no 401 in it.
  if (!document.cookie.split("; ").includes("moodboard_signed_in=1")) {
    signedOut();
    return;
  }
  try {
    signedIn(await client.api("GET", "/me"));
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401) notify(problem(err), { kind: "error" });
    signedOut();
  }
})();
