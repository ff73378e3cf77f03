//! SIP edge: what each request means for the router, around rsipstack.
//!
//! rsipstack owns transports, transactions and dialogs. Here: the malformed-input guard in
//! front of every transport, called-number normalisation for trunk admission, the
//! registrar of seat bindings and the digest authentication it relies on (with which
//! algorithms each transport and seat is challenged), the `Replaces` of
//! attended transfers (sans-IO), the transports each seat may use, and the deterministic mutational fuzzer that tests them.

pub mod digest;
pub mod digest_policy;
pub mod fuzz;
pub mod guard;
pub use sas_core::sip::{numbers, origin};
pub mod registrar;
pub mod replaces;
pub mod seat_transports;
