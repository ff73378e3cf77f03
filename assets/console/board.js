// Supervisors: queues, waiting calls and seats, refreshed when the supervisor event stream
// says something changed.

import {request} from "./api.js";
import {$, duration, fill, row} from "./dom.js";
import {lineLabel, pauseLabel, roleLabel, stateLabel} from "./labels.js";

export function renderBoard(overview) {
  $("board").hidden = false;
  $("board-waiting").textContent = String(overview.waiting ?? 0);
  fill($("board-calls"), (overview.calls ?? []).map((c) => row([
    lineLabel(c.line), c.queue ?? "—", c.urgency ?? "NR",
    c.answered ? "répondu" : duration(c.waiting_ms), c.seat ?? "—"])));
  fill($("board-seats"), (overview.seats ?? []).map((s) => {
    const reason = s.state?.detail?.reason;
    return row([s.seat, roleLabel(s.role),
      stateLabel(s.state?.state) + (reason ? ` (${pauseLabel(reason)})` : "")]);
  }));
}

export async function loadBoard() {
  renderBoard(await request("GET", "/api/supervisor/overview"));
}
