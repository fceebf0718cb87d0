// The others on this board: their pointers (named, in their colour) and the items they
// hold (outlined in their colour), from the presence state.

/** Place each peer's pointer on `board` (`cursorEls`: connection id -> node, kept across calls). */
export function renderCursors(el, board, cursorEls, peers, roomId, colourFor) {
  const seen = new Set();
  for (const [cid, peer] of peers) {
    const state = peer.state || {};
    if (state.room_id !== roomId || !state.cursor) continue;
    seen.add(cid);
    let cursor = cursorEls.get(cid);
    if (!cursor) {
      cursor = el(
        "div",
        { class: "cursor", "data-testid": "cursor", style: `--who:${colourFor(peer.user_id)}` },
        el("span", { class: "cursor-name", text: peer.name }),
      );
      board.append(cursor);
      cursorEls.set(cid, cursor);
    }
    const x = Number(state.cursor.x) || 0;
    const y = Number(state.cursor.y) || 0;
    cursor.style.transform = `translate(${x}px, ${y}px)`;
  }
  for (const [cid, cursor] of cursorEls) {
    if (!seen.has(cid)) {
      cursor.remove();
      cursorEls.delete(cid);
    }
  }
}

/** Outline the items someone in the room holds (their `selection`) in that person's colour. */
export function renderHeld(itemEls, peers, roomId, colourFor) {
  const held = new Map(); // item id -> the colour of someone who holds it
  for (const peer of peers.values()) {
    const state = peer.state || {};
    if (state.room_id !== roomId) continue;
    for (const id of Array.isArray(state.selection) ? state.selection : []) held.set(id, colourFor(peer.user_id));
  }
  for (const [id, node] of itemEls) {
    const colour = held.get(id);
    node.style.outline = colour ? `2px solid ${colour}` : "";
    node.classList.toggle("held", Boolean(colour));
  }
}
