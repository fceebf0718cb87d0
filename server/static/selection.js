// What the user has selected on the board, and the gestures on it: click and shift-click,
// a marquee dragged over the empty board, dragging the selection (all of it moves, as one
// undoable step) or resizing one item, Delete, arrow nudges (Shift: bigger), Escape.
// A dragged or resized item comes to the front: its new z is part of the same edit.
//
// `app` gives what the page knows: page (state), viewport, canEdit(), viewOnlyNotice(),
// roomItems(), renderItem(item), sharePresence(point), notify(message, options).

const NUDGE = 1;
const BIG_NUDGE = 10;
const MIN_SIZE = 40;
const ARROWS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };

export class Selection {
  constructor(app) {
    this.app = app;
    this.ids = new Set();
  }

  get page() {
    return this.app.page;
  }

  has(id) {
    return this.ids.has(id);
  }

  set(ids) {
    this.ids = new Set(ids);
    this.render();
  }

  clear() {
    if (this.ids.size) this.set([]);
  }

  /** Mark the selected items; forget ones that left the board. */
  render() {
    for (const id of [...this.ids]) if (!this.page.itemEls.has(id)) this.ids.delete(id);
    for (const [id, node] of this.page.itemEls) node.classList.toggle("selected", this.ids.has(id));
  }

  /** The selected items as they are now, in stacking order. */
  items() {
    return this.app
      .roomItems()
      .filter((i) => this.ids.has(i.id))
      .sort((a, b) => (a.z ?? 0) - (b.z ?? 0));
  }

  maxZ() {
    return Math.max(0, ...this.app.roomItems().map((i) => i.z ?? 0));
  }

  // --- pressing an item -------------------------------------------------------------------

  /** A pointerdown on an item: select it (Shift: toggle), then drag the selection or resize. */
  press(event, id) {
    if (event.button !== 0) return;
    const { page } = this;
    const target = event.target;
    if (target.closest("textarea, input, .note-edit-button, .note-colour-button, .note-palette")) return;
    if (event.shiftKey) {
      if (this.ids.has(id)) {
        this.ids.delete(id);
        this.render();
        return;
      }
      this.ids.add(id);
    } else if (!this.ids.has(id)) this.ids = new Set([id]);
    this.render();
    if (!this.app.canEdit()) {
      this.app.viewOnlyNotice();
      return;
    }
    if (target.closest(".item-delete")) {
      this.set([id]);
      this.remove();
      return;
    }
    event.preventDefault();
    const resize = Boolean(target.closest(".item-resize"));
    const moving = resize ? [page.handle.get("item", id)] : this.items();
    if (!moving.length || !moving[0]) return;
    const node = page.itemEls.get(id);
    node.setPointerCapture(event.pointerId);
    for (const item of moving) page.itemEls.get(item.id)?.classList.add("dragging");
    const start = this.app.viewport.boardPoint(event, true);
    // The versions the user saw when the gesture started: a change made meanwhile by
    // someone else is a conflict the client settles, not something silently overwritten.
    const gesture = { id, ids: new Set(moving.map((i) => i.id)), resize, moved: false, boxes: new Map() };
    page.dragging = gesture;
    const boxesAt = (p) => {
      const dx = Math.round(p.x - start.x);
      const dy = Math.round(p.y - start.y);
      if (Math.abs(dx) + Math.abs(dy) > 2) gesture.moved = true;
      return new Map(
        moving.map((item) => [
          item.id,
          resize
            ? { x: item.x, y: item.y, w: Math.max(MIN_SIZE, item.w + dx), h: Math.max(MIN_SIZE, item.h + dy) }
            : { x: item.x + dx, y: item.y + dy, w: item.w, h: item.h },
        ]),
      );
    };
    const move = (e) => {
      const p = this.app.viewport.boardPoint(e, true);
      gesture.boxes = boxesAt(p);
      for (const [itemId, box] of gesture.boxes) {
        const el = page.itemEls.get(itemId);
        if (el) Object.assign(el.style, { left: `${box.x}px`, top: `${box.y}px`, width: `${box.w}px`, height: `${box.h}px` });
      }
      this.app.sharePresence({ x: Math.round(p.x), y: Math.round(p.y) });
    };
    const end = (e) => {
      node.removeEventListener("pointermove", move);
      node.removeEventListener("pointerup", end);
      node.removeEventListener("pointercancel", end);
      for (const item of moving) page.itemEls.get(item.id)?.classList.remove("dragging");
      page.dragging = null;
      this.app.sharePresence(this.app.viewport.boardPoint(e)); // the others stop showing it held
      if (!gesture.moved || e.type === "pointercancel") {
        for (const item of moving) this.app.renderItem(page.handle.get("item", item.id) ?? item);
        return;
      }
      const boxes = boxesAt(this.app.viewport.boardPoint(e, true));
      let z = this.maxZ();
      page.undo.batch(() => {
        for (const item of moving) {
          const box = boxes.get(item.id);
          const fields = resize ? { w: box.w, h: box.h } : { x: box.x, y: box.y };
          fields.z = ++z; // to the front, keeping their order among themselves
          page.undo.update("item", item.id, fields, { baseVersion: item.version || undefined, was: item });
        }
      });
      for (const item of moving) {
        const now = page.handle.get("item", item.id);
        if (now) this.app.renderItem(now);
      }
    };
    node.addEventListener("pointermove", move);
    node.addEventListener("pointerup", end);
    node.addEventListener("pointercancel", end);
  }

  // --- the marquee ------------------------------------------------------------------------

  /** A pointerdown on the empty board: drag a marquee (Shift adds to the selection). */
  marquee(event, layer) {
    const viewport = this.app.viewport;
    const start = viewport.boardPoint(event);
    const before = event.shiftKey ? new Set(this.ids) : new Set();
    const wrapRect = viewport.wrap.getBoundingClientRect();
    const box = document.createElement("div");
    box.className = "marquee";
    box.dataset.testid = "marquee";
    const origin = { x: event.clientX - wrapRect.left, y: event.clientY - wrapRect.top };
    layer.setPointerCapture(event.pointerId);
    let shown = false;
    const move = (e) => {
      const here = { x: e.clientX - wrapRect.left, y: e.clientY - wrapRect.top };
      if (!shown && Math.abs(here.x - origin.x) + Math.abs(here.y - origin.y) < 4) return;
      if (!shown) layer.append(box);
      shown = true;
      Object.assign(box.style, {
        left: `${Math.min(origin.x, here.x)}px`,
        top: `${Math.min(origin.y, here.y)}px`,
        width: `${Math.abs(here.x - origin.x)}px`,
        height: `${Math.abs(here.y - origin.y)}px`,
      });
      const p = viewport.boardPoint(e);
      const [left, right] = [Math.min(start.x, p.x), Math.max(start.x, p.x)];
      const [top, bottom] = [Math.min(start.y, p.y), Math.max(start.y, p.y)];
      const inside = this.app
        .roomItems()
        .filter((i) => i.x < right && left < i.x + i.w && i.y < bottom && top < i.y + i.h)
        .map((i) => i.id);
      this.set([...before, ...inside]);
    };
    const end = () => {
      layer.removeEventListener("pointermove", move);
      layer.removeEventListener("pointerup", end);
      layer.removeEventListener("pointercancel", end);
      box.remove();
      if (!shown && !event.shiftKey) this.clear(); // a click on the empty board
    };
    layer.addEventListener("pointermove", move);
    layer.addEventListener("pointerup", end);
    layer.addEventListener("pointercancel", end);
  }

  // --- keys ---------------------------------------------------------------------------------

  remove() {
    const items = this.items();
    if (!items.length) return;
    const undo = this.page.undo;
    undo.batch(() => {
      for (const item of items) undo.remove("item", item.id, { baseVersion: item.version || undefined });
    });
    this.clear();
    const what = items.length === 1 ? "Deleted." : `Deleted ${items.length} items.`;
    this.app.notify(what, { kind: "info", timeoutMs: 6000, action: { label: "Undo (Ctrl+Z)", run: () => undo.undo() } });
  }

  nudge(dx, dy) {
    const undo = this.page.undo;
    undo.batch(() => {
      for (const item of this.items()) {
        undo.update("item", item.id, { x: item.x + dx, y: item.y + dy }, { baseVersion: item.version || undefined });
      }
    });
  }

  /** Delete / Backspace, arrows (Shift: by 10), Escape, Ctrl+A, while `active()`. */
  installKeys(active) {
    document.addEventListener("keydown", (event) => {
      if (!active() || event.altKey) return;
      if (event.target.closest?.("input, textarea, select, [contenteditable]")) return;
      if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "a") {
        this.set(this.app.roomItems().map((i) => i.id));
      } else if (event.ctrlKey || event.metaKey) {
        return;
      } else if (event.key === "Escape") {
        this.clear();
      } else if ((event.key === "Delete" || event.key === "Backspace") && this.ids.size) {
        if (this.app.canEdit()) this.remove();
        else this.app.viewOnlyNotice();
      } else if (ARROWS[event.key] && this.ids.size) {
        if (!this.app.canEdit()) return this.app.viewOnlyNotice();
        const step = event.shiftKey ? BIG_NUDGE : NUDGE;
        const [dx, dy] = ARROWS[event.key];
        this.nudge(dx * step, dy * step);
      } else return;
      event.preventDefault();
    });
  }
}
