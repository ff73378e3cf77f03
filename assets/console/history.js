// The seat's recent history (the router's record of its states and calls).

import {request} from "./api.js";
import {$, clock, el, fill} from "./dom.js";
import {detailLabel, eventLabel, stateLabel} from "./labels.js";

function line(entry) {
  let text = `${clock(entry.at)} ${eventLabel(entry.kind)}`;
  if (entry.from || entry.to) text += ` : ${stateLabel(entry.from)} → ${stateLabel(entry.to)}`;
  if (entry.detail) text += ` (${detailLabel(entry.kind, entry.detail)})`;
  return el("li", text);
}

export async function loadHistory() {
  const entries = await request("GET", "/api/cti/history?limit=30");
  fill($("history-list"), entries.map(line));
}
