// Pictures from the designer's own disk: the file picker, a drop onto the board, a paste.
// Each file goes to POST /api/projects/{pid}/resources (the server reads its type from the
// bytes and counts it against the project's storage) and lands as an `image` item that
// shows it by `data.resource_id`. A picture that cannot load shows a placeholder.

import { ApiError } from "/static/moodboard-client.js";

export const PICTURE_TYPES = ["image/png", "image/jpeg", "image/webp", "image/gif"];
const LONGEST_SIDE = 280; // a new picture lands this big on its longest side (px), in proportion
const FALLBACK_SIZE = { w: 240, h: 180 };

export function resourceUrl(projectId, resourceId) {
  return `/api/projects/${encodeURIComponent(projectId)}/resources/${encodeURIComponent(resourceId)}`;
}

/** A stand-in for a picture that is missing or cannot load: what it was, and that it is gone. */
export function pictureMissing(el, caption) {
  return el(
    "div",
    { class: "picture-missing", "data-testid": "picture-missing", role: "img", "aria-label": "Picture unavailable" },
    el("div", { class: "picture-missing-icon", "aria-hidden": "true" }),
    el("div", { class: "picture-missing-text", text: "Picture unavailable" }),
    caption && el("div", { class: "picture-missing-caption", text: caption }),
  );
}

/** The body of an image item: its uploaded picture (or a web one), or the placeholder. */
export function pictureBody(el, projectId, data) {
  const caption = typeof data.name === "string" ? data.name : typeof data.caption === "string" ? data.caption : "";
  let src = null;
  if (typeof data.resource_id === "string" && data.resource_id) src = resourceUrl(projectId, data.resource_id);
  else if (typeof data.url === "string" && /^(https?:\/\/|\/)/.test(data.url)) src = data.url;
  if (!src) return pictureMissing(el, caption);
  const img = el("img", { src, alt: caption || "picture", draggable: "false", "data-testid": "picture" });
  img.addEventListener("error", () => img.replaceWith(pictureMissing(el, caption)), { once: true });
  return img;
}

/** The size a picture lands with on the board: its proportions, the longest side bounded. */
async function landingSize(file) {
  try {
    const bitmap = await createImageBitmap(file);
    const { width, height } = bitmap;
    bitmap.close();
    if (!width || !height) return FALLBACK_SIZE;
    const scale = LONGEST_SIDE / Math.max(width, height);
    return { w: Math.max(40, Math.round(width * scale)), h: Math.max(40, Math.round(height * scale)) };
  } catch {
    return FALLBACK_SIZE; // the server decides whether it is a picture
  }
}

function pictureFiles(list) {
  return [...(list ?? [])].filter((f) => f && f.kind !== "string");
}

/**
 * Wire the three ways in. `app` gives what the page knows: `client`, `handle()` (the open
 * project), `canEdit()`, `roomId()`, `addItem(kind, data, size, spot)`, `boardPoint(event)`,
 * `notify(message, options)`.
 */
export function installPictures(app) {
  const input = document.getElementById("picture-input");
  const wrap = document.getElementById("board-wrap");

  async function place(files, spot = null) {
    const handle = app.handle();
    if (!handle || !files.length) return;
    if (!app.canEdit()) {
      app.notify("View only: your role on this project cannot add pictures.", { kind: "info" });
      return;
    }
    if (!app.roomId()) {
      app.notify("Create a room first.", { kind: "info" });
      return;
    }
    const refused = files.filter((f) => !PICTURE_TYPES.includes(f.type));
    for (const file of refused) {
      app.notify(`“${file.name || "This file"}” is not a PNG, JPEG, WebP or GIF picture.`, { kind: "error" });
    }
    const wanted = files.filter((f) => PICTURE_TYPES.includes(f.type));
    if (!wanted.length) return;
    const label = wanted.length === 1 ? `“${wanted[0].name || "picture"}”` : `${wanted.length} pictures`;
    const busy = app.notify(`Uploading ${label}…`, { kind: "info", timeoutMs: 0 });
    busy.dataset.kind = "upload";
    try {
      for (const [n, file] of wanted.entries()) {
        const size = await landingSize(file);
        let resource;
        try {
          resource = await app.client.upload(handle.id, file);
        } catch (err) {
          const why = err instanceof ApiError ? err.message : "the server could not be reached";
          app.notify(`“${file.name || "The picture"}” was not uploaded: ${why}`, { kind: "error" });
          continue;
        }
        if (app.handle() !== handle) return; // the user left the project meanwhile
        const at = spot && { x: Math.max(0, spot.x - size.w / 2 + n * 24), y: Math.max(0, spot.y - size.h / 2 + n * 24) };
        const data = { resource_id: resource.id };
        if (file.name) data.name = file.name.slice(0, 200);
        app.addItem("image", data, size, at);
      }
    } finally {
      busy.remove();
    }
  }

  input.addEventListener("change", () => {
    const files = [...input.files];
    input.value = ""; // the same file may be chosen again
    place(files);
  });
  document.getElementById("add-image").addEventListener("click", () => input.click());
  document.getElementById("add-image-url").addEventListener("click", () => {
    const url = window.prompt("Address of a picture on the web");
    if (url && /^(https?:\/\/|\/)/.test(url.trim())) app.addItem("image", { url: url.trim() }, FALLBACK_SIZE);
    else if (url) app.notify("A picture's address starts with http://, https:// or /.", { kind: "error" });
  });

  const carriesFiles = (event) => [...(event.dataTransfer?.types ?? [])].includes("Files");
  wrap.addEventListener("dragover", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy"; // a viewer's drop is told why nothing happens
    wrap.classList.add("drop-target");
  });
  wrap.addEventListener("dragleave", (event) => {
    if (!wrap.contains(event.relatedTarget)) wrap.classList.remove("drop-target");
  });
  wrap.addEventListener("drop", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    wrap.classList.remove("drop-target");
    place(pictureFiles(event.dataTransfer.files), app.boardPoint(event));
  });
  // A file dropped beside the board must not replace the page with the file.
  window.addEventListener("dragover", (event) => carriesFiles(event) && event.preventDefault());
  window.addEventListener("drop", (event) => carriesFiles(event) && event.preventDefault());

  document.addEventListener("paste", (event) => {
    if (!app.handle() || document.getElementById("project-view").hidden) return;
    if (event.target.closest?.("input, textarea, [contenteditable]")) return; // pasting text
    const files = pictureFiles(event.clipboardData?.files);
    if (!files.length) return;
    event.preventDefault();
    place(files);
  });
}
