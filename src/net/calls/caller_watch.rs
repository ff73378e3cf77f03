//! Who is still there, the driver's side: every second it reads each call's packet counts
//! from its relay and hands them to the Router (which decides, see
//! [`crate::call::router::MediaSample`]); it probes a caller's dialog when the Router asks,
//! and hangs up a seat's leg the Router takes for dead. Callers and seats on WebRTC have
//! their own connection watch.

use super::{CallDriver, CallEvent, LegMap};
use crate::call::Party;
use crate::call::router::{MediaSample, RouterInput, SeatSample};
use crate::media::relay::Leg;
use crate::time::Now;
use rsipstack::sip::Method;
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
            let caller_rx = (l.answered && l.caller_webrtc.is_none())
                .then_some(stats.a.rx_packets + stats.a.rx_rtcp);
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
