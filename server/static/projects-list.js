// The list of the user's projects, and the form that makes a new one.

import { $, el, showView } from "/static/dom.js";
import { notify, problem } from "/static/notices.js";

/** Show the projects view with the user's projects, each a link to its board. */
export async function showProjects(client) {
  showView("projects-view");
  $("#crumb").textContent = "";
  let projects;
  try {
    projects = await client.api("GET", "/projects");
  } catch (err) {
    notify(problem(err), { kind: "error" });
    return;
  }
  $("#project-list").replaceChildren(
    ...projects.map((p) =>
      el(
        "li",
        {},
        el(
          "a",
          { href: `#/p/${p.id}`, class: "project-card", "data-testid": "project-link" },
          el("strong", { text: p.name }),
          el("span", { class: "muted", text: p.description || "" }),
        ),
      ),
    ),
  );
  $("#no-projects").hidden = projects.length > 0;
}

/** "Create project": make it and open its board. */
export function installProjectForm(client) {
  $("#project-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    try {
      const project = await client.api("POST", "/projects", { name: form.name.value.trim() });
      form.reset();
      location.hash = `#/p/${project.id}`;
    } catch (err) {
      notify(problem(err), { kind: "error" });
    }
  });
}
