// The wallboard, drawn from the router's board (`{kind: "wallboard", board}` every second
// on /api/wallboard/events): per line and per queue, calls waiting, the longest wait
// (ticking here every second from the router's clock), answered within 30 s / 60 s over
// the last hour and today, abandons, misdials, overflows; escalations waiting for a
// regulator with who accompanies; every seat and its time in state. Levels (amber, red)
// are the router's; a wait that ticks past its threshold turns here at once. A beep
// (WebAudio) when a P0 starts waiting or a line turns red, unless muted.
// Used by /wallboard (full screen) and by the supervisor's panel in the console.

import {el, fill} from "/console/dom.js";
import {lineLabel, pauseLabel, queueLabel, roleLabel} from "/console/labels.js";

/** Short state words: a wall is read from across the room. */
const STATES = {offline: "hors ligne", available: "disponible", ringing: "sonnerie",
  busy: "en communication", wrap_up: "post-appel", paused: "en pause"};
const LEVELS = ["ok", "amber", "red"];

/** "0:42", "12:05", "1 h 02" from milliseconds. */
export function clockText(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const m = Math.floor(s / 60);
  if (m >= 60) return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")}`;
  return `${m}:${String(s % 60).padStart(2, "0")}`;
}

/** "95,0 % (19/20)", or "—" without calls to answer. */
function share(c, within) {
  const pct = within === 30 ? c.pct_30s : c.pct_60s;
  if (pct === null || pct === undefined) return "—";
  const n = within === 30 ? c.answered_30s : c.answered_60s;
  return `${pct.toLocaleString("fr-FR")} % (${n}/${c.received - c.misdials})`;
}

function cell(text, cls) {
  const td = el("td", text);
  if (cls) td.className = cls;
  return td;
}

/** A cell that ticks from `since` (router clock) and re-judges its level as it does. */
function ticking(since, limits, cls) {
  const td = cell("—", cls);
  if (since) {
    td.dataset.since = String(since);
    if (limits) {
      td.dataset.amber = String(limits.wait_amber_s * 1000);
      td.dataset.red = String(limits.wait_red_s * 1000);
    }
  }
  return td;
}

function levelOf(ms, td) {
  if (!td.dataset.red) return null;
  if (ms >= Number(td.dataset.red)) return "red";
  if (ms >= Number(td.dataset.amber)) return "amber";
  return "ok";
}

function setLevel(node, level) {
  for (const l of LEVELS) node.classList.toggle(`level-${l}`, l === level);
}

/** Answered within 30 s and 60 s, over the last hour and today (the 60 s of the last hour
 * is the one judged against its target). */
function shares(row) {
  return [cell(share(row.last_hour, 30), "h30"), cell(share(row.last_hour, 60), "h60 share"),
    cell(share(row.today, 30), "d30"), cell(share(row.today, 60), "d60")];
}

function lineRow(l) {
  const name = cell(lineLabel(l.name), "name");
  if (l.switched) {
    const switched = el("span", `BASCULÉE vers le centre de repli — ${l.switched.reason}`);
    switched.className = "switched";
    name.append(" ", switched);
  }
  const waiting = cell(String(l.waiting), "waiting");
  // P0 calls of the line waiting anywhere (an escalation waiting for AMU too).
  if (l.p0_waiting) {
    const p0 = el("span", `P0 ×${l.p0_waiting}`);
    p0.className = "p0";
    waiting.append(" ", p0);
  }
  const tr = el("tr");
  tr.dataset.line = l.name;
  tr.append(name, waiting, ticking(l.oldest_since, l.limits, "longest"), ...shares(l),
    cell(String(l.today.abandoned), "abandoned"), cell(String(l.today.misdials), "misdials"),
    cell(String(l.today.overflows), "overflows"), cell(String(l.today.forwards), "forwards"));
  setLevel(tr, l.level);
  setLevel(tr.querySelector(".share"), l.share_level);
  setLevel(tr.querySelector(".longest"), l.wait_level);
  return tr;
}

function queueRow(q) {
  const tr = el("tr");
  tr.dataset.queue = q.name;
  const t = q.today;
  const escalations = t.escalated
    ? `${t.escalated_answered}/${t.escalated} décrochées, max ${clockText(t.escalation_max_ms)}`
    : "—";
  tr.append(cell(queueLabel(q.name), "name"), cell(String(q.waiting), "waiting"),
    ticking(q.oldest_since, q.limits, "longest"), ...shares(q),
    cell(String(t.abandoned), "abandoned"), cell(String(t.overflows), "overflows"),
    cell(escalations, "escalated"));
  setLevel(tr, q.level);
  setLevel(tr.querySelector(".share"), q.share_level);
  setLevel(tr.querySelector(".longest"), q.wait_level);
  return tr;
}

/** "attente AMU": what an escalated caller waits for (the console's board says it too). */
export function waitsFor(queue) {
  return `attente ${queueLabel(queue)}`;
}

/** "accompagné par arm1": who stays with an escalated caller until the regulator answers. */
export function accompaniedText(e) {
  return e.accompanied_by.length ? `accompagné par ${e.accompanied_by.join(", ")}` : "seul (attente)";
}

function escalationRow(e) {
  const tr = el("tr");
  tr.dataset.call = e.call;
  tr.append(cell(e.urgency ?? "NR", "urgency"), cell(lineLabel(e.line)),
    cell(waitsFor(e.queue), "target"), ticking(e.waiting_since, null, "since"),
    cell(accompaniedText(e), "with"));
  if (e.urgency === "P0") tr.classList.add("level-red");
  return tr;
}

function seatTile(s) {
  const tile = el("li");
  tile.dataset.seat = s.seat;
  tile.className = `seat state-${s.state}`;
  const head = el("div", `${s.seat} · ${roleLabel(s.role)}`);
  head.className = "who";
  const state = el("div", STATES[s.state] ?? s.state);
  state.className = "state";
  const since = el("div");
  since.className = "in-state";
  since.dataset.since = String(s.since);
  const what = el("div");
  what.className = "what";
  if (s.pause_reason) what.textContent = pauseLabel(s.pause_reason);
  if (s.call) {
    const c = s.call;
    const call = `${lineLabel(c.line)} · ${c.urgency ?? "NR"}`;
    what.textContent = c.accompanying_to
      ? `accompagne → ${waitsFor(c.accompanying_to)} (${call})`
      : call;
  }
  tile.append(head, state, since, what);
  return tile;
}

function table(caption, headers, body) {
  const t = el("table");
  const head = el("tr");
  head.append(...headers.map((h) => el("th", h)));
  const thead = el("thead");
  thead.append(head);
  t.append(el("caption", caption), thead, body);
  return t;
}

/** Beeps (880 Hz, 3 × 150 ms) unless muted; a browser may refuse sound before a click. */
function beeper() {
  let audio = null;
  return () => {
    audio ??= new AudioContext();
    audio.resume().catch(() => {});
    for (let i = 0; i < 3; i += 1) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      gain.gain.value = 0.3;
      osc.frequency.value = 880;
      osc.connect(gain).connect(audio.destination);
      const at = audio.currentTime + i * 0.25;
      osc.start(at);
      osc.stop(at + 0.15);
    }
  };
}

/**
 * Builds the board in `root`. Returns `update(board)` (a new board from the router) and
 * `stop()`. `muted`: start with the sound off (the console panel).
 */
export function mountBoard(root, {muted = false} = {}) {
  const alarm = el("p");
  alarm.className = "alarm";
  alarm.setAttribute("role", "alert");
  alarm.hidden = true;
  const mute = el("button");
  mute.type = "button";
  mute.className = "mute";
  const lines = el("tbody");
  lines.className = "lines";
  const queues = el("tbody");
  queues.className = "queues";
  const escalations = el("tbody");
  escalations.className = "escalations";
  const seats = el("ul");
  seats.className = "seats";
  const updated = el("span");
  updated.className = "updated";
  const top = el("div");
  top.className = "top";
  top.append(updated, mute);
  root.replaceChildren(top, alarm,
    table("Lignes", ["Ligne", "En attente", "Attente max", "≤ 30 s (1 h)", "≤ 60 s (1 h)",
      "≤ 30 s (jour)", "≤ 60 s (jour)", "Abandons", "Faux appels", "Débordements",
      "Vers le repli"], lines),
    table("Escalades en cours", ["Priorité", "Ligne", "En attente de", "Depuis", "Avec"],
      escalations),
    table("Files", ["File", "En attente", "Attente max", "≤ 30 s (1 h)", "≤ 60 s (1 h)",
      "≤ 30 s (jour)", "≤ 60 s (jour)", "Abandons", "Débordements", "Escalades (jour)"], queues),
    seats);
  root.dataset.beeps = "0";

  let skew = 0;
  let beep = beeper();
  let redLines = new Set();
  let p0 = 0;
  let first = true;
  const showMute = () => {
    mute.textContent = muted ? "Son coupé" : "Son activé";
    mute.setAttribute("aria-pressed", String(muted));
  };
  mute.addEventListener("click", () => {
    muted = !muted;
    showMute();
  });
  showMute();

  function sound(reason) {
    root.dataset.beeps = String(Number(root.dataset.beeps) + 1);
    root.dataset.lastAlarm = reason;
    if (!muted) {
      try {
        beep();
      } catch (e) {
        console.warn("no sound", e);
      }
    }
  }

  function tick() {
    const now = Date.now() - skew;
    const nowRed = new Set();
    for (const node of root.querySelectorAll("[data-since]")) {
      const ms = now - Number(node.dataset.since);
      node.textContent = node.classList.contains("in-state") ? `depuis ${clockText(ms)}` : clockText(ms);
      const level = levelOf(ms, node);
      if (level) {
        setLevel(node, level);
        const tr = node.closest("tr");
        // A row is at least as bad as its longest wait.
        if (level === "red" && tr?.dataset.line) {
          setLevel(tr, "red");
          nowRed.add(tr.dataset.line);
        }
      }
    }
    for (const tr of lines.querySelectorAll("tr.level-red")) nowRed.add(tr.dataset.line);
    const newly = [...nowRed].filter((l) => !redLines.has(l));
    if (newly.length && !first) sound(`ligne ${newly.map(lineLabel).join(", ")} au rouge`);
    redLines = nowRed;
  }

  function update(board) {
    skew = Date.now() - board.now;
    fill(lines, board.lines.map(lineRow));
    fill(queues, board.queues.map(queueRow));
    const none = el("tr");
    const nothing = cell("aucune", "none");
    nothing.colSpan = 5;
    none.append(nothing);
    fill(escalations, board.escalations.length ? board.escalations.map(escalationRow) : [none]);
    fill(seats, board.seats.map(seatTile));
    updated.textContent = `mis à jour ${new Date(board.now).toLocaleTimeString("fr-FR")}`;
    const p0Lines = board.lines.filter((l) => l.p0_waiting > 0).map((l) => lineLabel(l.name));
    alarm.hidden = board.p0_waiting === 0;
    alarm.textContent = `P0 en attente : ${board.p0_waiting} (${p0Lines.join(", ")})`;
    if (board.p0_waiting > p0) sound("P0 en attente");
    p0 = board.p0_waiting;
    tick();
    first = false;
  }

  const timer = setInterval(tick, 1000);
  return {
    update,
    stop() {
      clearInterval(timer);
      beep = () => {};
    },
  };
}
