//! Media anchoring: every call's RTP flows through the router.
//!
//! `sdp` rewrites offers/answers so each side sends to our sockets and only relayed codecs
//! are negotiated; `ports` hands out even RTP ports; `relay` runs the per-call UDP relay
//! between the caller (trunk) leg and the seat legs, with NAT latching and counters, over
//! the sans-IO `session` (who hears whom: player, bridge, three-way conference);
//! `stream` keeps the RTP sent to a leg continuous (one SSRC, no sequence jumps) across
//! source switches; `dtmf` turns RFC 4733 events, SIP INFO bodies and in-band tones into
//! digits (sans-IO, not yet wired into calls); `prompts` loads announcements pre-encoded
//! in both `g711` laws; `rtcp` terminates RTCP per leg (our SR/RR about what we send and
//! receive, the peer's reports read for loss, jitter and RTT; sans-IO).
//! `recording` mixes a call's two sides into one stereo WAV. `webrtc` terminates a seat
//! leg as WebRTC (browser console, SIP-over-WebSocket phone) and hands its RTP to the relay.
//! `srtp` holds the SDES-SRTP policies, keys and contexts of SIP legs (the relay uses them).
//! `kernel` relays plain bridges in the kernel (eBPF, `[media] kernel_relay`).

// The sans-IO media logic lives in the core crate; re-exported under its old paths.
pub use sas_core::media::{dtmf, g711, leg, playback, rtcp, sdp, session, stream};

pub mod kernel;
pub mod ports;
pub mod prompts;
pub mod recording;
pub mod relay;
pub mod srtp;
pub mod webrtc;
