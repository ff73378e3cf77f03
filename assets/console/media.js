// Audio in the browser (answer, mute, hold), when the console logged in with audio: the
// router rings it with a CTI event `{"kind": "offer", "detail": {"sdp": …}}` (its WebRTC
// offer, every ICE candidate in it) and takes the answer at `POST /api/cti/answer
// {"sdp": …}`; `cancel` (the offer went elsewhere) and `hangup` end it. Without an offer the
// buttons stay disabled and the seat answers on its SIP phone. A supervisor's monitor leg
// (listen, whisper, barge) comes the same way with `detail.monitor` set: the page answers it
// by itself, the supervisor having just asked for it; `monitor` events say its mode.

import {request} from "./api.js";
import {$, showError} from "./dom.js";

let offer = null;
let pc = null;
let microphone = null;
let meter = null;

/** What the audio is doing, in words (a screen reader hears it too). */
function say(text) {
  $("media-state").textContent = text;
}

/** Shows that audio comes in (packets and level from the browser's own stats): the first
 * thing to look at when a caller says nobody answers. */
async function showLevel() {
  const stats = await pc?.getStats();
  stats?.forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "audio") {
      const level = Math.round(100 * (r.audioLevel ?? 0));
      $("media-level").textContent = `reçus : ${r.packetsReceived} paquets, niveau ${level} %`;
    }
  });
}

function setButtons() {
  const live = pc !== null;
  $("media-answer").disabled = offer === null || live;
  $("media-mute").disabled = !live;
  $("media-hold").disabled = !live;
}

function toggle(button, on) {
  button.setAttribute("aria-pressed", String(on));
}

/** Ends the browser's audio (call over, or logout). */
export function closeMedia() {
  clearInterval(meter);
  meter = null;
  // A call ends with several events (hangup, call_end): only the first one speaks.
  if (pc) say("appel terminé");
  else if (offer) say("");
  pc?.close();
  microphone?.getTracks().forEach((t) => t.stop());
  pc = microphone = offer = null;
  toggle($("media-mute"), false);
  toggle($("media-hold"), false);
  setButtons();
}

async function answer() {
  const sdp = offer;
  offer = null;
  pc = new RTCPeerConnection();
  setButtons();
  microphone = await navigator.mediaDevices.getUserMedia({audio: true});
  microphone.getTracks().forEach((t) => pc.addTrack(t, microphone));
  pc.ontrack = (e) => { $("media-remote").srcObject = e.streams[0]; };
  await pc.setRemoteDescription({type: "offer", sdp});
  await pc.setLocalDescription(await pc.createAnswer());
  $("media-level").textContent = "";
  // The router takes one answer with every candidate (no trickle ICE).
  if (pc.iceGatheringState !== "complete") {
    await new Promise((done) => pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") done();
    }));
  }
  await request("POST", "/api/cti/answer", {sdp: pc.localDescription.sdp});
  say("en communication");
  meter = setInterval(showLevel, 500);
}

const MONITOR_WORDS = {listen: "écoute", whisper: "écoute (soufflé à l'opérateur)",
  barge: "intervention"};

/** Looks at every seat event: an offer with an SDP makes the call answerable here. */
export function mediaEvent(event) {
  const monitor = event.detail?.monitor;
  if (event.kind === "offer" && typeof event.detail?.sdp === "string" && monitor) {
    offer = event.detail.sdp;
    $("media-level").textContent = "";
    setButtons();
    answer()
      .then(() => say(`supervision : ${MONITOR_WORDS[monitor] ?? monitor}`))
      .catch((e) => {
        closeMedia();
        showError(e.message);
      });
  } else if (event.kind === "monitor" && pc) {
    say(`supervision : ${MONITOR_WORDS[event.detail?.mode] ?? event.detail?.mode}`);
  } else if (event.kind === "offer" && typeof event.detail?.sdp === "string") {
    offer = event.detail.sdp;
    // A new call: nothing of the previous one's figures.
    $("media-level").textContent = "";
    $("media-answer").title = "Décrocher dans le navigateur";
    say("appel entrant : décrochez");
    setButtons();
  } else if (["call_end", "left", "cancel", "hangup"].includes(event.kind)) {
    closeMedia();
  }
}

export function bindMedia(act) {
  $("media-answer").addEventListener("click", () => act(answer().catch((e) => {
    closeMedia();
    throw e;
  })));
  $("media-mute").addEventListener("click", (e) => {
    const muted = e.currentTarget.getAttribute("aria-pressed") !== "true";
    microphone?.getAudioTracks().forEach((t) => { t.enabled = !muted; });
    toggle(e.currentTarget, muted);
  });
  // Hold: the router plays the queue's hold audio to the caller (POST /api/cti/hold), and
  // the page stops both directions.
  $("media-hold").addEventListener("click", (e) => {
    const button = e.currentTarget;
    const held = button.getAttribute("aria-pressed") !== "true";
    act(request("POST", "/api/cti/hold", {held}).then(() => {
      pc?.getSenders().forEach((s) => { if (s.track) s.track.enabled = !held; });
      $("media-remote").muted = held;
      toggle(button, held);
    }));
  });
}
