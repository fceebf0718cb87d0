// The sign-in view: the "Log in" and "Create account" tabs and their forms.

import { $ } from "/static/dom.js";
import { problem } from "/static/notices.js";

/** Show the login or the sign-up form (`name`: "login" or "signup"). */
export function authTab(name) {
  for (const t of document.querySelectorAll("[data-auth-tab]")) t.classList.toggle("active", t.dataset.authTab === name);
  $("#login-form").hidden = name !== "login";
  $("#signup-form").hidden = name !== "signup";
  $("#auth-error").textContent = "";
}

/** Wire the tabs and forms; `signedIn(user)` runs with the user once the server says yes. */
export function installSignIn(client, signedIn) {
  for (const tab of document.querySelectorAll("[data-auth-tab]")) {
    tab.addEventListener("click", () => authTab(tab.dataset.authTab));
  }
  const submit = async (event, path, fields) => {
    event.preventDefault();
    const form = new FormData(event.target);
    const body = Object.fromEntries(fields.map((f) => [f, form.get(f)]));
    try {
      const result = await client.api("POST", path, body);
      signedIn(result.user);
    } catch (err) {
      $("#auth-error").textContent = problem(err);
    }
  };
  $("#login-form").addEventListener("submit", (e) => submit(e, "/auth/login", ["email", "password"]));
  $("#signup-form").addEventListener("submit", (e) => submit(e, "/auth/register", ["name", "email", "password"]));
}
