// The moodboard page: sign in, projects, rooms as tabs, a live board per room.
// All state comes from the client module; this file only renders it and turns
// the user's gestures into edits.

import { ApiError, MoodboardClient } from "/static/moodboard-client.js";
import { $, el, showView } from "/static/dom.js";
import { notify, problem } from "/static/notices.js";
import { conflictNotice } from "/static/conflicts.js";
import { renderConnection } from "/static/connection.js";
import { authTab, installSignIn } from "/static/sign-in.js";
import { installProjectForm, showProjects } from "/static/projects-list.js";
import { GenerationsPanel } from "/static/generations-panel.js";
import { renderPresence as drawPresence, sharePresence as sendPresence } from "/static/presence.js";
import { installPictures } from "/static/pictures.js";
import { UndoHistory, installUndoKeys } from "/static/undo.js";
import { HistoryPanel } from "/static/history.js";
import { isGliding } from "/static/glide.js";
import { Viewport } from "/static/viewport.js";
import { Selection } from "/static/selection.js";
import { editNote, installNoteButtons, noteColourPicker, renderEditors } from "/static/notes.js";
import { freeSpot, itemBody } from "/static/board-items.js";
import { PeoplePanel, acceptInvitation, colourFor, showInvitationLanding } from "/static/people.js";
import { Credits, ProjectMenu, installExport } from "/static/project_menu.js";

const client = new MoodboardClient();
const PALETTE = ["#e9c46a", "#f4a261", "#e76f51", "#2a9d8f", "#264653", "#a8dadc", "#b5838d", "#6d6875"];

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
  listeners: [],
};
window.moodboard = { client, page }; // for the console and for browser tests

// --- signing in and out (sign-in.js) -----------------------------------------------------

installSignIn(client, (user) => signedIn(user));

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
  showView("auth-view");
  showInvitationLanding(client);
}

client.addEventListener("unauthorized", () => {
  notify("Your session ended. Please log in again.", { kind: "error" });
  signedOut();
});

client.addEventListener("status", () => renderConnection(client, page.handle));

// --- routing ---------------------------------------------------------------------------

window.addEventListener("hashchange", () => (page.me ? route() : showInvitationLanding(client)));

function route() {
  const [, kind, projectId, roomId] = location.hash.split("/");
  if (kind === "p" && projectId) {
    openProject(projectId, roomId || null);
    return;
  }
  closeProject();
  if (kind === "invite" && projectId) acceptInvitation(client, projectId);
  else showProjects(client);
}

// --- the project (projects-list.js has the list) -------------------------------------------

installProjectForm(client);

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
  showView("project-view");
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
    on("generation", (e) => generations.changed(e.detail.generation));
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
  people.render();
  generations.render();
  renderPresence();
  renderConnection(client, handle);
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
  renderConnection(client, page.handle);
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

const notes = {
  page,
  el,
  undo: () => page.undo,
  handle: () => page.handle,
  canEdit: () => canEdit(),
  shareEditing: () => sharePresence(page.pointer),
  renderItem: (item) => renderItem(item),
};
installNoteButtons($("#board"), notes);

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

// --- presence (presence.js) ---------------------------------------------------------------

function sharePresence(point) {
  sendPresence(page, point);
}

function renderPresence() {
  drawPresence(page, renderItem);
}

$("#board-wrap").addEventListener("pointermove", (event) => {
  if (!page.dragging) sharePresence(viewport.boardPoint(event));
});

// --- members and invitations (people.js) -----------------------------------------------------

const people = new PeoplePanel({
  client,
  el,
  notify,
  problem,
  handle: () => page.handle,
  me: () => page.me,
  myRole,
});

// --- renaming and deleting, the account ---------------------------------------------------

const projectMenu = new ProjectMenu({ client, el, notify, problem, handle: () => page.handle, roomId: () => page.roomId, myRole });
const credits = new Credits({ client, me: () => page.me });
installExport({ client, notify, problem });

// --- generations (generations-panel.js) ----------------------------------------------------

const generations = new GenerationsPanel({
  client,
  handle: () => page.handle,
  roomId: () => page.roomId,
  me: () => page.me,
  addItem,
  roomItems: () => roomItems(),
  renderItem: (item) => renderItem(item),
});

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
