//! The caller's liveness: a trunk caller that vanished without BYE (its phone or its
//! network gone) must not stay in line forever, taking seat after seat.
//!
//! [`CallerWatch`] follows what the caller's leg sends (RTP and RTCP packets). Silence
//! alone proves nothing on a 15 line: the caller may be unable to speak, and a trunk with
//! voice activity detection sends no RTP during silence (it still sends RTCP). So silence
//! for the timeout only asks for a probe (an in-dialog OPTIONS): a dialog that answers is
//! alive and the watch starts again; one that does not answer (or answers 481/408) is
//! lost, and the switchboard ends the call ([`super::CallInput::CallerLost`]).

use super::{Outcome, Switchboard};
use crate::record::{EndReason, EventKind};
use crate::time::{EpochMillis, Mono, Now};

/// Watches one caller's leg. Sans-IO: fed packet counts and the time.
#[derive(Debug, Clone)]
pub struct CallerWatch {
    timeout_ms: EpochMillis,
    /// Packets received when the count last changed, and since when.
    heard: Option<(u64, Mono)>,
    /// A probe is out.
    probing: bool,
}

impl CallerWatch {
    /// A watch probing after `timeout_ms` of silence (0: never).
    pub fn new(timeout_ms: EpochMillis) -> Self {
        Self {
            timeout_ms,
            heard: None,
            probing: false,
        }
    }

    /// The caller has sent `received` packets (RTP and RTCP) so far. True when the
    /// driver must probe the dialog now (silent for the timeout, no probe out).
    pub fn observe(&mut self, now: Mono, received: u64) -> bool {
        match self.heard {
            Some((seen, since)) if seen == received => {
                let due = self.timeout_ms > 0
                    && !self.probing
                    && now.saturating_sub(since) >= self.timeout_ms;
                self.probing |= due;
                due
            }
            _ => {
                self.heard = Some((received, now));
                self.probing = false;
                false
            }
        }
    }

    /// How long the caller has sent nothing (0 before the first observation).
    pub fn silent_for(&self, now: Mono) -> EpochMillis {
        self.heard.map_or(0, |(_, since)| now.saturating_sub(since))
    }

    /// The probe's outcome. True: the caller is lost. An answered probe means a silent
    /// but present caller: watched again for a whole timeout. A result arriving after the
    /// caller was heard again is moot.
    pub fn probed(&mut self, now: Mono, answered: bool) -> bool {
        if !self.probing {
            return false;
        }
        self.probing = false;
        if answered {
            if let Some((_, since)) = self.heard.as_mut() {
                *since = now;
            }
            return false;
        }
        true
    }
}

impl Switchboard {
    /// The caller is gone without a word ([`super::CallInput::CallerLost`]): offers withdrawn,
    /// seats released, a BYE to the caller's leg (for what it is worth), and the record
    /// says `caller_lost`, with why in the `CALLER_LOST` event.
    pub(super) fn caller_lost(&mut self, now: Now, call: &str, detail: String) {
        if !self.calls.contains_key(call) {
            return;
        }
        self.event(now, call, EventKind::CallerLost, None, Some(detail));
        self.release_parties(now, call);
        self.release_caller(call, 408);
        self.finish(now, call, Outcome::CallerLost, EndReason::CallerLost);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t: u64) -> Mono {
        Mono::from_millis(t)
    }

    #[test]
    fn silence_asks_for_one_probe_and_an_answer_restarts_the_watch() {
        let mut w = CallerWatch::new(10_000);
        assert!(!w.observe(ms(0), 5));
        assert!(!w.observe(ms(9_999), 5), "not before the timeout");
        assert!(w.observe(ms(10_000), 5), "silent for the timeout: probe");
        assert!(!w.observe(ms(11_000), 5), "one probe at a time");
        assert!(!w.probed(ms(12_000), true), "answered: alive");
        assert!(!w.observe(ms(21_999), 5));
        assert!(w.observe(ms(22_000), 5), "a whole timeout after the answer");
        assert!(w.probed(ms(23_000), false), "no answer: lost");
    }

    #[test]
    fn any_packet_resets_the_watch_and_makes_a_late_probe_result_moot() {
        let mut w = CallerWatch::new(10_000);
        w.observe(ms(0), 0);
        assert!(w.observe(ms(10_000), 0));
        assert!(!w.observe(ms(10_500), 1), "RTCP or RTP came");
        assert!(
            !w.probed(ms(11_000), false),
            "the caller was heard meanwhile"
        );
        assert_eq!(w.silent_for(ms(12_000)), 1_500);
    }

    #[test]
    fn a_zero_timeout_never_probes() {
        let mut w = CallerWatch::new(0);
        w.observe(ms(0), 0);
        assert!(!w.observe(ms(1_000_000), 0));
    }
}
