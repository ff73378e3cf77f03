// /wallboard: the board full screen. A wall display opens /wallboard?token=… (the
// `[wallboard] token`); a supervisor's browser logged in to the console needs none.

import {listen} from "/console/events.js";
import {mountBoard} from "./board.js";

const token = new URLSearchParams(location.search).get("token");
const status = document.getElementById("link");
const board = mountBoard(document.getElementById("wallboard"));
let heard = false;

function url() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const query = token ? `?token=${encodeURIComponent(token)}` : "";
  return `${scheme}://${location.host}/api/wallboard/events${query}`;
}

listen(url, (message) => {
  if (message.kind !== "wallboard") return;
  heard = true;
  status.textContent = "en direct";
  status.className = "up";
  board.update(message.board);
}, (up) => {
  if (up) return;
  status.className = "down";
  // A refused socket does not say why: the first time, it is most likely access.
  status.textContent = heard
    ? "liaison perdue, reconnexion…"
    : "accès refusé ou routeur injoignable : ouvrez /wallboard?token=… "
      + "ou connectez-vous comme superviseur dans la console";
});
