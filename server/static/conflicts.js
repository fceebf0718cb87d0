// What the page says when an edit met someone else's (docs/browser-client.md, "What it
// guarantees, and how", **Conflicts.**): the client settles each conflict; this turns its resolution into a notice, with the user's
// own text when it was not applied.

import { words as fieldWords } from "/static/undo.js";
import { notify } from "/static/notices.js";

const FIELD_WORDS = { x: "position", y: "position", w: "size", h: "size", z: "stacking", data: "content", name: "name" };

/** Tell the user how a conflict was settled (the detail of a handle's `conflict` event). */
export function conflictNotice({ entity, fields, resolution, mine, intent }) {
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
