//! sas-core: the sans-IO core of sas-router.
//!
//! Everything here is a state machine or pure logic fed with events and the current time
//! (`handle(now, input)`, `poll_output()`, `poll_timeout()`): the switchboard and its
//! [`call::router::Router`], the ACD, the dial-plan interpreter, the media logic of a call
//! (who hears whom, RTCP, DTMF, the recording mixer) and the call record. It cannot open a
//! socket, read a clock or touch the disk: its `Cargo.toml` has no tokio, sled, rsipstack,
//! webrtc or hyper, and `tests/it/architecture.rs` rejects clock reads and `std::fs` in its
//! source. The `sas-router` crate is the IO around it and re-exports these modules under
//! their old paths (`sas_router::call`, `sas_router::store::record`, ...).
#![forbid(unsafe_code)]

pub mod acd;
pub mod call;
pub mod cti;
pub mod id_map;
pub mod ids;
pub mod media;
pub mod overload;
pub mod pii;
pub mod record;
pub mod report;
pub mod routing;
#[doc(hidden)]
pub mod sim_rng;
pub mod sip;
pub mod time;
pub mod wallboard;
