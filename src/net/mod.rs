//! Tokio drivers: the thin IO layer around the sans-IO core.
//!
//! [`requests`] answers or routes each new SIP transaction; [`calls`] owns the switchboard
//! and carries out its decisions on SIP dialogs and media relays.

pub mod calls;
mod flows;
pub mod requests;
