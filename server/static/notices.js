// The notices at the page's corner: non-blocking, clearing themselves, never more than four,
// a repeated one replacing the earlier. Errors from the API become a sentence a person reads.

import { ApiError } from "/static/moodboard-client.js";
import { $, el } from "/static/dom.js";

const MAX_NOTICES = 4;

/** Show a notice; `action` `{label, run}` adds a button (e.g. "Undo" after a delete). */
export function notify(message, { kind = "info", detail = null, timeoutMs = 8000, action = null } = {}) {
  const notice = el(
    "div",
    { class: `notice ${kind}`, role: "status", "data-testid": "notice", "data-kind": kind },
    el("div", { class: "notice-text", text: message }),
    detail && el("div", { class: "notice-detail", text: detail }),
    action &&
      el("button", {
        class: "link notice-action",
        "data-testid": "notice-action",
        text: action.label,
        onclick: () => {
          notice.remove();
          action.run();
        },
      }),
    el("button", { class: "notice-close", "aria-label": "Dismiss", text: "×", onclick: () => notice.remove() }),
  );
  const shown = $("#notices");
  for (const old of shown.children) if (old.dataset.message === message) old.remove(); // no repeats
  notice.dataset.message = message;
  shown.append(notice);
  while (shown.children.length > MAX_NOTICES) shown.firstElementChild.remove();
  if (timeoutMs) setTimeout(() => notice.remove(), timeoutMs);
  return notice;
}

/** What went wrong with an API call, in words. */
export function problem(err) {
  return err instanceof ApiError ? err.message : "The server could not be reached.";
}
