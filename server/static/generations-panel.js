// The generations panel: the prompt form (a request over REST, then an item on the board that
// follows the generation), the project's last eight generations with their progress or
// picture, and Cancel on one's own that is still queued or running.

import { ApiError } from "/static/moodboard-client.js";
import { $, el } from "/static/dom.js";
import { notify, problem } from "/static/notices.js";
import { progressBar } from "/static/board-items.js";

const SHOWN = 8;

/**
 * `app`: `client`, `handle()` (the open ProjectHandle), `roomId()`, `me()`,
 * `addItem(kind, data, size)`, `roomItems()`, `renderItem(item)`.
 */
export class GenerationsPanel {
  constructor(app) {
    this.app = app;
    this.mine = null; // the generation this tab requested last
    $("#generate-form").addEventListener("submit", (event) => this.submit(event));
  }

  async submit(event) {
    event.preventDefault();
    const form = event.target;
    const prompt = form.prompt.value.trim();
    const roomId = this.app.roomId();
    if (!roomId) {
      notify("Create a room first.", { kind: "info" });
      return;
    }
    const button = $("[data-testid=generate-submit]");
    button.disabled = true;
    try {
      const gen = await this.app.client.generate(this.app.handle().id, roomId, prompt);
      this.mine = gen.id;
      form.reset();
      // The picture lands on the board as an item that follows the generation.
      this.app.addItem("generation", { generation_id: gen.id, prompt }, { w: 256, h: 256 });
      this.render();
    } catch (err) {
      const message = err instanceof ApiError && err.status === 402 ? "Not enough credits for a generation." : problem(err);
      notify(message, { kind: "error" });
    } finally {
      button.disabled = false;
    }
  }

  /** A generation's status, progress or result changed: the panel and its board items follow. */
  changed(gen) {
    if (!gen) return;
    this.render();
    for (const item of this.app.roomItems()) if (item.data?.generation_id === gen.id) this.app.renderItem(item);
  }

  render() {
    const handle = this.app.handle();
    if (!handle) return;
    const gens = handle
      .list("generation")
      .sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)))
      .slice(0, SHOWN);
    $("#generations").replaceChildren(...gens.map((g) => this.row(g)));
  }

  row(g) {
    const mine = g.id === this.mine;
    const row = el("li", { class: "generation", "data-testid": mine ? "generate-status" : "generation", "data-status": g.status });
    row.append(el("div", { class: "gen-prompt", text: g.prompt }));
    if (g.result?.url) {
      row.append(el("img", { class: "gen-thumb", src: g.result.url, alt: g.prompt, "data-testid": mine ? "generate-result" : null }));
    } else if (g.status === "failed" || g.status === "canceled") {
      row.append(el("div", { class: "gen-error", text: g.status === "failed" ? g.error || "failed" : "canceled" }));
    } else {
      row.append(progressBar(el, g.progress ?? 0, g.status, mine ? "generate-progress" : "generation-progress"));
      if (g.requested_by === this.app.me()?.id && (g.status === "queued" || g.status === "running")) {
        row.append(el("button", { class: "link", "data-testid": "generation-cancel", text: "Cancel", onclick: () => this.cancel(g.id) }));
      }
    }
    return row;
  }

  async cancel(id) {
    try {
      await this.app.client.api("POST", `/generations/${id}/cancel`);
    } catch (err) {
      notify(problem(err), { kind: "error" });
    }
  }
}
