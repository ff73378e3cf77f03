//! The wall clock steps (NTP, an admin, a VM resumed) while a seat rings and while it
//! wraps up: every deadline still falls at the same monotonic instant, the call goes the
//! same way, and the record keeps the wall times it was given.

use super::tests_support::{T0, answered_by, arrival, board, queue_for};
use super::*;
use crate::time::{Mono, Now};

const HOUR: i64 = 3_600_000;

/// The wall clock's error against the monotonic one at `mono` ms: stepped back an hour
/// mid-ring (5 s), forward two hours (12 s), back to true time mid-talk (30 s), back an
/// hour mid-wrap-up (43 s) and forward again (47 s).
fn stepped(mono: u64) -> i64 {
    match mono {
        5_000..12_000 => -HOUR,
        12_000..30_000 => HOUR,
        43_000..47_000 => -HOUR,
        47_000.. => HOUR,
        _ => 0,
    }
}

fn steady(_: u64) -> i64 {
    0
}

/// What happened, at which monotonic instant (records left out: compared apart).
type Log = Vec<(u64, String)>;

/// One call: arm1 or arm2 is offered it and lets it ring out, the other answers 4 s after
/// its offer, the caller hangs up 20 s later; the seat wraps up (10 s). The driver looks
/// every 100 ms and fires what is due, as `CallDriver::run` does on its monotonic sleep.
fn run(wall_error: fn(u64) -> i64) -> (Log, CallRecord) {
    let now = |mono: u64| Now {
        mono: Mono::from_millis(mono),
        wall: (T0 + mono).saturating_add_signed(wall_error(mono)),
    };
    let mut b = board(&["arm1", "arm2"]);
    b.handle(
        now(0),
        CallInput::SeatOnline {
            seat: "arm1".into(),
        },
    );
    b.handle(
        now(0),
        CallInput::SeatOnline {
            seat: "arm2".into(),
        },
    );
    let mut log = Log::new();
    let mut record = None;
    let mut offers = 0;
    let mut answer_at: Option<(String, u64)> = None;
    let mut gone_at = None;
    for mono in (0..=70_000).step_by(100) {
        let t = now(mono);
        if mono == 1_000 {
            b.handle(t, arrival("c1", "samu", "15"));
            b.handle(t, queue_for("c1", "arm", 0));
        }
        if let Some((seat, _)) = answer_at.as_ref().filter(|(_, at)| *at == mono) {
            b.handle(t, answered_by("c1", seat));
        }
        if gone_at == Some(mono) {
            b.handle(t, CallInput::CallerGone { call: "c1".into() });
        }
        // Fires only what is due by the monotonic clock, whatever the wall clock says.
        b.handle_timeout(t);
        while let Some(out) = b.poll_output() {
            match &out {
                CallOutput::RingSeat { seat, .. } => {
                    offers += 1;
                    if offers == 2 {
                        answer_at = Some((seat.to_string(), mono + 4_000));
                    }
                }
                CallOutput::Bridge { .. } => gone_at = Some(mono + 20_000),
                CallOutput::Finished(r) => {
                    record = Some(r.as_ref().clone());
                    continue;
                }
                _ => {}
            }
            log.push((mono, format!("{out:?}")));
        }
    }
    (log, record.expect("the call ended"))
}

#[test]
fn stepping_the_wall_clock_mid_ring_and_mid_wrap_up_changes_nothing() {
    let (steady_log, steady_record) = run(steady);
    let (log, record) = run(stepped);
    assert_eq!(
        log, steady_log,
        "same decisions at the same monotonic instants"
    );
    // The ring-no-answer fell 15 s after the offer, the wrap-up ended 10 s after the call.
    let at = |what: &str| {
        log.iter()
            .find(|(_, o)| o.contains(what))
            .map(|(m, _)| *m)
            .unwrap_or_else(|| panic!("{what} in {log:?}"))
    };
    assert_eq!(at("CancelSeat"), 16_000, "ring-no-answer after 15 s");
    assert_eq!(at("from: \"wrap_up\", to: \"available\""), 50_000);
    // Durations come from the monotonic clock; instants are the wall times given.
    assert_eq!(
        (record.wait_ms, record.talk_ms),
        (steady_record.wait_ms, steady_record.talk_ms)
    );
    assert_eq!(
        (record.wait_ms, record.talk_ms),
        (Some(19_000), Some(20_000))
    );
    let wall = |mono: u64| (T0 + mono).saturating_add_signed(stepped(mono));
    assert_eq!(record.arrived_at, wall(1_000));
    assert_eq!(record.answered_at, Some(wall(20_000)));
    assert_eq!(record.ended_at, Some(wall(40_000)));
    let event = |kind: &str| record.events.iter().find(|e| e.kind == kind).map(|e| e.at);
    assert_eq!(event("RINGNOANSWER"), Some(wall(16_000)));
    assert_eq!(event("CONNECT"), Some(wall(20_000)));
}

#[test]
fn a_wall_clock_step_never_moves_a_pending_deadline() {
    let mut b = board(&["arm1"]);
    let t0 = Now::at(T0);
    b.handle(
        t0,
        CallInput::SeatOnline {
            seat: "arm1".into(),
        },
    );
    super::tests_support::arrive(&mut b, T0, "c1", "samu", 0);
    let deadline = b.poll_timeout().expect("ringing");
    for error in [-HOUR, HOUR, -24 * HOUR] {
        let stepped = Now {
            mono: t0.mono.saturating_add(1_000),
            wall: (T0 + 1_000).saturating_add_signed(error),
        };
        b.handle(
            stepped,
            CallInput::SeatRinging {
                call: "c1".into(),
                seat: "arm1".into(),
            },
        );
        b.handle_timeout(stepped);
        assert_eq!(b.poll_timeout(), Some(deadline));
    }
}
