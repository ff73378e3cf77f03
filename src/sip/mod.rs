//! SIP edge: seat authentication and registration (sans-IO), driven by the tokio layer.
//!
//! `digest` checks RFC 3261/7616/8760 digest credentials against HA1-only seat entries;
//! `registrar` turns REGISTER requests into bindings and the responses to send back.

pub mod digest;
pub mod registrar;
