// The seat's own state, and pause / resume.

import {request} from "./api.js";
import {$} from "./dom.js";
import {pauseLabel, stateLabel} from "./labels.js";

/** Shows the seat part of a status. */
export function renderSeat(status) {
  const state = status.state ?? {};
  $("seat-state").textContent = stateLabel(state.state);
  $("seat-state").dataset.state = state.state ?? "";
  const reason = state.detail?.reason;
  $("seat-reason").textContent = reason ? `(${pauseLabel(reason)})` : "";
  $("seat-after-call").hidden = !status.pause_after_call;
  // Pausing while the phone rings is refused (409): answer or decline first.
  $("pause").disabled = state.state === "paused" || state.state === "ringing";
  $("resume").disabled = state.state !== "paused" && !status.pause_after_call;
}

/** Wires the buttons; `act(promise)` reports errors and refreshes the page. */
export function bindSeat(act) {
  $("pause").addEventListener("click", () =>
    act(request("POST", "/api/cti/pause", {reason: $("pause-reason").value})));
  $("resume").addEventListener("click", () => act(request("POST", "/api/cti/resume")));
}
