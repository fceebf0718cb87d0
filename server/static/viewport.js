// The board's viewport: how far it is zoomed and panned. Items keep board coordinates;
// the board element is moved and scaled as a whole (a CSS transform), so a point under the
// pointer is (client - board's corner) / scale wherever the view is.
//
// Ctrl+wheel (and a trackpad's pinch, which browsers send as Ctrl+wheel) zooms around the
// pointer; the wheel pans (Shift+wheel sideways), and so does dragging with the middle
// button or with Space held, or with a finger on a touch screen (two fingers pinch);
// +, - and 0 zoom in, out and fit the room's items to the screen; so do the buttons. Each room keeps its own view while the project is open.

const MIN_SCALE = 0.1;
const MAX_SCALE = 4;
const STEP = 1.25; // one key press or button click
const FIT_MARGIN = 40; // screen pixels left around the items by "fit"

const clamp = (value, low, high) => Math.min(high, Math.max(low, value));

export class Viewport {
  /** `wrap`: the clipping element; `board`: the element holding the items; `onChange()`. */
  constructor(wrap, board, onChange = () => {}) {
    this.wrap = wrap;
    this.board = board;
    this.onChange = onChange;
    this.scale = 1;
    this.panX = 0;
    this.panY = 0;
    this.room = null;
    this.saved = new Map(); // room id -> [scale, panX, panY] of the rooms left
    this.spaceHeld = false;
    this.apply();
  }

  /** Show `room` as it was last seen (100 % at the origin the first time). */
  showRoom(room) {
    if (room === this.room) return;
    if (this.room !== null) this.saved.set(this.room, [this.scale, this.panX, this.panY]);
    this.room = room;
    [this.scale, this.panX, this.panY] = this.saved.get(room) ?? [1, 0, 0];
    this.apply();
  }

  /** Forget every room's view (the project was closed). */
  forget() {
    this.saved.clear();
    this.room = null;
    this.reset();
  }

  apply() {
    this.board.style.transform = `translate(${this.panX}px, ${this.panY}px) scale(${this.scale})`;
    this.board.dataset.scale = String(Math.round(this.scale * 1000) / 1000);
    this.onChange(this);
  }

  /** The board point under a pointer event (or anything with clientX / clientY); whole pixels unless `exact`. */
  boardPoint(event, exact = false) {
    const rect = this.wrap.getBoundingClientRect();
    const round = exact ? (v) => v : Math.round;
    return {
      x: round((event.clientX - rect.left - this.wrap.clientLeft - this.panX) / this.scale),
      y: round((event.clientY - rect.top - this.wrap.clientTop - this.panY) / this.scale),
    };
  }

  /** The part of the board on screen, in board coordinates. */
  visibleRect() {
    return {
      x: -this.panX / this.scale,
      y: -this.panY / this.scale,
      w: this.wrap.clientWidth / this.scale,
      h: this.wrap.clientHeight / this.scale,
    };
  }

  /** Zoom to `scale`, keeping the board point under (sx, sy) (wrap pixels) where it is. */
  zoomTo(scale, sx = this.wrap.clientWidth / 2, sy = this.wrap.clientHeight / 2) {
    const next = clamp(scale, MIN_SCALE, MAX_SCALE);
    const bx = (sx - this.panX) / this.scale;
    const by = (sy - this.panY) / this.scale;
    this.scale = next;
    this.panX = sx - bx * next;
    this.panY = sy - by * next;
    this.apply();
  }

  panBy(dx, dy) {
    this.panX -= dx;
    this.panY -= dy;
    this.apply();
  }

  reset() {
    this.scale = 1;
    this.panX = 0;
    this.panY = 0;
    this.apply();
  }

  /** Show all of `boxes` ({x, y, w, h}), at most at 100 %; nothing to show resets the view. */
  fit(boxes) {
    if (!boxes.length) return this.reset();
    const left = Math.min(...boxes.map((b) => b.x));
    const top = Math.min(...boxes.map((b) => b.y));
    const right = Math.max(...boxes.map((b) => b.x + b.w));
    const bottom = Math.max(...boxes.map((b) => b.y + b.h));
    const width = Math.max(1, this.wrap.clientWidth - 2 * FIT_MARGIN);
    const height = Math.max(1, this.wrap.clientHeight - 2 * FIT_MARGIN);
    this.scale = clamp(Math.min(width / (right - left), height / (bottom - top), 1), MIN_SCALE, MAX_SCALE);
    this.panX = (this.wrap.clientWidth - (right - left) * this.scale) / 2 - left * this.scale;
    this.panY = (this.wrap.clientHeight - (bottom - top) * this.scale) / 2 - top * this.scale;
    this.apply();
  }

  /** Pan the view with the pointer until it is released. */
  dragPan(event) {
    event.preventDefault();
    const wrap = this.wrap;
    wrap.setPointerCapture(event.pointerId);
    let last = { x: event.clientX, y: event.clientY };
    const move = (e) => {
      this.panBy(last.x - e.clientX, last.y - e.clientY);
      last = { x: e.clientX, y: e.clientY };
    };
    const end = () => {
      wrap.removeEventListener("pointermove", move);
      wrap.removeEventListener("pointerup", end);
      wrap.removeEventListener("pointercancel", end);
    };
    wrap.addEventListener("pointermove", move);
    wrap.addEventListener("pointerup", end);
    wrap.addEventListener("pointercancel", end);
  }

  /** A finger on the empty board: one pans, two pinch (zoom around their middle, pan with it). */
  touch(event) {
    const fingers = (this.fingers ??= new Map());
    fingers.set(event.pointerId, { x: event.clientX, y: event.clientY });
    if (fingers.size > 1) return; // the first finger's listeners follow every finger
    const rect = this.wrap.getBoundingClientRect();
    const spread = () => {
      const [a, b] = [...fingers.values()];
      return {
        distance: Math.hypot(a.x - b.x, a.y - b.y) || 1,
        x: (a.x + b.x) / 2 - rect.left,
        y: (a.y + b.y) / 2 - rect.top,
      };
    };
    const move = (e) => {
      const finger = fingers.get(e.pointerId);
      if (!finger) return;
      const before = fingers.size > 1 ? spread() : null;
      fingers.set(e.pointerId, { x: e.clientX, y: e.clientY });
      if (!before) {
        this.panBy(finger.x - e.clientX, finger.y - e.clientY);
        return;
      }
      const now = spread();
      this.panBy(before.x - now.x, before.y - now.y);
      this.zoomTo((this.scale * now.distance) / before.distance, now.x, now.y);
    };
    const end = (e) => {
      fingers.delete(e.pointerId);
      if (fingers.size) return;
      this.wrap.removeEventListener("pointermove", move);
      this.wrap.removeEventListener("pointerup", end);
      this.wrap.removeEventListener("pointercancel", end);
    };
    this.wrap.addEventListener("pointermove", move);
    this.wrap.addEventListener("pointerup", end);
    this.wrap.addEventListener("pointercancel", end);
  }

  /** Wheel, keys (when `active()`) and the zoom buttons; `boxes()` are what "fit" shows. */
  install({ active, boxes, buttons }) {
    this.wrap.addEventListener(
      "wheel",
      (event) => {
        event.preventDefault();
        const rect = this.wrap.getBoundingClientRect();
        if (event.ctrlKey || event.metaKey) {
          // A pinch arrives as small deltas, a mouse wheel's notch as ~100: both feel even.
          const factor = Math.exp(-clamp(event.deltaY, -100, 100) / 300);
          this.zoomTo(this.scale * factor, event.clientX - rect.left, event.clientY - rect.top);
        } else {
          const lines = event.deltaMode === 1 ? 16 : 1;
          const dx = event.shiftKey && !event.deltaX ? event.deltaY : event.deltaX;
          const dy = event.shiftKey && !event.deltaX ? 0 : event.deltaY;
          this.panBy(dx * lines, dy * lines);
        }
      },
      { passive: false },
    );
    document.addEventListener("keydown", (event) => {
      if (!active() || event.ctrlKey || event.metaKey || event.altKey) return;
      if (event.target.closest?.("input, textarea, select, [contenteditable]")) return;
      if (event.key === "+" || event.key === "=") this.zoomTo(this.scale * STEP);
      else if (event.key === "-" || event.key === "_") this.zoomTo(this.scale / STEP);
      else if (event.key === "0") this.fit(boxes());
      else return;
      event.preventDefault();
    });
    // Space pans, unless a text field or a button beside the board has the focus.
    const spaceIsOurs = (event) =>
      event.key === " " &&
      active() &&
      !event.target.closest?.("input, textarea, select, [contenteditable]") &&
      !(event.target.closest?.("button, a") && !this.wrap.contains(event.target));
    document.addEventListener("keydown", (event) => {
      if (!spaceIsOurs(event)) return;
      event.preventDefault(); // no page scroll, no button pressed
      this.spaceHeld = true;
      this.wrap.classList.add("panning");
    });
    document.addEventListener("keyup", (event) => {
      if (event.key !== " " || !this.spaceHeld) return;
      event.preventDefault();
      this.spaceHeld = false;
      this.wrap.classList.remove("panning");
    });
    // Before any item sees it: the middle button, or Space and a press anywhere, drags the view.
    this.wrap.addEventListener(
      "pointerdown",
      (event) => {
        if (event.target.closest(".zoom-bar")) return;
        if (event.pointerType === "touch" && (!event.target.closest(".item") || this.fingers?.size)) {
          event.stopPropagation();
          this.touch(event);
        } else if (event.button === 1 || (event.button === 0 && this.spaceHeld)) {
          event.stopPropagation();
          this.dragPan(event);
        }
      },
      true,
    );
    buttons.zoomIn.addEventListener("click", () => this.zoomTo(this.scale * STEP));
    buttons.zoomOut.addEventListener("click", () => this.zoomTo(this.scale / STEP));
    buttons.fit.addEventListener("click", () => this.fit(boxes()));
    buttons.level?.addEventListener("click", () => this.zoomTo(1));
  }
}
