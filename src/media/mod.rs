//! Media anchoring: every call's RTP flows through the router.
//!
//! `sdp` rewrites offers/answers so each side sends to our sockets and only relayed codecs
//! are negotiated; `ports` hands out even RTP ports; `relay` runs the per-call UDP relay
//! between the caller (trunk) leg and the seat leg, with NAT latching and counters.

pub mod ports;
pub mod prompts;
pub mod relay;
pub mod sdp;
