//! SIP edge: rsipstack endpoint glue, trunk admission, registrar and digest auth.
//!
//! rsipstack owns transports, transactions and dialogs; this module decides what each
//! request means for the router (a trunk call, a seat registering, an OPTIONS ping).

pub mod digest;
pub mod guard;
pub mod numbers;
pub mod registrar;
