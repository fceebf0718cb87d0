// What the items on a board look like (a note, a colour, a picture, a generation), and
// where a new one goes. app.js places and updates the item nodes; this draws their insides.

import { pictureBody } from "/static/pictures.js";
import { noteBody } from "/static/notes.js";

/** A colour from item data, only if it is plainly one (the data comes from other people). */
function safeColour(value) {
  return typeof value === "string" && /^#[0-9a-f]{3,8}$/i.test(value) ? value : "#cccccc";
}

/** What an item shows; `generation`: the one a generation item follows (or null). */
export function itemBody(el, item, { projectId, generation }) {
  const data = item.data || {};
  switch (item.kind) {
    case "note":
      return noteBody(el, data);
    case "color":
      return el(
        "div",
        { class: "swatch", style: `background:${safeColour(data.color)}` },
        el("span", { class: "swatch-label", text: data.label || data.color || "" }),
      );
    case "image":
    case "asset":
      return pictureBody(el, projectId, data);
    case "generation":
      return generationBody(el, generation, data);
    default:
      return el("div", { class: "placeholder", text: item.kind });
  }
}

function generationBody(el, gen, data) {
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
    box.append(progressBar(el, gen?.progress ?? 0, status));
  }
  return box;
}

/** A generation's progress, on the board and in the sidebar. */
export function progressBar(el, value, status, testid = "generation-progress") {
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

/** The first place in `view` (the visible part of the board) where a w x h box overlaps none of `items`. */
export function freeSpot(items, view, w, h) {
  const gap = 16;
  const overlaps = (x, y) =>
    items.some((i) => x < i.x + i.w + gap && i.x < x + w + gap && y < i.y + i.h + gap && i.y < y + h + gap);
  const left = Math.round(view.x + 40);
  const top = Math.round(view.y + 40);
  for (let y = top; y + h <= top + Math.max(view.h, h + 80); y += 40) {
    for (let x = left; x + w <= left + Math.max(view.w - 80, w); x += 40) {
      if (!overlaps(x, y)) return { x, y };
    }
  }
  const n = items.length;
  return { x: left + (n % 6) * 36, y: top + (n % 6) * 28 };
}
