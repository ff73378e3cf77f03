//! Dial plans: the sans-IO model, interpreter and schedules are `sas_core::routing`
//! (re-exported here under their old paths); [`files`] reads the dial plan directory.

pub use sas_core::routing::*;

pub mod files;

#[cfg(test)]
mod shipped_tests;
