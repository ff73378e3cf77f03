//! The media logic of a call, sans-IO: who hears whom ([`session`]: player, bridge,
//! three-way conference), continuous RTP per leg ([`stream`]), prompts as frames
//! ([`prompts`], [`playback`]), both [`g711`] laws, DTMF from RFC 4733, SIP INFO and in-band
//! tones ([`dtmf`]), RTCP per leg ([`rtcp`]), SDP offer/answer ([`sdp`]) and the recording
//! mixer ([`recording`]). Sockets, WebRTC and files are the app's `media` module.

pub mod dtmf;
pub mod g711;
pub mod leg;
pub mod playback;
pub mod prompts;
pub mod recording;
pub mod rtcp;
pub mod sdp;
pub mod session;
pub mod stream;
