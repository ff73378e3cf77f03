//! Who is still there, the driver's side: every second it reads each call's packet counts
//! from its relay and hands them to the Router (which decides, see
//! [`crate::call::router::MediaSample`]); it probes a caller's dialog when the Router asks,
//! and hangs up a seat's leg the Router takes for dead. Callers and seats on WebRTC have
//! their own connection watch.
//!
//! A caller not answered yet (queued with no hold audio, ringing a seat) sends no media, so
//! it is probed once silent for the timeout too: its early dialog gets an OPTIONS
//! (RFC 3261 allows requests other than BYE from the callee in an early dialog). This is
//! what ends a caller whose CANCEL was lost (a load generator that sends it once, a socket
//! buffer overflowing under load): without it, such a call waited in its queue forever,
//! holding its RTP ports, and took a seat for 32 s (the 2xx unacknowledged) each time it
//! was offered. In an early dialog only silence counts as lost: a trunk that answers at
//! all, even 481, is there, and would have CANCELed (retransmitted for 32 s) a caller that
//! hung up. Only callers over UDP are probed so: over a connection a CANCEL is not lost.

use super::{CallDriver, CallEvent, LegMap};
use crate::call::Party;
use crate::call::router::{MediaSample, RouterInput, SeatSample};
use crate::media::relay::Leg;
use crate::time::Now;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::prelude::{HeadersExt, ToTypedHeader};
use rsipstack::sip::typed::CSeq;
use rsipstack::sip::{Header, Method, Request, SipMessage, StatusCodeKind, Transport, Version};
use rsipstack::transaction::endpoint::EndpointInnerRef;
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transaction::transaction::Transaction;
use std::time::Duration;

/// How long the dialog has to answer the probe. A live trunk answers in milliseconds;
/// this leaves room for a loaded one without waiting out the 32 s of a non-INVITE
/// transaction.
const PROBE_TIMEOUT: Duration = Duration::from_secs(8);

impl CallDriver {
    /// Every second: each call's counters, for the Router.
    pub(super) fn sample_media(&mut self, now: Now, legs: &mut LegMap) {
        for (call, l) in legs.iter_mut() {
            let stats = l.relay.stats();
            // Unanswered callers too: they send nothing, so they are probed (early dialog).
            let caller_rx =
                (l.caller_webrtc.is_none()).then_some(stats.a.rx_packets + stats.a.rx_rtcp);
            let seats = l
                .seats
                .iter_mut()
                .filter(|s| {
                    s.answered
                        && s.talking
                        && !s.monitor
                        && s.webrtc.is_none()
                        && s.seat != Party::EXTERNAL_NAME
                })
                .map(|s| SeatSample {
                    seat: s.seat.clone(),
                    rx: match s.media {
                        Leg::C => stats.c.rx_packets,
                        _ => stats.b.rx_packets,
                    },
                    restarted: std::mem::take(&mut s.restarted),
                })
                .collect();
            let sample = MediaSample { caller_rx, seats };
            let call = call.clone();
            self.router.handle(
                now,
                RouterInput::Media {
                    call: call.into(),
                    sample,
                },
            );
        }
    }

    /// Probes the caller's dialog with an in-dialog OPTIONS; the outcome comes back as
    /// [`CallEvent::CallerProbe`].
    pub(super) fn probe_caller(&self, call: String, legs: &LegMap) {
        let Some(l) = legs.get(&call) else { return };
        let (dialog, events) = (l.trunk.clone(), self.events.clone());
        if !l.answered {
            let endpoint = self.dialogs.endpoint.clone();
            tokio::spawn(async move {
                let answered = probe_early(&dialog, endpoint).await;
                events.send(CallEvent::CallerProbe { call, answered }).ok();
            });
            return;
        }
        tokio::spawn(async move {
            let probe = dialog.request(Method::Options, None, None);
            let answered = match tokio::time::timeout(PROBE_TIMEOUT, probe).await {
                // 481: the far end knows no such dialog; 408: nobody answered it.
                Ok(Ok(Some(resp))) => !matches!(resp.status_code.code(), 408 | 481),
                _ => false,
            };
            events.send(CallEvent::CallerProbe { call, answered }).ok();
        });
    }

    /// Hangs up the leg of a seat the Router took for dead.
    pub(super) fn hang_up_dead_seat(&self, call: &str, seat: &str, legs: &LegMap) {
        let l = legs.get(call);
        let leg = l.and_then(|l| l.seats.iter().find(|s| s.seat == seat && s.answered));
        if let Some(sip) = leg.map(|s| s.sip.clone()) {
            self.hang_up_leg(&sip, l);
        }
    }
}

/// Probes an early (unanswered) caller's dialog with an OPTIONS: true if anything final
/// comes back within [`PROBE_TIMEOUT`]. Built here because the stack sends in-dialog
/// requests on confirmed dialogs only. Its CSeq is the dialog's current one, not a new
/// one, so every later request of the dialog (BYE, re-INVITE) still goes up.
async fn probe_early(dialog: &InviteDialog, endpoint: EndpointInnerRef) -> bool {
    // Over TCP, TLS or WebSocket a CANCEL is not lost, and a new connection to a phone
    // behind NAT would fail: only UDP callers are judged.
    let initial = dialog.initial_request();
    let via = initial.top_via_header().and_then(|v| v.typed());
    if !via.is_ok_and(|v| v.transport == Transport::Udp) {
        return true;
    }
    let snapshot = dialog.snapshot();
    let Ok(via) = endpoint.get_via(None, None) else {
        return true; // no listener to send from: nothing proves the caller gone
    };
    let cseq = CSeq {
        seq: snapshot.local_cseq,
        method: Method::Options,
    };
    let mut headers = vec![
        Header::Via(via.into()),
        Header::CallId(snapshot.id.call_id.clone().into()),
        // Our side is the INVITE's To (with our tag), the caller its From.
        Header::From(snapshot.to.to_string().into()),
        Header::To(snapshot.from.to_string().into()),
        Header::CSeq(cseq.into()),
        Header::MaxForwards(70.into()),
    ];
    headers.extend(snapshot.route_set.into_iter().map(Header::Route));
    headers.push(Header::ContentLength(0.into()));
    let request = Request {
        method: Method::Options,
        uri: snapshot.remote_uri,
        headers: headers.into(),
        body: Vec::new(),
        version: Version::V2,
    };
    let Ok(key) = TransactionKey::from_request(&request, TransactionRole::Client) else {
        return true;
    };
    let mut tx = Transaction::new_client(key, request, endpoint, None);
    if tx.send().await.is_err() {
        return false;
    }
    let answer = async {
        while let Some(message) = tx.receive().await {
            if let SipMessage::Response(resp) = message
                && resp.status_code.kind() != StatusCodeKind::Provisional
            {
                // 408: nobody answered (the stack's own timeout).
                return resp.status_code.code() != 408;
            }
        }
        false
    };
    tokio::time::timeout(PROBE_TIMEOUT, answer)
        .await
        .unwrap_or(false)
}
