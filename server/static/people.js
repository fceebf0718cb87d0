// People on a project: each person's colour, the members panel (owners change roles, remove
// members, invite, see and revoke pending invitations) and the page an invitation link opens
// before anyone signs up ("Alice invited you to Harbour Loft").

import { ApiError } from "/static/moodboard-client.js";
import { notify, problem } from "/static/notices.js";

const ROLES = ["owner", "editor", "viewer"];
const DAY_MS = 24 * 3600 * 1000;

// Twelve colours far apart on the wheel, each readable on white and on the board.
const PEOPLE_COLOURS = [
  "#d1495b", "#2e86de", "#2a9d8f", "#e76f51", "#8e44ad", "#3c8d2f",
  "#c2185b", "#00838f", "#b8860b", "#5c6bc0", "#6d4c41", "#ef6c00",
];
const assigned = new Map(); // user id -> colour, for the open project's members

function hashOf(userId) {
  let hash = 0x811c9dc5; // 32-bit FNV-1a
  for (const ch of String(userId)) {
    hash ^= ch.charCodeAt(0);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/**
 * Give the project's members colours that differ: in the order they joined, each takes the
 * colour its id hashes to, or the next one nobody on the project has yet. Everyone's browser
 * sees the same members, so everyone sees the same colours; someone joining never changes
 * the colour of those already there.
 */
export function assignColours(members) {
  assigned.clear();
  const taken = new Set();
  const ordered = [...members].sort(
    (a, b) => String(a.created_at).localeCompare(String(b.created_at)) || String(a.user_id).localeCompare(String(b.user_id)),
  );
  for (const m of ordered) {
    let slot = hashOf(m.user_id) % PEOPLE_COLOURS.length;
    for (let tries = 0; tries < PEOPLE_COLOURS.length && taken.has(slot); tries++) slot = (slot + 1) % PEOPLE_COLOURS.length;
    taken.add(slot);
    assigned.set(m.user_id, PEOPLE_COLOURS[slot]);
  }
}

/** A person's colour: distinct among the open project's members, the same in every browser. */
export function colourFor(userId) {
  return assigned.get(userId) ?? PEOPLE_COLOURS[hashOf(userId) % PEOPLE_COLOURS.length];
}

/** What a dead link says, from the lookup's (or accept's) answer. */
function deadLinkMessage(err) {
  if (!(err instanceof ApiError)) return "The server could not be reached to check this invitation.";
  if (err.status === 404) return "This invitation link was revoked, or it does not exist.";
  if (/used/.test(err.message)) return "This invitation link was already used.";
  if (/expired/.test(err.message)) return "This invitation link has expired.";
  return "This invitation link is no longer valid.";
}

/** The token of an invitation link in the address (`#/invite/<token>`), or null. */
export function invitationToken() {
  const [, kind, token] = location.hash.split("/");
  return kind === "invite" && token ? token : null;
}

/**
 * The signed-out page for an invitation link: who invited you to which project, the e-mail
 * filled in on the sign-up form; or, for a used, revoked or expired link, that it is dead.
 */
export async function showInvitationLanding(client) {
  const card = document.getElementById("invitation");
  const token = invitationToken();
  card.hidden = !token;
  if (!token) return;
  const title = document.getElementById("invitation-title");
  const detail = document.getElementById("invitation-detail");
  card.dataset.state = "loading";
  title.textContent = "Checking your invitation…";
  detail.textContent = "";
  let offer;
  try {
    offer = await client.api("GET", `/invitations/${encodeURIComponent(token)}`);
  } catch (err) {
    if (invitationToken() !== token) return;
    card.dataset.state = "dead";
    title.textContent = deadLinkMessage(err);
    detail.textContent = "Ask whoever sent it for a new link. If you already joined, log in.";
    return;
  }
  if (invitationToken() !== token) return;
  card.dataset.state = "live";
  const who = offer.invited_by_name || "Someone";
  title.textContent = `${who} invited you to ${offer.project_name}`;
  detail.textContent = `as ${offer.role === "editor" ? "an editor" : `a ${offer.role}`}. Create your account with ${offer.email}, or log in if you have one.`;
  for (const form of ["signup-form", "login-form"]) document.getElementById(form).email.value = offer.email;
  document.querySelector("[data-auth-tab=signup]").click();
  document.getElementById("signup-form").email.value = offer.email; // the tab switch keeps it
  document.getElementById("signup-form").name.focus();
}

/** Accept the invitation of a link opened while signed in, and open its project. */
export async function acceptInvitation(client, token) {
  try {
    const member = await client.api("POST", `/invitations/${token}/accept`);
    location.replace(`#/p/${member.project_id}`);
  } catch (err) {
    const message = err instanceof ApiError && err.status === 410 ? "This invitation was already used or has expired." : problem(err);
    notify(message, { kind: "error" });
    location.replace("#/");
  }
}

/**
 * The members panel. `app`: `client`, `el`, `notify(message, options)`, `problem(err)`,
 * `handle()` (the open ProjectHandle), `me()`, `myRole()`.
 */
export class PeoplePanel {
  constructor(app) {
    this.app = app;
    this.list = document.getElementById("members");
    this.pendingList = document.getElementById("invitations");
    this.form = document.getElementById("member-form");
    this.invitations = []; // the open project's pending invitations (owners only)
    this.loadedFor = null; // the project id they were loaded for
    this.form.addEventListener("submit", (event) => this.submit(event));
    document.getElementById("invite-copy").addEventListener("click", () => this.copyLink());
  }

  reset() {
    assignColours([]);
    this.invitations = [];
    this.loadedFor = null;
    document.getElementById("invite").hidden = true;
    this.pendingList.replaceChildren();
  }

  /** Render the members; owners also get their controls and the pending invitations. */
  render({ membersChanged = false } = {}) {
    const { el } = this.app;
    const handle = this.app.handle();
    if (!handle) return;
    const me = this.app.me();
    const owner = this.app.myRole() === "owner";
    const members = handle.list("member").sort((a, b) => a.name.localeCompare(b.name));
    assignColours(members);
    this.list.replaceChildren(
      ...members.map((m) => {
        const self = m.user_id === me?.id;
        const row = el(
          "li",
          { "data-testid": "member", "data-user-id": m.user_id, "data-role": m.role },
          el("span", { class: "dot", style: `background:${colourFor(m.user_id)}` }),
          el("span", { class: "member-name", text: self ? `${m.name} (you)` : m.name, title: m.email }),
        );
        if (owner) {
          const select = el("select", { class: "member-role", "data-testid": "member-role", "aria-label": `Role of ${m.name}` });
          for (const role of ROLES) select.append(el("option", { value: role, text: role, selected: role === m.role }));
          select.addEventListener("change", () => this.changeRole(m, select));
          row.append(select);
        } else {
          row.append(el("span", { class: "role", text: m.role }));
        }
        if (owner || self) {
          row.append(
            el("button", {
              class: "link danger",
              "data-testid": self ? "member-leave" : "member-remove",
              text: self ? "Leave" : "Remove",
              title: self ? "Leave this project" : `Remove ${m.name} from this project`,
              onclick: () => this.remove(m, self),
            }),
          );
        }
        return row;
      }),
    );
    this.form.hidden = !owner;
    document.getElementById("invitations-panel").hidden = !owner || this.invitations.length === 0;
    if (!owner) return;
    if (this.loadedFor !== handle.id || membersChanged) this.loadInvitations();
    else this.renderInvitations();
  }

  async loadInvitations() {
    const handle = this.app.handle();
    if (!handle) return;
    const projectId = handle.id;
    this.loadedFor = projectId;
    try {
      const pending = await this.app.client.api("GET", `/projects/${projectId}/invitations`);
      if (this.app.handle()?.id !== projectId) return;
      this.invitations = pending;
    } catch (err) {
      if (err instanceof ApiError && err.status === 403) this.invitations = []; // no longer an owner
      else this.app.notify(this.app.problem(err), { kind: "error" });
    }
    this.renderInvitations();
  }

  renderInvitations() {
    const { el } = this.app;
    const owner = this.app.myRole() === "owner";
    document.getElementById("invitations-panel").hidden = !owner || this.invitations.length === 0;
    this.pendingList.replaceChildren(
      ...this.invitations.map((inv) => {
        const days = Math.max(0, Math.ceil((new Date(inv.expires_at).getTime() - Date.now()) / DAY_MS));
        return el(
          "li",
          { "data-testid": "invitation", "data-id": inv.id },
          el("span", { class: "member-name", text: inv.email, title: `Link valid for ${days} more day${days === 1 ? "" : "s"}` }),
          el("span", { class: "role", text: inv.role }),
          el("button", {
            class: "link danger",
            "data-testid": "invitation-revoke",
            text: "Revoke",
            title: `The link sent to ${inv.email} stops working`,
            onclick: () => this.revoke(inv),
          }),
        );
      }),
    );
  }

  async changeRole(member, select) {
    const handle = this.app.handle();
    try {
      await this.app.client.api("PATCH", `/projects/${handle.id}/members/${member.user_id}`, { role: select.value });
      this.app.notify(`${member.name} is now ${select.value === "editor" ? "an editor" : `a ${select.value}`}.`);
    } catch (err) {
      select.value = member.role;
      const lastOwner = err instanceof ApiError && err.status === 409;
      this.app.notify(lastOwner ? "A project needs at least one owner: make someone else owner first." : this.app.problem(err), { kind: "error" });
    }
  }

  async remove(member, self) {
    const handle = this.app.handle();
    const question = self
      ? `Leave “${handle.project?.name ?? "this project"}”? You will need a new invitation to come back.`
      : `Remove ${member.name} from “${handle.project?.name ?? "this project"}”? They lose access at once.`;
    if (!window.confirm(question)) return;
    try {
      await this.app.client.api("DELETE", `/projects/${handle.id}/members/${member.user_id}`);
      if (!self) this.app.notify(`${member.name} was removed.`);
    } catch (err) {
      const lastOwner = err instanceof ApiError && err.status === 409;
      this.app.notify(lastOwner ? "A project needs at least one owner: make someone else owner first." : this.app.problem(err), { kind: "error" });
    }
  }

  async revoke(invitation) {
    const handle = this.app.handle();
    try {
      await this.app.client.api("DELETE", `/projects/${handle.id}/invitations/${invitation.id}`);
      this.app.notify(`The invitation for ${invitation.email} was revoked.`);
    } catch (err) {
      this.app.notify(this.app.problem(err), { kind: "error" });
    }
    this.loadInvitations();
  }

  /**
   * The member form's two buttons: "Add member" for someone who has an account (they join at
   * once), "Invite by link" for anyone (a link to send them). The owner says which, so no
   * request of a normal session fails: there is no asking "has this e-mail an account?" first.
   */
  submit(event) {
    event.preventDefault();
    const body = { email: this.form.email.value.trim(), role: this.form.role.value };
    document.getElementById("invite").hidden = true;
    if (event.submitter?.value === "invite") this.invite(body);
    else this.add(body);
  }

  async add(body) {
    const handle = this.app.handle();
    try {
      await this.app.client.api("POST", `/projects/${handle.id}/members`, body);
      this.form.reset();
      this.app.notify("Member added.");
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        // A slip, not the way to invite: say what to do instead, in one click.
        this.app.notify(`No account uses ${body.email} yet.`, {
          kind: "error",
          detail: "Invite them with a link instead.",
          action: { label: "Invite by link", run: () => this.invite(body) },
        });
      } else {
        this.app.notify(this.app.problem(err), { kind: "error" });
      }
    }
  }

  async invite(body) {
    const handle = this.app.handle();
    try {
      const invitation = await this.app.client.api("POST", `/projects/${handle.id}/invitations`, body);
      document.getElementById("invite-link").value = `${location.origin}/#/invite/${invitation.token}`;
      document.getElementById("invite-for").textContent = body.email;
      document.getElementById("invite").hidden = false;
      this.form.reset();
      this.loadInvitations();
    } catch (err) {
      this.app.notify(this.app.problem(err), { kind: "error" });
    }
  }

  async copyLink() {
    const link = document.getElementById("invite-link");
    link.select();
    try {
      await navigator.clipboard.writeText(link.value);
      this.app.notify("Invitation link copied.");
    } catch {
      this.app.notify("Select the link and copy it.");
    }
  }
}
