// Part of the Moodboard browser client (../moodboard-client.js): presence throttling.

/** Sends the latest state at most once per interval (the last call always goes out). */
export class Throttle {
  constructor(intervalMs, send) {
    this.intervalMs = intervalMs;
    this.sendFn = send;
    this.last = 0;
    this.timer = null;
    this.value = undefined;
  }
  push(value) {
    this.value = value;
    if (this.timer) return;
    const wait = this.last + this.intervalMs - Date.now();
    if (wait <= 0) this.flush();
    else this.timer = setTimeout(() => this.flush(), wait);
  }
  flush() {
    this.timer = null;
    if (this.value === undefined) return;
    this.last = Date.now();
    const value = this.value;
    this.value = undefined;
    this.sendFn(value);
  }
  cancel() {
    clearTimeout(this.timer);
    this.timer = null;
    this.value = undefined;
  }
}
