//! The front desk: REGISTERs without credentials are challenged (`401`) as they are read,
//! before rsipstack makes a transaction of them. A transaction lives 32 s after its answer
//! (Timer J over UDP) at about 1.5 KB: a flood of unauthenticated REGISTERs held memory by
//! the hundred megabytes that way. The nonces being stateless, the challenge is exactly the
//! registrar's, and a retransmission just gets another one.
//!
//! New trunk INVITEs past capacity are refused here too, statelessly (`503`, see
//! [`crate::net::overload`]), with the ACKs of those refusals.
//!
//! Anything else (credentials, another method, a banned source or name, a scanner) goes on
//! to the stack and the dispatcher's door, which keep their rules.

use crate::bans::shared::Guard;
use crate::net::overload::Overload;
use crate::sip::digest::{NonceStore, SeatCredential};
use crate::sip::registrar::Registrar;
use crate::time::wall_clock_now;
use prometheus::IntCounterVec;
use rsipstack::sip::prelude::*;
use rsipstack::sip::{Method, SipMessage, Transport};
use rsipstack::transport::SipConnection;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// Shared by every transport's reader.
#[derive(Clone)]
pub struct FrontDesk(Arc<Inner>);

struct Inner {
    /// Its configuration only: no bindings are kept here.
    registrar: Registrar,
    /// Issues only (same secret and lifetime as the registrar's).
    nonces: NonceStore,
    credentials: HashMap<String, SeatCredential>,
    bans: Guard,
    /// `sas_sip_requests_total`, which the stack's inspector never sees for these.
    requests: IntCounterVec,
    /// Sheds trunk INVITEs past capacity.
    overload: Option<Overload>,
}

impl FrontDesk {
    /// A desk answering as `registrar` would, with `nonces`' secret.
    pub fn new(
        registrar: Registrar,
        nonces: NonceStore,
        credentials: HashMap<String, SeatCredential>,
        bans: Guard,
        requests: IntCounterVec,
        overload: Option<Overload>,
    ) -> Self {
        Self(Arc::new(Inner {
            registrar,
            nonces,
            credentials,
            bans,
            requests,
            overload,
        }))
    }

    /// The answer to send at once for `message` (judged well-formed) from `source` (empty:
    /// absorbed, nothing to send), or `None` to hand it to the stack.
    pub fn answer(
        &self,
        message: &SipMessage,
        source: SocketAddr,
        transport: Transport,
    ) -> Option<Vec<u8>> {
        if let Some(overload) = &self.0.overload
            && let Some(answer) = overload.answer(message, source)
        {
            return Some(answer);
        }
        if !matches!(message, SipMessage::Request(r) if r.method == Method::Register) {
            return None;
        }
        let SipMessage::Request(req) =
            SipConnection::update_msg_received(message.clone(), source, transport).ok()?
        else {
            return None;
        };
        let user = req
            .to_header()
            .ok()?
            .typed()
            .ok()?
            .uri
            .user()
            .map(str::to_owned);
        let this = &self.0;
        // Scanners and bans are the door's (`requests`) to judge.
        if crate::bans::sip::is_scanner(&req) || this.bans.holds(source.ip(), user.as_deref()) {
            return None;
        }
        let response = this.registrar.challenge_unauthenticated(
            wall_clock_now(),
            &req,
            (source.ip(), transport),
            &this.nonces,
            |name| this.credentials.get(name).cloned(),
        )?;
        this.requests.with_label_values(&["REGISTER"]).inc();
        Some(response.to_string().into_bytes())
    }
}
