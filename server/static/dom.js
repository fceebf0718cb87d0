// The page's DOM helpers: find a node, make one (whatever people typed goes in as text,
// never as HTML), and show one of the page's three views.

export const $ = (selector, root = document) => root.querySelector(selector);

/** A new element: `class`, `text`, `on<event>` handlers and attributes, then its children. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

/** Show one view (`auth-view`, `projects-view` or `project-view`), hide the others. */
export function showView(id) {
  for (const view of ["auth-view", "projects-view", "project-view"]) $(`#${view}`).hidden = view !== id;
}
