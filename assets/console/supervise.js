// Supervisors' actions on the board's rows: listen to, whisper to, barge in on or take over
// a call talking with a seat (the router rings the supervisor's console when it has audio,
// else its own SIP phone), move a waiting call, unpause or log out a seat. Each is audited
// by the router.

import {request} from "./api.js";
import {el, showError} from "./dom.js";

const MODES = [["listen", "Écouter"], ["whisper", "Souffler"], ["barge", "Intervenir"]];

function button(action, label, act, reload) {
  const b = el("button", label);
  b.type = "button";
  b.dataset.action = action;
  b.addEventListener("click", () => act().then(reload).catch((e) => showError(e.message)));
  return b;
}

/** The action buttons of a call on the board, in a cell. */
export function callActions(c, reload) {
  const cell = el("td");
  const path = `/api/supervisor/calls/${encodeURIComponent(c.id)}`;
  const seats = (c.seats ?? []).filter((s) => s !== "external");
  if (!c.waiting && seats.length === 1) {
    for (const [mode, label] of MODES) {
      cell.append(button(mode, label, () => request("POST", `${path}/listen`, {mode}), reload));
    }
    const takeover = () => request("POST", `${path}/takeover`, {});
    cell.append(button("takeover", "Prendre l'appel", takeover, reload));
    cell.append(button("stop", "Quitter", () => request("POST", `${path}/stop`, {}), reload));
  }
  if (c.waiting) cell.append(button("move", "Déplacer…", () => move(path), reload));
  return cell;
}

async function move(path) {
  const queue = window.prompt("File de destination (vide : la même) :");
  if (queue === null) return;
  const priority = window.prompt("Priorité P0, P1, P2, P3 ou NR (vide : inchangée) :");
  if (priority === null) return;
  const body = {};
  if (queue.trim()) body.queue = queue.trim();
  if (priority.trim()) body.priority = priority.trim().toUpperCase();
  await request("POST", `${path}/move`, body);
}

/** The action buttons of a seat on the board, in a cell. */
export function seatActions(s, reload) {
  const cell = el("td");
  const path = `/api/supervisor/seats/${encodeURIComponent(s.seat)}`;
  const state = s.state?.state;
  if (state === "paused") {
    const unpause = () => request("POST", `${path}/unpause`, {});
    cell.append(button("unpause", "Remettre en distribution", unpause, reload));
  }
  if (state !== "offline" && s.state?.detail?.reason !== "logged_out") {
    const logout = () => request("POST", `${path}/logout`, {});
    cell.append(button("logout", "Déconnecter", logout, reload));
  }
  return cell;
}
