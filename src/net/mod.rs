//! Tokio drivers: the thin IO layer around the sans-IO core.
//!
//! [`requests`] answers or routes each new SIP transaction; [`calls`] owns the Router
//! ([`crate::call::router`]) and carries out its decisions on SIP dialogs and media relays
//! (playing what each call's dial plan says), and answers the consoles' CTI requests; [`reload`] keeps the dial plans in force and reloads them;
//! [`sip_tcp`] and [`sip_ws`] carry SIP over TCP and TLS and over WebSocket (WebRTC phones),
//! all into the stack through [`sip_stream`] behind the same guard as UDP; [`sip_tls_out`]
//! keeps the outbound trunk's TLS connection; [`tls`] loads the certificate that `wss`,
//! `sip.tls` and HTTPS serve, and [`tls_pin`] checks the operator's pinned certificates;
//! [`limits`] caps the connections of every TCP listener; [`front`] challenges
//! credential-less REGISTERs before the stack; [`overload`] sheds new trunk calls past
//! capacity (503 before the stack); [`live`] counts the per-call table entries and tasks;
//! [`fuzz`] drives the SIP fuzzer against a router.

mod caller_media;
pub mod calls;
mod cti;
mod flows;
pub mod front;
pub mod fuzz;
pub mod limits;
mod line_switch;
pub mod live;
pub mod overload;
pub mod reload;
pub mod requests;
pub mod sip_stream;
pub mod sip_tcp;
pub mod sip_tls_out;
pub mod sip_ws;
pub mod supervise;
pub mod tls;
pub mod tls_pin;
pub mod trunk_probe;
pub mod wallboard;
mod wrap_up;
