//! Who is still there, decided by the Router from packet counts the driver samples: a
//! trunk caller silent for `caller_silence_ms` has its dialog probed (and is lost when the
//! probe fails, see [`crate::call::liveness`]); a SIP seat's phone silent for
//! `seat_silence_ms` while it should talk is taken for dead (crashed, unplugged, network
//! gone: no BYE will come), unless the caller is silent too (then the caller is the
//! suspect: a ghost would otherwise take seat after seat).

use super::{Router, RouterOutput};
use crate::call::CallInput;
use crate::call::liveness::CallerWatch;
use crate::id_map::IdMap;
use crate::ids::SeatId;
use crate::time::{EpochMillis, Mono, Now};

/// Silence limits (0: never).
#[derive(Debug, Clone, Copy, Default)]
pub struct LivenessSettings {
    /// A trunk caller silent this long has its dialog probed.
    pub caller_silence_ms: EpochMillis,
    /// A SIP seat's phone silent this long is taken for dead.
    pub seat_silence_ms: EpochMillis,
}

/// What the driver read from one call's relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSample {
    /// Packets (RTP and RTCP) received from a trunk caller so far, answered or not (one not
    /// answered yet sends nothing: it is probed once the timeout has passed, which is what
    /// ends a caller whose CANCEL was lost); `None` when the caller is not watched this way
    /// (a WebRTC phone, with its own connection watch).
    pub caller_rx: Option<u64>,
    /// Each SIP seat that should be talking: its RTP packets received so far, and whether
    /// its leg was renegotiated since the last sample (the watch starts again).
    pub seats: Vec<SeatSample>,
}

/// One seat's count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatSample {
    /// The seat.
    pub seat: String,
    /// RTP packets received from it so far.
    pub rx: u64,
    /// Its leg was renegotiated (re-INVITE) since the last sample.
    pub restarted: bool,
}

/// One call's watches.
#[derive(Debug)]
pub(super) struct Watches {
    caller: CallerWatch,
    /// Each talking seat's last count and since when it has not changed.
    seats: IdMap<String, (u64, Mono)>,
}

impl Watches {
    pub(super) fn new(settings: LivenessSettings) -> Watches {
        Watches {
            caller: CallerWatch::new(settings.caller_silence_ms),
            seats: IdMap::default(),
        }
    }
}

impl Router {
    /// Sets the silence limits (for calls admitted from now on).
    pub fn set_liveness(&mut self, settings: LivenessSettings) {
        self.liveness = settings;
    }

    /// The driver's periodic reading of the call's counters.
    pub(super) fn sampled(&mut self, now: Now, call: &str, sample: MediaSample) {
        let limit = self.liveness.seat_silence_ms;
        let Some(w) = self.routes.get_mut(call).map(|r| &mut r.watches) else {
            return;
        };
        if let Some(rx) = sample.caller_rx
            && w.caller.observe(now.mono, rx)
        {
            tracing::info!(%call, "the caller sends nothing: probing its dialog");
            self.outputs
                .push_back(RouterOutput::ProbeCaller { call: call.into() });
        }
        // Seats no longer talking (held, gone) start afresh when they talk again.
        w.seats
            .retain(|seat, _| sample.seats.iter().any(|s| &s.seat == seat));
        if limit == 0 || w.caller.silent_for(now.mono) >= limit {
            return;
        }
        let mut dead = Vec::new();
        for s in sample.seats {
            match w.seats.get_mut(&s.seat) {
                Some((seen, since)) if *seen == s.rx && !s.restarted => {
                    if now.mono.saturating_sub(*since) >= limit {
                        *since = now.mono;
                        dead.push(s.seat);
                    }
                }
                _ => {
                    w.seats.insert(s.seat, (s.rx, now.mono));
                }
            }
        }
        for seat in dead {
            tracing::warn!(%call, %seat, "the seat's phone sends no audio: taken for dead");
            self.outputs.push_back(RouterOutput::HangUpDeadSeat {
                call: call.into(),
                seat: seat.clone(),
            });
            let lost = CallInput::SeatLost {
                call: call.into(),
                seat: SeatId::from(seat),
            };
            self.board.handle(now, lost);
        }
    }

    /// The outcome of a [`RouterOutput::ProbeCaller`].
    pub(super) fn probed(&mut self, now: Now, call: &str, answered: bool) {
        let Some(w) = self.routes.get_mut(call).map(|r| &mut r.watches) else {
            return;
        };
        let silent_s = w.caller.silent_for(now.mono) / 1000;
        if !w.caller.probed(now.mono, answered) {
            if answered {
                tracing::info!(%call, "silent caller, but its dialog answers: kept");
            }
            return;
        }
        tracing::warn!(%call, silent_s, "caller lost: silent and its dialog does not answer");
        let detail = format!("no RTP/RTCP for {silent_s} s, OPTIONS probe unanswered");
        let lost = CallInput::CallerLost {
            call: call.into(),
            detail,
        };
        self.board.handle(now, lost);
    }
}

#[cfg(test)]
mod tests {
    use super::super::RouterInput;
    use super::super::tests::{admit, outputs, router};
    use super::*;
    use crate::acd::SeatState;
    use crate::call::CallOutput;
    use crate::call::tests_support::T0;

    fn sample(caller: u64, seat: u64) -> MediaSample {
        MediaSample {
            caller_rx: Some(caller),
            seats: vec![SeatSample {
                seat: "arm1".into(),
                rx: seat,
                restarted: false,
            }],
        }
    }

    #[test]
    fn a_silent_seat_is_lost_unless_the_caller_is_silent_too() {
        let mut r = router();
        r.set_liveness(LivenessSettings {
            caller_silence_ms: 0,
            seat_silence_ms: 5_000,
        });
        let t = Now::at(T0);
        admit(&mut r, t, "c1");
        let feed = |r: &mut Router, ms: u64, s: MediaSample| {
            r.handle(
                t.plus(ms),
                RouterInput::Media {
                    call: "c1".into(),
                    sample: s,
                },
            );
            outputs(r)
        };
        // The caller talks, the seat sends nothing: dead after 5 s.
        feed(&mut r, 1_000, sample(10, 7));
        assert!(feed(&mut r, 5_999, sample(20, 7)).is_empty());
        let outs = feed(&mut r, 6_000, sample(30, 7));
        assert!(outs.contains(&RouterOutput::HangUpDeadSeat {
            call: "c1".into(),
            seat: "arm1".into()
        }));
        // Both silent: the caller is the suspect, the seat is kept.
        let mut r = router();
        r.set_liveness(LivenessSettings {
            caller_silence_ms: 0,
            seat_silence_ms: 5_000,
        });
        admit(&mut r, t, "c1");
        for ms in (1_000..20_000).step_by(1_000) {
            let outs = feed(&mut r, ms, sample(10, 7));
            assert!(
                !outs
                    .iter()
                    .any(|o| matches!(o, RouterOutput::HangUpDeadSeat { .. }))
            );
        }
    }

    #[test]
    fn a_silent_caller_is_probed_and_lost_when_the_probe_fails() {
        let mut r = router();
        r.set_liveness(LivenessSettings {
            caller_silence_ms: 10_000,
            seat_silence_ms: 0,
        });
        let t = Now::at(T0);
        admit(&mut r, t, "c1");
        outputs(&mut r);
        let media = || MediaSample {
            caller_rx: Some(3),
            seats: vec![],
        };
        r.handle(
            t.plus(1_000),
            RouterInput::Media {
                call: "c1".into(),
                sample: media(),
            },
        );
        r.handle(
            t.plus(11_000),
            RouterInput::Media {
                call: "c1".into(),
                sample: media(),
            },
        );
        let probe = RouterOutput::ProbeCaller { call: "c1".into() };
        assert_eq!(outputs(&mut r), vec![probe]);
        r.handle(
            t.plus(12_000),
            RouterInput::CallerProbed {
                call: "c1".into(),
                answered: false,
            },
        );
        let lost = outputs(&mut r).into_iter().any(|o| {
            matches!(o, RouterOutput::Call(CallOutput::Finished(rec)) if rec.end_reason.as_deref() == Some("caller_lost"))
        });
        assert!(lost);
    }

    /// A queue with no hold audio: the caller is not answered while it waits.
    const SILENT_QUEUE: &str = r#"
[queues.arm]
role = "arm"
[entries.sas]
numbers = ["116117"]
line = "sas"
start = "file"
[entries.sas.steps.file]
queue = "arm"
"#;

    fn probe_round(r: &mut Router, t: Now, at: u64) -> Vec<RouterOutput> {
        let media = || MediaSample {
            caller_rx: Some(0),
            seats: vec![],
        };
        for ms in [1_000, at] {
            let call = "c1".into();
            r.handle(
                t.plus(ms),
                RouterInput::Media {
                    call,
                    sample: media(),
                },
            );
        }
        outputs(r)
    }

    fn finished_lost(outs: &[RouterOutput]) -> bool {
        outs.iter().any(|o| {
            matches!(o, RouterOutput::Call(CallOutput::Finished(rec)) if rec.end_reason.as_deref() == Some("caller_lost"))
        })
    }

    #[test]
    fn an_unanswered_caller_waiting_for_nobody_is_probed_and_ended() {
        let mut r = router();
        r.set_liveness(LivenessSettings {
            caller_silence_ms: 10_000,
            seat_silence_ms: 0,
        });
        let t = Now::at(T0);
        super::super::tests::admit_with(&mut r, t, "c1", SILENT_QUEUE, false);
        outputs(&mut r);
        assert!(
            r.board().waiting_since("c1").is_some(),
            "queued, unanswered"
        );
        let probe = RouterOutput::ProbeCaller { call: "c1".into() };
        assert_eq!(probe_round(&mut r, t, 11_000), vec![probe]);
        let probed = |answered| RouterInput::CallerProbed {
            call: "c1".into(),
            answered,
        };
        r.handle(t.plus(12_000), probed(false));
        let outs = outputs(&mut r);
        assert!(finished_lost(&outs), "{outs:?}");
        assert!(r.board().record("c1").is_none(), "the call is over");
    }

    #[test]
    fn an_unanswered_caller_ringing_a_seat_is_ended_and_the_seat_freed() {
        let mut r = router();
        r.set_liveness(LivenessSettings {
            caller_silence_ms: 10_000,
            seat_silence_ms: 0,
        });
        let t = Now::at(T0);
        r.handle_call(
            t,
            CallInput::SeatOnline {
                seat: "arm1".into(),
            },
        );
        super::super::tests::admit_with(&mut r, t, "c1", SILENT_QUEUE, false);
        let rung = outputs(&mut r).iter().any(|o| {
            matches!(o, RouterOutput::Call(CallOutput::RingSeat { seat, .. }) if seat.as_str() == "arm1")
        });
        assert!(rung);
        // A caller that answers the probe is kept, still ringing.
        probe_round(&mut r, t, 11_000);
        r.handle(
            t.plus(11_500),
            RouterInput::CallerProbed {
                call: "c1".into(),
                answered: true,
            },
        );
        assert!(!finished_lost(&outputs(&mut r)));
        // The seat's ring timeout is 15 s: probed again at 21.5 s, silence this time.
        let outs = probe_round(&mut r, t, 21_500);
        assert_eq!(outs, vec![RouterOutput::ProbeCaller { call: "c1".into() }]);
        r.handle(
            t.plus(22_000),
            RouterInput::CallerProbed {
                call: "c1".into(),
                answered: false,
            },
        );
        let outs = outputs(&mut r);
        assert!(finished_lost(&outs), "{outs:?}");
        assert!(
            outs.iter()
                .any(|o| matches!(o, RouterOutput::Call(CallOutput::CancelSeat { .. })))
        );
        let seat = r.board().acd().seat("arm1").map(|s| s.state.clone());
        assert!(
            !matches!(
                seat,
                Some(SeatState::Ringing { .. } | SeatState::Busy { .. })
            ),
            "{seat:?}"
        );
    }
}
