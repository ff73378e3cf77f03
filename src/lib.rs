//! sas-router: a SIP call router for French medical regulation centres.
//!
//! Calls to the 15 (SAMU) and the 116 117 (SAS / PDSA) arrive from a SIP trunk, are queued
//! and offered to ARM seats; media is anchored in the router; every call leaves a record in
//! sled and figures in Prometheus.
//!
//! The core (`call`, `acd`, `routing`) is sans-IO: state machines fed with events and the
//! current time, returning actions. `sip`, `media`, `http` and `app` are the thin tokio edge around it.
#![forbid(unsafe_code)]

pub mod acd;
pub mod app;
pub mod bans;
pub mod call;
pub mod config;
pub mod cti;
pub mod http;
pub mod media;
pub mod metrics;
pub mod net;
pub mod pii;
pub mod routing;
mod sim_rng;
pub mod sip;
pub mod store;
pub mod time;
