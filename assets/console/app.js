// The console's entry point: login, the seat's live view (status, call, history, events),
// supervisors' board, keyboard shortcuts.

import * as api from "./api.js";
import {boardAlert, loadBoard, renderBoard} from "./board.js";
import {bindCall, renderCall} from "./call.js";
import {$, clock, el, showError} from "./dom.js";
import {listen} from "./events.js";
import {loadHistory} from "./history.js";
import {detailLabel, eventLabel, stateLabel} from "./labels.js";
import {bindMedia, closeMedia, mediaEvent} from "./media.js";
import {bindSeat, renderSeat} from "./seat.js";
import {startWallboard, stopWallboard} from "./wallboard.js";

const MAX_EVENTS = 50;
let streams = [];
let supervisor = false;
let refreshing = null;

function render(status) {
  renderSeat(status);
  renderCall(status);
}

/** Re-reads the status and history (after an action, an event, a reconnection). */
function refresh() {
  // Events come in bursts (state, offer, connect): one read for the burst.
  refreshing ??= new Promise((done) => setTimeout(done, 50)).then(async () => {
    refreshing = null;
    const [status] = await Promise.all([api.request("GET", "/api/cti/status"), loadHistory(),
      supervisor ? loadBoard() : null]);
    render(status);
  }).catch(fail);
  return refreshing;
}

function fail(error) {
  if (error instanceof api.ApiError && error.status === 401 && api.loggedIn()) {
    // The session ended on the router (restart, 12 h unused): back to the login screen.
    signedOut();
    showError("Session expirée : reconnectez-vous.");
    return;
  }
  // fetch rejects with a TypeError when the router cannot be reached at all.
  showError(error instanceof TypeError ? "Routeur injoignable." : error.message ?? String(error));
}

/** Runs an action, shows its error if any, then refreshes. */
function act(promise) {
  showError(null);
  return promise.then(refresh, fail);
}

/** Media plumbing for media.js, not news for the ARM: the browser's own offer (the seat
 * event `offer` already said "appel présenté"), the end of its audio (`call_end` says it),
 * a supervisor's monitor mode. */
function plumbing(event) {
  return (event.kind === "offer" && typeof event.detail?.sdp === "string")
    || event.kind === "hangup" || event.kind === "monitor";
}

function eventText(event) {
  const d = event.detail ?? {};
  let text = `${clock(event.at ?? Date.now())} ${eventLabel(event.kind)}`;
  if (d.from || d.to) text += ` : ${stateLabel(d.from)} → ${stateLabel(d.to)}`;
  if (typeof d.detail === "string") text += ` (${detailLabel(event.kind, d.detail)})`;
  if (event.kind === "lagged") text += ` (${event.missed})`;
  return text;
}

function onSeatEvent(event) {
  if (event.kind === "hello") {
    render(event.status);
    refresh();
    return;
  }
  mediaEvent(event);
  if (plumbing(event)) return;
  const list = $("events-list");
  list.prepend(el("li", eventText(event)));
  while (list.children.length > MAX_EVENTS) list.lastChild.remove();
  refresh();
}

function onSupervisorEvent(event) {
  if (event.kind === "hello") renderBoard(event.overview);
  else {
    if (event.kind === "alert") boardAlert(event);
    refresh();
  }
}

function setLink(up) {
  $("link").textContent = up ? "en ligne" : "reconnexion…";
  $("link").classList.toggle("up", up);
  // A refused WebSocket does not say why: a status read tells an ended session (401).
  if (!up && api.loggedIn()) refresh();
}

function signedIn(answer) {
  supervisor = answer.supervisor;
  $("login").hidden = true;
  $("desk").hidden = false;
  $("who").hidden = false;
  $("who-seat").textContent = answer.seat;
  render(answer.status);
  streams = [listen(() => api.eventsUrl("/api/cti/events"), onSeatEvent, setLink)];
  if (supervisor) {
    streams.push(listen(() => api.eventsUrl("/api/supervisor/events"), onSupervisorEvent, () => {}));
    startWallboard();
  }
  $("pause").focus();
}

function signedOut() {
  streams.forEach((s) => s.stop());
  streams = [];
  if (supervisor) stopWallboard();
  api.forget();
  closeMedia();
  $("desk").hidden = true;
  $("board").hidden = true;
  $("who").hidden = true;
  $("login").hidden = false;
  $("login-form").reset();
  $("login-seat").focus();
}

const SHORTCUTS = {
  KeyP: () => $("pause").click(),
  KeyR: () => $("resume").click(),
  KeyH: () => $("hangup").click(),
  KeyQ: () => $("file-priority").focus(),
  KeyE: () => $("transfer-targets").firstElementChild.focus(),
};

function onKey(e) {
  // `code`, not `key`: Alt changes the character on some layouts (macOS).
  const shortcut = SHORTCUTS[e.code];
  if (!e.altKey || e.ctrlKey || e.metaKey || !shortcut || !api.loggedIn()) return;
  e.preventDefault();
  shortcut();
}

$("login-form").addEventListener("submit", (e) => {
  e.preventDefault();
  showError(null);
  const audio = $("login-audio").checked;
  api.login($("login-seat").value.trim(), $("login-password").value)
    // With audio in the browser, the router rings this console instead of the SIP phone.
    .then((answer) => audio
      ? api.request("POST", "/api/cti/audio", {enabled: true}).then(() => answer)
      : answer)
    .then(signedIn, (error) => showError(error.status === 401
      ? "Poste ou mot de passe incorrect." : error.message));
});
$("logout").addEventListener("click", () => api.logout().catch(() => {}).finally(signedOut));
document.addEventListener("keydown", onKey);
bindSeat(act);
bindCall(act);
bindMedia(act);
