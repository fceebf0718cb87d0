// The moodboard page: sign in, projects, rooms as tabs, a live board per room.
// All state comes from the client module; this file only renders it and turns
// the user's gestures into edits.

import { ApiError, MoodboardClient } from "/static/moodboard-client.js";
import { installPictures, pictureBody } from "/static/pictures.js";
import { UndoHistory, installUndoKeys, words as fieldWords } from "/static/undo.js";
import { HistoryPanel } from "/static/history.js";
import { glidingBoxes, isGliding, renderGlides } from "/static/glide.js";
import { PeoplePanel, colourFor, showInvitationLanding } from "/static/people.js";
import { Credits, ProjectMenu, installExport } from "/static/project_menu.js";

const $ = (selector, root = document) => root.querySelector(selector);
const client = new MoodboardClient();
const PALETTE = ["#e9c46a", "#f4a261", "#e76f51", "#2a9d8f", "#264653", "#a8dadc", "#b5838d", "#6d6875"];
const MAX_NOTICES = 4;
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
  dragging: null, // {id, ...} while the user drags or resizes an item
  editing: null, // the id of the note whose text the user is editing
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

/** A colour from item data, only if it is plainly one (the data comes from other people). */
function safeColour(value) {
  return typeof value === "string" && /^#[0-9a-f]{3,8}$/i.test(value) ? value : "#cccccc";
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
    node.addEventListener("pointerdown", (e) => startGesture(e, item.id));
    $("#board").append(node);
    page.itemEls.set(item.id, node);
  }
  node.dataset.kind = item.kind;
  node.dataset.pending = item.version === 0 || page.handle.pending.some((op) => op.id === item.id);
  if (page.dragging?.id !== item.id && !isGliding(node)) {
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
    itemBody(item),
    el("button", { class: "item-delete", title: "Delete", "data-testid": "item-delete", text: "×" }),
    el("div", { class: "item-resize", title: "Resize", "data-testid": "item-resize" }),
  );
}

function generationOf(item) {
  if (item.kind !== "generation" || !item.data.generation_id) return null;
  return page.handle.get("generation", item.data.generation_id);
}

function itemBody(item) {
  const data = item.data || {};
  switch (item.kind) {
    case "note":
      return el("div", { class: "note-text", "data-testid": "note-text", text: data.text ?? "" });
    case "color":
      return el(
        "div",
        { class: "swatch", style: `background:${safeColour(data.color)}` },
        el("span", { class: "swatch-label", text: data.label || data.color || "" }),
      );
    case "image":
    case "asset":
      return pictureBody(el, page.handle.id, data);
    case "generation":
      return generationBody(generationOf(item), data);
    default:
      return el("div", { class: "placeholder", text: item.kind });
  }
}

function generationBody(gen, data) {
  const box = el("div", { class: "gen-item", "data-testid": "generation-item" });
  const status = gen?.status ?? "queued";
  box.dataset.status = status;
  if (gen?.result?.url) {
    box.append(el("img", { src: gen.result.url, alt: gen.prompt, draggable: "false", "data-testid": "generated-image" }));
    return box;
  }
  box.append(el("div", { class: "gen-prompt", text: data.prompt ?? gen?.prompt ?? "" }));
  if (status === "failed" || status === "canceled") {
    box.append(el("div", { class: "gen-error", text: status === "failed" ? gen.error || "generation failed" : "canceled" }));
  } else if (status === "succeeded") {
    box.append(el("div", { class: "muted", text: "done (no picture)" }));
  } else {
    box.append(progressBar(gen?.progress ?? 0, status));
  }
  return box;
}

function progressBar(value, status, testid = "generation-progress") {
  const bar = el("div", {
    class: "progress",
    role: "progressbar",
    "aria-valuemin": "0",
    "aria-valuemax": "100",
    "aria-valuenow": String(value),
    "data-testid": testid,
    "data-status": status,
  });
  bar.append(el("div", { class: "progress-fill", style: `width:${value}%` }));
  bar.append(el("span", { class: "progress-label", text: status === "queued" ? "queued" : `${value}%` }));
  return bar;
}

// --- gestures: drag, resize, delete, edit ---------------------------------------------------

function boardPoint(event) {
  const rect = $("#board").getBoundingClientRect();
  return { x: Math.round(event.clientX - rect.left), y: Math.round(event.clientY - rect.top) };
}

function maxZ() {
  return Math.max(0, ...roomItems().map((i) => i.z ?? 0));
}

function startGesture(event, id) {
  if (event.button !== 0) return;
  if (!canEdit()) {
    viewOnlyNotice();
    return;
  }
  const target = event.target;
  const item = page.handle.get("item", id);
  if (!item) return;
  if (target.closest(".item-delete")) {
    const undo = page.undo;
    undo.remove("item", id, { baseVersion: item.version || undefined });
    notify("Deleted.", { kind: "info", timeoutMs: 6000, action: { label: "Undo (Ctrl+Z)", run: () => undo.undo() } });
    return;
  }
  if (target.closest("textarea, input")) return;
  event.preventDefault();
  const node = page.itemEls.get(id);
  node.setPointerCapture(event.pointerId);
  node.classList.add("dragging");
  const resize = Boolean(target.closest(".item-resize"));
  const start = boardPoint(event);
  // The version the user saw when the gesture started: a change made meanwhile by
  // someone else is a conflict the client settles, not something silently overwritten.
  page.dragging = { id, resize, start, item, moved: false, base: item.version || undefined };
  const move = (e) => {
    const p = boardPoint(e);
    const dx = p.x - start.x;
    const dy = p.y - start.y;
    if (Math.abs(dx) + Math.abs(dy) > 2) page.dragging.moved = true;
    const box = resize
      ? { x: item.x, y: item.y, w: Math.max(40, item.w + dx), h: Math.max(40, item.h + dy) }
      : { x: item.x + dx, y: item.y + dy, w: item.w, h: item.h };
    Object.assign(node.style, { left: `${box.x}px`, top: `${box.y}px`, width: `${box.w}px`, height: `${box.h}px` });
    page.dragging.box = box;
    sharePresence(p);
  };
  const end = (e) => {
    node.removeEventListener("pointermove", move);
    node.removeEventListener("pointerup", end);
    node.removeEventListener("pointercancel", end);
    node.classList.remove("dragging");
    const gesture = page.dragging;
    page.dragging = null;
    sharePresence(boardPoint(e)); // the others stop showing it held and gliding
    if (!gesture.moved || e.type === "pointercancel") {
      renderItem(page.handle.get("item", id) ?? item);
      return;
    }
    const p = boardPoint(e);
    const fields = resize
      ? { w: Math.max(40, item.w + p.x - start.x), h: Math.max(40, item.h + p.y - start.y) }
      : { x: item.x + p.x - start.x, y: item.y + p.y - start.y, z: maxZ() + 1 };
    page.undo.update("item", id, fields, { baseVersion: gesture.base, was: item });
    const now = page.handle.get("item", id);
    if (now) renderItem(now);
  };
  node.addEventListener("pointermove", move);
  node.addEventListener("pointerup", end);
  node.addEventListener("pointercancel", end);
}

$("#board").addEventListener("dblclick", (event) => {
  const node = event.target.closest(".item");
  if (!node || !canEdit()) return;
  const item = page.handle.get("item", node.dataset.id);
  if (!item) return;
  if (item.kind === "note") editNote(node, item);
  else if (item.kind === "color") editColour(item);
});

function editNote(node, item) {
  const area = el("textarea", { class: "note-edit", "data-testid": "note-edit" });
  area.value = item.data.text ?? "";
  const body = $(".note-text", node);
  body.replaceWith(area);
  area.focus();
  const base = item.version || undefined;
  page.editing = item.id;
  const finish = () => {
    page.editing = null;
    const text = area.value;
    node.dataset.signature = ""; // render the text again, whatever happens
    if (text !== (item.data.text ?? "")) page.undo.update("item", item.id, { data: { ...item.data, text } }, { baseVersion: base, was: item });
    renderItem(page.handle.get("item", item.id) ?? item);
  };
  area.addEventListener("blur", finish, { once: true });
  area.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.metaKey || e.ctrlKey)) area.blur();
  });
}

function editColour(item) {
  const input = el("input", { type: "color", value: item.data.color ?? "#cccccc" });
  input.addEventListener("change", () =>
    page.undo.update("item", item.id, { data: { ...item.data, color: input.value, label: input.value } }, { baseVersion: item.version || undefined, was: item }),
  );
  input.click();
}

// --- adding things ----------------------------------------------------------------------

/** The first place in the visible part of the board where a w x h box overlaps nothing. */
function freeSpot(w, h) {
  const wrap = $("#board-wrap");
  const items = roomItems();
  const gap = 16;
  const overlaps = (x, y) =>
    items.some((i) => x < i.x + i.w + gap && i.x < x + w + gap && y < i.y + i.h + gap && i.y < y + h + gap);
  const left = wrap.scrollLeft + 40;
  const top = wrap.scrollTop + 40;
  for (let y = top; y + h <= top + Math.max(wrap.clientHeight, h + 80); y += 40) {
    for (let x = left; x + w <= left + Math.max(wrap.clientWidth - 80, w); x += 40) {
      if (!overlaps(x, y)) return { x, y };
    }
  }
  const n = items.length;
  return { x: left + (n % 6) * 36, y: top + (n % 6) * 28 };
}

function addItem(kind, data, size = { w: 200, h: 150 }, at = null) {
  if (!page.roomId) {
    notify("Create a room first.", { kind: "info" });
    return null;
  }
  const spot = at ?? freeSpot(size.w, size.h);
  return page.undo.create("item", { room_id: page.roomId, kind, ...spot, ...size, z: maxZ() + 1, data });
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
  boardPoint,
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
  const state = { room_id: page.roomId, cursor: point, selection: drag ? [drag.id] : [] };
  // Where the item is while it is dragged: the others see it glide (presence, throttled,
  // never the event log); the drop is the one edit.
  if (drag?.box) state.drag = { id: drag.id, ...drag.box };
  page.handle.setPresence(state);
}

$("#board").addEventListener("pointermove", (event) => {
  if (!page.dragging) sharePresence(boardPoint(event));
});

function renderPresence() {
  const handle = page.handle;
  if (!handle) return;
  const here = new Map();
  if (page.me) here.set(page.me.id, { name: `${page.me.name} (you)`, user_id: page.me.id, where: null });
  const seen = new Set();
  const selected = new Map(); // item id -> the colour of someone who holds it
  for (const [cid, peer] of handle.peers) {
    const state = peer.state || {};
    const room = state.room_id ? handle.get("room", state.room_id) : null;
    if (!here.has(peer.user_id)) here.set(peer.user_id, { name: peer.name, user_id: peer.user_id, where: room?.name ?? null });
    if (state.room_id !== page.roomId) continue;
    for (const id of Array.isArray(state.selection) ? state.selection : []) selected.set(id, colourFor(peer.user_id));
    if (!state.cursor) continue;
    seen.add(cid);
    let cursor = page.cursorEls.get(cid);
    if (!cursor) {
      cursor = el(
        "div",
        { class: "cursor", "data-testid": "cursor", style: `--who:${colourFor(peer.user_id)}` },
        el("span", { class: "cursor-name", text: peer.name }),
      );
      $("#board").append(cursor);
      page.cursorEls.set(cid, cursor);
    }
    const x = Number(state.cursor.x) || 0;
    const y = Number(state.cursor.y) || 0;
    cursor.style.transform = `translate(${x}px, ${y}px)`;
  }
  for (const [cid, cursor] of page.cursorEls) {
    if (!seen.has(cid)) {
      cursor.remove();
      page.cursorEls.delete(cid);
    }
  }
  for (const [id, node] of page.itemEls) {
    const colour = selected.get(id);
    node.style.outline = colour ? `2px solid ${colour}` : "";
    node.classList.toggle("held", Boolean(colour));
  }
  renderGlides(page.itemEls, glidingBoxes(handle.peers, page.roomId), page.dragging?.id, (id) => {
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
        row.append(progressBar(g.progress ?? 0, g.status, mine ? "generate-progress" : "generation-progress"));
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
  try {
    signedIn(await client.api("GET", "/me"));
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401) notify(problem(err), { kind: "error" });
    signedOut();
  }
})();
