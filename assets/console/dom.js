// Small DOM helpers. Text only (textContent), never innerHTML: callers' data stays data.

export const $ = (id) => document.getElementById(id);

/** A new element with its text. */
export function el(tag, text) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Replaces the children of `node` by `children`. */
export function fill(node, children) {
  node.replaceChildren(...children);
}

/** A table row of cells. */
export function row(cells) {
  const tr = el("tr");
  tr.append(...cells.map((c) => el("td", c)));
  return tr;
}

export function clock(ms) {
  return new Date(ms).toLocaleTimeString("fr-FR");
}

export function duration(ms) {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
}

/** Shows an error sentence (or hides the banner with null). */
export function showError(message) {
  const banner = $("error");
  banner.textContent = message ?? "";
  banner.hidden = !message;
}
