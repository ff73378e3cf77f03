// The supervisor's wallboard panel: the same board as /wallboard (drawn by
// /wallboard/board.js), fed by its own event socket, sound muted until asked for.

import {$} from "./dom.js";
import {listen} from "./events.js";
import {eventsUrl} from "./api.js";
import {mountBoard} from "/wallboard/board.js";

let stream = null;
let board = null;

export function startWallboard() {
  $("wallboard-panel").hidden = false;
  board = mountBoard($("wallboard-root"), {muted: true});
  stream = listen(() => eventsUrl("/api/wallboard/events"), (message) => {
    if (message.kind === "wallboard") board.update(message.board);
  }, () => {});
}

export function stopWallboard() {
  stream?.stop();
  board?.stop();
  stream = board = null;
  $("wallboard-panel").hidden = true;
}
