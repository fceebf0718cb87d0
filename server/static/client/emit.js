// Part of the Moodboard browser client (../moodboard-client.js): how it tells the app.

/** Dispatch a `CustomEvent` of `type` with `detail` on `target`. */
export function emit(target, type, detail) {
  target.dispatchEvent(new CustomEvent(type, { detail }));
}
