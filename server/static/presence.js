// Presence on the board: what this tab shares (its room, pointer, the items it drags and where
// they are, the note it edits) and how the others' presence is drawn (cursors, "held" outlines,
// gliding items, "Ann is editing", the list of who is here). Presence never reaches the event
// log (docs/protocol.md: a state is at most 2 KiB, throttled by the client).

import { $, el } from "/static/dom.js";
import { renderCursors, renderHeld } from "/static/cursors.js";
import { glidingBoxes, renderGlides } from "/static/glide.js";
import { noteEditors, renderEditors } from "/static/notes.js";
import { colourFor } from "/static/people.js";

const PRESENCE_HELD = 10; // dragged items shown to the others (presence states are at most 2 KiB)

/** Share this tab's presence on the open project; `point`: where the pointer now is, if known. */
export function sharePresence(page, point) {
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

/** Draw the others' presence on the board and the list of who is here; `renderItem(item)`. */
export function renderPresence(page, renderItem) {
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
