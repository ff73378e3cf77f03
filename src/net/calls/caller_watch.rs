//! The caller's liveness on live calls: every second the driver feeds each answered trunk
//! leg's packet count (RTP and RTCP) to its [`CallerWatch`]; when the watch asks, an
//! in-dialog OPTIONS probes the trunk dialog, and a probe that fails ends the call
//! `caller_lost`. A caller on a WebSocket phone has its own connection watch.

use super::{CallDriver, CallEvent, Legs};
use crate::call::CallInput;
use crate::time::{EpochMillis, Now};
use rsipstack::sip::Method;
use std::collections::HashMap;
use std::time::Duration;

/// How long the dialog has to answer the probe. A live trunk answers in milliseconds;
/// this leaves room for a loaded one without waiting out the 32 s of a non-INVITE
/// transaction.
const PROBE_TIMEOUT: Duration = Duration::from_secs(8);

impl CallDriver {
    /// Every second: probes the dialogs of callers silent for `caller_rtp_timeout_ms`.
    pub(super) fn watch_callers(&mut self, now: Now, legs: &mut HashMap<String, Legs>) {
        for (call, l) in legs.iter_mut() {
            if !l.answered || l.caller_webrtc.is_some() {
                continue;
            }
            let a = l.relay.stats().a;
            if !l.caller_watch.observe(now.mono, a.rx_packets + a.rx_rtcp) {
                continue;
            }
            tracing::info!(%call, "the caller sends nothing: probing its dialog");
            let (dialog, events, call) = (l.trunk.clone(), self.events.clone(), call.clone());
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
    }

    /// The outcome of a probe sent by [`CallDriver::watch_callers`].
    pub(super) fn on_caller_probe(
        &mut self,
        now: Now,
        call: String,
        answered: bool,
        legs: &mut HashMap<String, Legs>,
    ) {
        let Some(l) = legs.get_mut(&call) else { return };
        let silent_s = l.caller_watch.silent_for(now.mono) / 1000;
        if !l.caller_watch.probed(now.mono, answered) {
            if answered {
                tracing::info!(%call, "silent caller, but its dialog answers: kept");
            }
            return;
        }
        tracing::warn!(%call, silent_s, "caller lost: silent and its dialog does not answer");
        let detail = format!("no RTP/RTCP for {silent_s} s, OPTIONS probe unanswered");
        self.router
            .handle_call(now, CallInput::CallerLost { call, detail });
    }

    /// The caller's leg has been silent at least as long as `ms`: a seat's silence on such
    /// a call says nothing about the seat (it may echo, or wait for a word).
    pub(super) fn caller_silent_for(&self, l: &Legs, now: Now, ms: EpochMillis) -> bool {
        l.caller_watch.silent_for(now.mono) >= ms
    }
}
