// Audio in the browser (answer, mute, hold). The router's WebRTC leg is not there yet: it
// will send a CTI event `{"kind": "offer", "detail": {"sdp": …}}` and take the answer at
// `POST /api/cti/answer {"sdp": …}`. Until an offer carries an SDP, the buttons stay
// disabled and the seat answers on its SIP phone.

import {request} from "./api.js";
import {$} from "./dom.js";

let offer = null;
let pc = null;
let microphone = null;

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
  // The router takes one answer with every candidate (no trickle ICE).
  if (pc.iceGatheringState !== "complete") {
    await new Promise((done) => pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") done();
    }));
  }
  await request("POST", "/api/cti/answer", {sdp: pc.localDescription.sdp});
}

/** Looks at every seat event: an offer with an SDP makes the call answerable here. */
export function mediaEvent(event) {
  if (event.kind === "offer" && typeof event.detail?.sdp === "string") {
    offer = event.detail.sdp;
    $("media-answer").title = "Décrocher dans le navigateur";
    setButtons();
  } else if (event.kind === "call_end" || event.kind === "left") {
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
  // Hold here stops both directions in the page; hold music for the caller is the router's.
  $("media-hold").addEventListener("click", (e) => {
    const held = e.currentTarget.getAttribute("aria-pressed") !== "true";
    pc?.getSenders().forEach((s) => { if (s.track) s.track.enabled = !held; });
    $("media-remote").muted = held;
    toggle(e.currentTarget, held);
  });
}
