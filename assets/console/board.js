// Supervisors: alerts, waiting calls (an escalated call is shown as the wallboard shows it,
// "attente AMU", accompanied by its ARM, not as answered), the supervisor monitoring a call,
// and seats. Re-read when the supervisor event stream says something changed; waiting times
// tick here every second from the router's clock (`now` of the overview).

import {request} from "./api.js";
import {$, clock, duration, el, fill, row, showError} from "./dom.js";
import {lineLabel, pauseLabel, queueLabel, roleLabel, stateLabel} from "./labels.js";
import {callActions, seatActions} from "./supervise.js";
import {accompaniedText, waitsFor} from "/wallboard/board.js";

const MAX_ALERTS = 5;
/** Re-read every so often too: not every change is an event (a forward answered). */
const RELOAD_EVERY_S = 5;
let ticks = 0;
/** The browser's clock minus the router's, from the last overview. */
let skew = 0;
let ticking = null;

const MONITOR_MODES = {listen: "écoute", whisper: "soufflé", barge: "intervention"};

/** "en attente 12 s" (or "attente AMU 12 s" for an escalation) from the router's
 * `waiting_since`, on the browser's clock. */
function waited(since, what = "en attente") {
  return `${what} ${duration(Math.max(0, Date.now() - skew - since))}`;
}

function tick() {
  ticks += 1;
  if (ticks % RELOAD_EVERY_S === 0) loadBoard().catch(() => {});
  for (const cell of document.querySelectorAll("#board-calls [data-since]")) {
    cell.textContent = waited(Number(cell.dataset.since), cell.dataset.what);
  }
}

/** "supervisé par sup1 (écoute)": the supervisor on the call, if any. */
function monitorText(m) {
  const mode = MONITOR_MODES[m.mode] ?? m.mode;
  return `supervisé par ${m.supervisor} (${m.answered ? mode : `${mode}, sonne`})`;
}

/** What the call is doing when it is not waiting for a seat. */
function stateText(c) {
  if (c.forwarding) return "renvoi en cours";
  if (c.seats?.includes("external")) return "renvoyé vers l'extérieur";
  return c.seats?.length ? "en communication" : "accueil";
}

function seatsText(c) {
  const parts = [];
  const seats = (c.seats ?? []).filter((s) => s !== "external");
  if (c.escalation) parts.push(accompaniedText(c.escalation));
  else if (seats.length) parts.push(seats.join(", "));
  if (c.ringing?.length) parts.push(`sonne : ${c.ringing.join(", ")}`);
  if (c.monitor) parts.push(monitorText(c.monitor));
  return parts.join(" · ") || "—";
}

function callRow(c) {
  const tr = row([lineLabel(c.line), c.queue ? queueLabel(c.queue) : "—", c.urgency ?? "NR",
    "", seatsText(c)]);
  const state = tr.children[3];
  if (c.waiting && c.waiting_since) {
    state.dataset.since = String(c.waiting_since);
    if (c.escalation) state.dataset.what = waitsFor(c.escalation.queue);
    state.textContent = waited(c.waiting_since, state.dataset.what);
  } else {
    state.textContent = stateText(c);
  }
  tr.append(callActions(c, loadBoard));
  return tr;
}

export function renderBoard(overview) {
  $("board").hidden = false;
  if (typeof overview.now === "number") skew = Date.now() - overview.now;
  $("board-waiting").textContent = String(overview.waiting ?? 0);
  fill($("board-calls"), (overview.calls ?? []).map(callRow));
  fill($("board-seats"), (overview.seats ?? []).map((s) => {
    const reason = s.state?.detail?.reason;
    const tr = row([s.seat, roleLabel(s.role),
      stateLabel(s.state?.state) + (reason ? ` (${pauseLabel(reason)})` : "")]);
    tr.append(seatActions(s, loadBoard));
    return tr;
  }));
  ticking ??= setInterval(tick, 1000);
}

/** A supervisor alert (a P0 caller left alone) stays on top of the board. */
export function boardAlert(event) {
  const d = event.detail ?? {};
  if (d.reason !== "p0_unaccompanied") return;
  const queue = d.queue ? queueLabel(d.queue) : "la file";
  const next = d.overflow
    ? `aucun régulateur ${queue} connecté : débordement selon le plan`
    : `en attente ${queue}, musique d'attente`;
  const list = $("board-alerts");
  list.prepend(el("li", `${clock(event.at)} Appel P0 laissé seul par ${d.seat} : ${next}`));
  while (list.children.length > MAX_ALERTS) list.lastChild.remove();
}

/** A line and its switch to the backup centre, with the one button that flips it. */
function lineRow(l) {
  const state = l.switched ? `BASCULÉE vers le centre de repli (${l.by})` : "normale";
  const tr = row([lineLabel(l.line), state, l.reason ?? ""]);
  tr.classList.toggle("switched", l.switched);
  const button = el("button", l.switched ? "Rétablir" : "Basculer vers le centre de repli");
  button.type = "button";
  button.disabled = !l.switched && !l.backup;
  if (button.disabled) button.title = "pas d'étape backup dans le plan";
  button.addEventListener("click", () => flipLine(l).catch((e) => showError(e.message)));
  const cell = el("td");
  cell.append(button);
  tr.append(cell);
  return tr;
}

async function flipLine(l) {
  const path = `/api/supervisor/lines/${encodeURIComponent(l.line)}`;
  if (l.switched) {
    await request("POST", `${path}/restore`, {reason: "rétablie depuis la console"});
  } else {
    const reason = window.prompt(`Motif de la bascule de ${lineLabel(l.line)} :`);
    if (!reason?.trim()) return;
    const moveWaiting = window.confirm("Basculer aussi les appels en attente ?");
    await request("POST", `${path}/switch`, {reason, move_waiting: moveWaiting});
  }
  await loadBoard();
}

export async function loadBoard() {
  const [overview, lines] = await Promise.all([request("GET", "/api/supervisor/overview"),
    request("GET", "/api/supervisor/lines")]);
  renderBoard(overview);
  fill($("board-lines"), (lines.lines ?? []).map(lineRow));
}
