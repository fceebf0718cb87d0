// The connection indicator in the header: live, reconnecting, offline, with the edits kept in
// this browser until they can be sent.

import { $ } from "/static/dom.js";

const CONNECTION_LABELS = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  offline: "Offline",
  unauthorized: "Signed out",
  closed: "Offline",
};

/** Show the client's status; `handle`: the open project's, whose unsent edits are counted. */
export function renderConnection(client, handle) {
  const node = $("#connection");
  const pending = handle ? handle.pendingCount : 0;
  node.dataset.state = client.status;
  let label = CONNECTION_LABELS[client.status] ?? client.status;
  if (pending && client.status !== "live") label += ` · ${pending} unsent`;
  $(".label", node).textContent = label;
  node.title =
    client.status === "live"
      ? "Connected: edits are shared as you make them"
      : "Edits are kept in this browser and sent when the connection is back";
}
