// Notes: their colour (chosen when one is made, changed later from the note's own palette), a
// visible way to edit them (the pencil, or a double-click), a note that grows with its text
// while it is written (and scrolls when someone made it smaller than its text), and "Ann is
// editing" on the others' boards.
// Who edits which note travels in the presence state (`editing: item id`), never in the
// event log: only the finished text is an edit.

export const NOTE_COLOURS = [
  ["#fff8c5", "Yellow"],
  ["#ffd9e2", "Pink"],
  ["#d6ecff", "Blue"],
  ["#d9f2d0", "Green"],
  ["#e8defc", "Lilac"],
  ["#ffffff", "White"],
];
const MAX_GROWN_HEIGHT = 900; // board pixels a note grows to by itself while written

/** A colour for a note's data, only if it is plainly one (the data comes from other people). */
function noteColour(value) {
  return typeof value === "string" && /^#[0-9a-f]{3,8}$/i.test(value) ? value : NOTE_COLOURS[0][0];
}

/** The body of a note item: its text on its colour, the edit and the colour buttons. */
export function noteBody(el, data) {
  const colour = noteColour(data.color);
  return el(
    "div",
    { class: "note", style: `background:${colour}`, "data-colour": colour },
    el("div", { class: "note-text", "data-testid": "note-text", text: data.text ?? "" }),
    el("button", { class: "note-edit-button", "data-testid": "note-edit-button", title: "Edit the text (or double-click)", "aria-label": "Edit note", text: "✎" }),
    el("button", { class: "note-colour-button", type: "button", "data-testid": "note-colour-button", title: "Change the colour", "aria-label": "Change the note's colour" }),
  );
}

/** The colour swatches beside "+ Note": a click makes a note of that colour. */
export function noteColourPicker(el, container, create) {
  container.replaceChildren(
    ...NOTE_COLOURS.map(([colour, name]) =>
      el("button", {
        class: "note-colour",
        type: "button",
        style: `background:${colour}`,
        title: `${name} note`,
        "aria-label": `New ${name.toLowerCase()} note`,
        "data-testid": "note-colour",
        "data-colour": colour,
        onclick: () => create(colour),
      }),
    ),
  );
}

/**
 * The note buttons on the board (`app` as for editNote, plus canEdit()): the pencil edits the
 * text, the colour button opens the note's palette.
 */
export function installNoteButtons(board, app) {
  board.addEventListener("click", (event) => {
    const node = event.target.closest(".item");
    const item = node && app.handle()?.get("item", node.dataset.id);
    if (!item || item.kind !== "note" || !app.canEdit()) return;
    if (event.target.closest(".note-edit-button")) editNote(app, node, item);
    else if (event.target.closest(".note-colour-button")) togglePalette(app, node, item.id);
  });
}

/**
 * Open (or close) a note's palette. A colour chosen is one versioned, undoable edit of the
 * note's `data` on the version the note has then, so it reaches every board like any edit
 * (and meets someone else's content edit as a conflict, docs/protocol.md §3.3).
 */
function togglePalette(app, node, itemId) {
  const body = node.querySelector(".note");
  const open = body?.querySelector(".note-palette");
  if (!body || open) {
    open?.remove();
    return;
  }
  const current = body.dataset.colour;
  const palette = app.el(
    "div",
    { class: "note-palette", role: "group", "aria-label": "Note colour", "data-testid": "note-palette" },
    ...NOTE_COLOURS.map(([colour, name]) =>
      app.el("button", {
        class: "note-colour",
        type: "button",
        style: `background:${colour}`,
        title: name,
        "aria-label": name,
        "aria-pressed": String(colour === current),
        "data-testid": "note-palette-colour",
        "data-colour": colour,
        onclick: () => {
          close();
          const item = app.handle()?.get("item", itemId);
          if (!item || noteColour(item.data.color) === colour) return;
          app.undo().update("item", itemId, { data: { ...item.data, color: colour } }, { baseVersion: item.version || undefined, was: item });
        },
      }),
    ),
  );
  const outside = (event) => {
    if (!palette.contains(event.target) && !event.target.closest?.(".note-colour-button")) close();
  };
  const escape = (event) => {
    if (event.key === "Escape") close();
  };
  function close() {
    palette.remove();
    document.removeEventListener("pointerdown", outside, true);
    document.removeEventListener("keydown", escape, true);
  }
  document.addEventListener("pointerdown", outside, true);
  document.addEventListener("keydown", escape, true);
  body.append(palette);
}

/**
 * Edit a note's text in place. `app`: page, el, undo (an UndoHistory), handle, shareEditing()
 * (tell the others, through presence), renderItem(item).
 */
export function editNote(app, node, item) {
  const { page } = app;
  if (page.editing === item.id) return;
  const area = app.el("textarea", { class: "note-edit", "data-testid": "note-edit", "aria-label": "Note text" });
  area.value = item.data.text ?? "";
  const body = node.querySelector(".note-text");
  if (!body) return;
  body.replaceWith(area);
  node.classList.add("editing");
  area.focus();
  const base = item.version || undefined;
  page.editing = item.id;
  app.shareEditing();
  let height = item.h;
  const grow = () => {
    // The textarea fills the note: when its text needs more room, the note grows.
    const wanted = Math.min(MAX_GROWN_HEIGHT, height + area.scrollHeight - area.clientHeight);
    if (wanted > height) {
      height = Math.ceil(wanted);
      node.style.height = `${height}px`;
    }
  };
  area.addEventListener("input", grow);
  const finish = () => {
    page.editing = null;
    node.classList.remove("editing");
    app.shareEditing();
    const text = area.value;
    node.dataset.signature = ""; // render the text again, whatever happens
    const fields = {};
    if (text !== (item.data.text ?? "")) fields.data = { ...item.data, text };
    if (height !== item.h) fields.h = height;
    if (Object.keys(fields).length) app.undo().update("item", item.id, fields, { baseVersion: base, was: item });
    app.renderItem(app.handle().get("item", item.id) ?? item);
  };
  area.addEventListener("blur", finish, { once: true });
  area.addEventListener("keydown", (e) => {
    if ((e.key === "Enter" && (e.metaKey || e.ctrlKey)) || e.key === "Escape") area.blur();
  });
}

/** Item id -> the name of someone in `roomId` editing that note, from their presence. */
export function noteEditors(peers, roomId) {
  const editors = new Map();
  for (const peer of peers.values()) {
    const state = peer.state || {};
    if (state.room_id === roomId && typeof state.editing === "string") editors.set(state.editing, String(peer.name ?? "Someone"));
  }
  return editors;
}

/** Show "Ann is editing" on the notes someone else edits; clear it where nobody does. */
export function renderEditors(el, itemEls, editors) {
  for (const [id, node] of itemEls) {
    const name = editors.get(id);
    let badge = node.querySelector(".editing-badge");
    if (name && badge?.dataset.name !== name) {
      badge?.remove();
      badge = el("div", { class: "editing-badge", "data-testid": "note-editing", role: "status", text: `${name} is editing…` });
      badge.dataset.name = name;
      node.append(badge);
    } else if (!name && badge) {
      badge.remove();
    }
    node.classList.toggle("edited-by-other", Boolean(name));
  }
}
