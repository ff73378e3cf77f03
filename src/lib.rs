//! sas-router: a SIP call router for French medical regulation centres.
//!
//! Calls to the 15 (SAMU) and the 116 117 (SAS / PDSA) arrive from a SIP trunk, are queued
//! and offered to ARM seats; media is anchored in the router; every call leaves a record in
//! sled and figures in Prometheus.
//!
//! The core (`call`, `acd`, `routing`, the media logic, the call record) is the `sas-core`
//! crate, sans-IO: state machines fed with events and the current time, returning actions.
//! `sip`, `media`, `http`, `net` and `app` are the thin tokio edge around it.
// `deny`, not `forbid`: `heap` calls mimalloc's mi_process_info, the only unsafe call.
#![deny(unsafe_code)]

// The sans-IO core is its own crate (no tokio, sled, rsipstack, webrtc or hyper: the
// compiler keeps IO out); its modules keep their paths here.
use sas_core::sim_rng;
pub use sas_core::{acd, call, pii};

pub mod app;
pub mod bans;
pub mod config;
pub mod cti;
pub mod heap;
pub mod http;
pub mod media;
pub mod metrics;
pub mod net;
pub mod routing;
pub mod shared_store;
pub mod sip;
pub mod sockaddr;
pub mod store;
pub mod time;
