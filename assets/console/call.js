// The current call: what the router knows of it, hang up, the qualification form (the call
// file) and the escalation buttons. After the call (wrap-up) the form still writes the file
// of the seat's last call, until the router offers the next one.

import {request} from "./api.js";
import {$, clock, duration, el, fill} from "./dom.js";
import {DECISIONS, decisionLabel, lineLabel, reasonLabel, roleLabel, routeLabel} from "./labels.js";

let shownCall = null;
/** The call shown talks with a P0 caller whom no regulator answered yet. */
let aloneIfLeft = false;

function fileLine(entry) {
  const parts = [entry.priority, entry.reason, entry.commune, entry.postcode,
    entry.decision && decisionLabel(entry.decision), entry.note].filter(Boolean);
  return `${clock(entry.at)} ${entry.seat} : ${parts.join(" · ")}`;
}

function handlerLine(h) {
  const until = h.until ? ` → ${clock(h.until)}` : " → en cours";
  const left = h.left ? `, ${reasonLabel(h.left)}` : "";
  return `${h.seat} (${roleLabel(h.role)}) ${clock(h.from)}${until}${left}`;
}

/** Shows the call of a status, or in wrap-up the last one (or none); a new call clears the
 * form. */
export function renderCall(status) {
  const wrapUp = !status.call && Boolean(status.wrap_up);
  const call = status.call ?? status.wrap_up;
  const onCall = status.state?.state === "busy" && Boolean(status.call);
  aloneIfLeft = onCall && status.call.accompanying === true && status.call.urgency === "P0";
  if (!aloneIfLeft) $("hangup-confirm").hidden = true;
  $("call-title").textContent = wrapUp ? "Dernier appel (post-appel)" : "Appel en cours";
  $("call-none").hidden = Boolean(call);
  $("call-detail").hidden = !call;
  $("call-wrap-up").hidden = !wrapUp;
  $("call-live").hidden = wrapUp;
  $("hangup").hidden = wrapUp;
  for (const control of [$("hangup"), ...$("transfer-targets").children]) {
    control.disabled = !onCall;
  }
  $("file-save").disabled = !onCall && !wrapUp;
  if (!call) {
    shownCall = null;
    return;
  }
  if (call.id !== shownCall) {
    shownCall = call.id;
    $("file-form").reset();
    $("file-saved").textContent = "";
    $("transfer-done").textContent = "";
    syncAccompanied();
  }
  const line = lineLabel(call.line);
  $("call-line").textContent = line === call.called ? line : `${line} (${call.called})`;
  let progress = "en cours";
  if (call.ended_at) progress = `terminé à ${clock(call.ended_at)}`;
  else if (wrapUp) progress = "transmis, toujours en cours";
  $("call-ended").textContent = progress;
  $("call-caller").textContent = call.caller ?? "masqué";
  $("call-waited").textContent = duration(call.waited_ms ?? 0);
  $("call-urgency").textContent = call.urgency ?? "NR";
  fill($("call-route"), (call.route ?? []).map((r) => el("li", routeLabel(r))));
  fill($("call-handlers"), (call.handlers ?? []).map((h) => el("li", handlerLine(h))));
  fill($("call-file"), (call.file ?? []).map((f) => el("li", fileLine(f))));
}

/** P0 is always accompanied: the box says so and cannot be unticked. */
function syncAccompanied() {
  const p0 = $("file-priority").value === "P0";
  const box = $("transfer-accompanied");
  if (p0) box.checked = true;
  box.disabled = p0;
  $("transfer-p0").hidden = !p0;
}

/** The form's filled fields: the router keeps earlier values for the others. */
function qualification() {
  const body = {};
  for (const [name, value] of new FormData($("file-form"))) {
    if (value.trim()) body[name] = value.trim();
  }
  return body;
}

export function bindCall(act) {
  const decision = $("file-decision");
  decision.append(el("option", "—"));
  decision.firstChild.value = "";
  for (const [value, label] of Object.entries(DECISIONS)) {
    const option = el("option", label);
    option.value = value;
    decision.append(option);
  }
  $("file-priority").addEventListener("change", syncAccompanied);
  const hangUp = () => {
    $("hangup-confirm").hidden = true;
    return act(request("POST", "/api/cti/hangup"));
  };
  // A P0 caller must never be left alone: leaving before the regulator answers is asked
  // twice ("Rester" has the focus, so Enter stays).
  $("hangup").addEventListener("click", () => {
    if (!aloneIfLeft) return hangUp();
    $("hangup-confirm").hidden = false;
    $("hangup-stay").focus();
  });
  $("hangup-leave").addEventListener("click", hangUp);
  $("hangup-stay").addEventListener("click", () => {
    $("hangup-confirm").hidden = true;
    $("hangup").focus();
  });
  $("file-form").addEventListener("submit", (e) => {
    e.preventDefault();
    act(request("POST", "/api/cti/file", qualification()).then(() => {
      $("file-saved").textContent = `Qualification enregistrée à ${clock(Date.now())}`;
    }));
  });
  for (const button of $("transfer-targets").children) {
    button.addEventListener("click", () => {
      const body = {target: button.dataset.target,
        mode: $("transfer-accompanied").checked ? "accompanied" : "blind"};
      const priority = $("file-priority").value;
      if (priority) body.priority = priority;
      act(request("POST", "/api/cti/transfer", body).then((answer) => {
        // Asked before leaving from now on, not only once the status is read again.
        if (answer?.mode === "accompanied" && answer?.urgency === "P0") aloneIfLeft = true;
        const mode = answer?.mode === "accompanied" ? "accompagné" : "direct";
        $("transfer-done").textContent = `Transfert ${button.textContent} demandé (${mode})`;
      }));
    });
  }
}
