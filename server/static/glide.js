// Live drags: while someone drags or resizes an item, their presence state carries
// `drag: {id, x, y, w, h}` (throttled by the client, never in the event log), and every
// other board in the room shows the item gliding there; a selection dragged together adds
// the others as `drags: [{id, x, y, w, h}, ...]`. The drop is the one edit.

const SETTLE_MS = 400; // how long a dropped item keeps the glide's place, awaiting its event

/** Item id -> [x, y, w, h] someone in `roomId` is dragging it to, from their presence. */
export function glidingBoxes(peers, roomId) {
  const boxes = new Map();
  for (const peer of peers.values()) {
    const state = peer.state || {};
    if (state.room_id !== roomId) continue;
    const drags = [state.drag, ...(Array.isArray(state.drags) ? state.drags.slice(0, 200) : [])];
    for (const drag of drags) {
      if (!drag || typeof drag.id !== "string") continue;
      const box = [drag.x, drag.y, drag.w, drag.h].map(Number);
      if (box.every(Number.isFinite) && box[2] > 0 && box[3] > 0) boxes.set(drag.id, box);
    }
  }
  return boxes;
}

/**
 * Place the items others are dragging (`itemEls`: id -> node); `mine` holds the ones this
 * user drags (left alone). A glide that ended hands the item back to `settle(id)` a moment
 * later, unless the drop's event already placed it (a node rendered meanwhile).
 */
export function renderGlides(itemEls, boxes, mine, settle) {
  for (const [id, node] of itemEls) {
    const box = boxes.get(id);
    if (box && !mine.has(id)) {
      const [x, y, w, h] = box;
      Object.assign(node.style, { left: `${x}px`, top: `${y}px`, width: `${w}px`, height: `${h}px`, zIndex: "9000" });
      node.classList.add("gliding");
    } else if (node.classList.contains("gliding")) {
      node.classList.remove("gliding");
      setTimeout(() => {
        if (!node.classList.contains("gliding")) settle(id);
      }, SETTLE_MS);
    }
  }
}

/** Whether a board should leave this node where a glide put it (renderers ask first). */
export function isGliding(node) {
  return node.classList.contains("gliding");
}
