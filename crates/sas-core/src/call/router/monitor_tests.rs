//! Supervisor actions on virtual time: monitors (listen, whisper, barge) and how they end,
//! take over, and moving a waiting call.

use super::tests::outputs;
use super::*;
use crate::acd::{PauseReason, SeatState, Urgency};
use crate::call::tests_support::{
    T0, admission, answered_by, board_with, bridge, handlers, hang_up, load_plan, seat_gone,
};
use crate::cti::TransferMode;
use crate::record::EventKind;

const PLAN: &str = r#"
[queues.arm]
role = "arm"
[queues.renfort]
role = "arm"
[queues.amu]
role = "amu"
[internal.amu]
number = "2001"
entry = "samu"
step = "amu"
[entries.samu]
numbers = ["15"]
line = "samu"
start = "file"
[entries.samu.steps.file]
queue = "arm"
[entries.samu.steps.amu]
queue = "amu"
"#;

fn t(ms: u64) -> Now {
    Now::at(T0).plus(ms)
}

/// Seats online: two ARMs, a doctor (AMU), and a supervisor (in no queue's role).
fn plateau() -> Router {
    let board = board_with(&[
        ("arm1", "arm"),
        ("arm2", "arm"),
        ("amu1", "amu"),
        ("sup1", "supervisor"),
    ]);
    let mut r = Router::new(board, t(0));
    for seat in ["arm1", "sup1"] {
        r.handle_call(t(0), CallInput::SeatOnline { seat: seat.into() });
    }
    r
}

/// A call to the 15, queued for the ARMs.
fn admit(r: &mut Router, now: Now, call: &str) {
    let plans = load_plan(PLAN, &[], &[]).unwrap();
    r.handle(now, admission(call, "samu", "15", plans, false));
}

fn state(r: &Router, seat: &str) -> SeatState {
    r.board().acd().seat(seat).unwrap().state.clone()
}

/// A call answered by arm1 at 1 s.
fn talking(r: &mut Router, call: &str) {
    admit(r, t(0), call);
    outputs(r);
    r.handle_call(t(1_000), answered_by(call, "arm1"));
    outputs(r);
}

/// What the driver must do, seat state changes left out.
fn actions(r: &mut Router) -> Vec<RouterOutput> {
    let outs = outputs(r).into_iter();
    outs.filter(|o| !matches!(o, RouterOutput::Call(CallOutput::SeatChanged { .. })))
        .collect()
}

fn media(mode: Option<MonitorMode>) -> RouterOutput {
    RouterOutput::MonitorMedia {
        call: "c1".into(),
        mode,
    }
}

fn hang_up_monitor() -> RouterOutput {
    RouterOutput::HangUpMonitor {
        call: "c1".into(),
        seat: "sup1".into(),
    }
}

/// The supervisor's phone rang for c1 and answered.
fn listening(r: &mut Router) {
    r.monitor(t(2_000), "c1", "sup1", MonitorMode::Listen)
        .unwrap();
    let outs = outputs(r);
    let ring = RouterOutput::RingMonitor {
        call: "c1".into(),
        seat: "sup1".into(),
    };
    assert!(outs.contains(&ring), "{outs:?}");
    r.handle(t(3_000), RouterInput::MonitorAnswered { call: "c1".into() });
    assert_eq!(actions(r), vec![media(Some(MonitorMode::Listen))]);
}

fn monitor_notes(record: &crate::record::CallRecord) -> Vec<String> {
    (record.events.iter())
        .filter(|e| e.kind == EventKind::Monitor)
        .filter_map(|e| e.detail.clone())
        .collect()
}

fn finished(outs: &[RouterOutput]) -> Option<&crate::record::CallRecord> {
    outs.iter().find_map(|o| match o {
        RouterOutput::Call(CallOutput::Finished(r)) => Some(r.as_ref()),
        _ => None,
    })
}

#[test]
fn listen_whisper_barge_then_the_supervisor_hangs_up() {
    let mut r = plateau();
    talking(&mut r, "c1");
    listening(&mut r);
    assert!(
        matches!(
            state(&r, "sup1"),
            SeatState::Paused {
                reason: PauseReason::OtherTask,
                ..
            }
        ),
        "no call is offered to a supervisor listening"
    );
    r.monitor(t(4_000), "c1", "sup1", MonitorMode::Whisper)
        .unwrap();
    assert_eq!(actions(&mut r), vec![media(Some(MonitorMode::Whisper))]);
    r.monitor(t(5_000), "c1", "sup1", MonitorMode::Barge)
        .unwrap();
    assert_eq!(actions(&mut r), vec![media(Some(MonitorMode::Barge))]);
    // Someone else cannot monitor it meanwhile.
    r.handle_call(
        t(5_000),
        CallInput::SeatOnline {
            seat: "arm2".into(),
        },
    );
    let other = r.monitor(t(5_000), "c1", "arm2", MonitorMode::Listen);
    assert!(
        matches!(other, Err(SeatRequestError::Conflict(_))),
        "{other:?}"
    );
    r.handle(t(6_000), RouterInput::MonitorGone { call: "c1".into() });
    assert_eq!(
        actions(&mut r),
        vec![media(None)],
        "its leg is gone already"
    );
    assert_eq!(state(&r, "sup1"), SeatState::Available);
    assert!(r.monitoring("c1").is_none());
    // The call goes on; its timeline tells the monitor's story.
    r.handle_call(t(9_000), CallInput::CallerGone { call: "c1".into() });
    let outs = outputs(&mut r);
    let record = finished(&outs).expect("the call ended");
    assert_eq!(
        monitor_notes(record),
        [
            "listen by sup1 on arm1",
            "listen answered",
            "whisper by sup1",
            "barge by sup1",
            "ended by sup1: supervisor left"
        ]
    );
    assert_eq!(r.table_sizes()[5], ("router_monitors", 0));
    assert_eq!(r.orphan_timers(), 0);
}

#[test]
fn the_call_ending_hangs_up_the_supervisor_first() {
    let mut r = plateau();
    talking(&mut r, "c1");
    listening(&mut r);
    r.handle_call(t(9_000), CallInput::CallerGone { call: "c1".into() });
    let outs = outputs(&mut r);
    let at = |o: &RouterOutput| outs.iter().position(|x| x == o);
    let hang_up = at(&hang_up_monitor()).expect("supervisor hung up");
    let end = outs
        .iter()
        .position(|o| matches!(o, RouterOutput::Call(CallOutput::Finished(_))));
    assert!(Some(hang_up) < end, "{outs:?}");
    assert_eq!(state(&r, "sup1"), SeatState::Available);
}

#[test]
fn a_supervisor_phone_that_does_not_answer_is_given_up() {
    let mut r = plateau();
    talking(&mut r, "c1");
    r.monitor(t(2_000), "c1", "sup1", MonitorMode::Listen)
        .unwrap();
    outputs(&mut r);
    assert_eq!(
        r.poll_timeout(),
        Some(Mono::from_millis(T0 + 2_000 + MONITOR_RING_MS))
    );
    r.handle_timeout(t(2_000 + MONITOR_RING_MS));
    assert_eq!(actions(&mut r), vec![hang_up_monitor()]);
    assert_eq!(state(&r, "sup1"), SeatState::Available);
    // A late answer finds no monitor: nothing is mixed.
    r.handle(
        t(40_000),
        RouterInput::MonitorAnswered { call: "c1".into() },
    );
    assert!(outputs(&mut r).is_empty());
}

#[test]
fn only_a_call_talking_with_a_seat_is_monitored_and_an_escalation_ends_it() {
    let mut r = plateau();
    admit(&mut r, t(0), "c1");
    outputs(&mut r);
    let waiting = r.monitor(t(500), "c1", "sup1", MonitorMode::Listen);
    assert!(
        matches!(waiting, Err(SeatRequestError::Conflict(_))),
        "{waiting:?}"
    );
    let unknown = r.monitor(t(500), "nope", "sup1", MonitorMode::Listen);
    assert_eq!(unknown, Err(SeatRequestError::UnknownCall));
    r.handle_call(t(1_000), answered_by("c1", "arm1"));
    outputs(&mut r);
    let own = r.monitor(t(1_500), "c1", "arm1", MonitorMode::Listen);
    assert!(
        matches!(own, Err(SeatRequestError::Conflict(_))),
        "busy: {own:?}"
    );
    listening(&mut r);
    // A P0 escalation: the doctor will need the leg the supervisor is on.
    r.handle_call(
        t(4_000),
        CallInput::SeatOnline {
            seat: "amu1".into(),
        },
    );
    let escalated = (r.transfer_request(
        t(4_000),
        "c1",
        "arm1",
        "amu",
        TransferMode::Accompanied,
        Some(Urgency::P0),
    ))
    .unwrap();
    assert_eq!(escalated.0, TransferMode::Accompanied);
    let outs = outputs(&mut r);
    let hang_up = outs.iter().position(|o| *o == hang_up_monitor());
    let ring = outs.iter().position(
        |o| matches!(o, RouterOutput::Call(CallOutput::RingSeat { seat, .. }) if seat == "amu1"),
    );
    assert!(hang_up.is_some() && hang_up < ring, "{outs:?}");
    // Taking over a call in escalation is refused, clearly.
    let take = r.take_over(t(5_000), "c1", "sup1");
    assert_eq!(
        take,
        Err(SeatRequestError::Conflict(
            "the call is not monitored".into()
        ))
    );
    let listen = r.monitor(t(5_000), "c1", "sup1", MonitorMode::Listen);
    assert_eq!(
        listen,
        Err(SeatRequestError::Conflict(
            "not possible now: the call is not talking with a seat (waiting, in escalation or \
             three-way)"
                .replace("not possible now: ", "")
        ))
    );
}

#[test]
fn take_over_hangs_up_the_seat_and_bridges_the_supervisor() {
    let mut r = plateau();
    talking(&mut r, "c1");
    r.monitor(t(2_000), "c1", "sup1", MonitorMode::Listen)
        .unwrap();
    outputs(&mut r);
    let early = r.take_over(t(2_500), "c1", "sup1");
    assert!(
        matches!(early, Err(SeatRequestError::Conflict(_))),
        "{early:?}"
    );
    r.handle(t(3_000), RouterInput::MonitorAnswered { call: "c1".into() });
    outputs(&mut r);
    let other = r.take_over(t(3_500), "c1", "arm2");
    assert!(
        matches!(other, Err(SeatRequestError::Conflict(_))),
        "{other:?}"
    );
    assert_eq!(r.take_over(t(4_000), "c1", "sup1"), Ok("arm1".into()));
    let outs = outputs(&mut r);
    let at = |o: RouterOutput| outs.iter().position(|x| *x == o);
    let taken = at(RouterOutput::TakenOver {
        call: "c1".into(),
        seat: "sup1".into(),
    });
    let hang_up = at(RouterOutput::Call(hang_up("c1", "arm1")));
    let bridge = at(RouterOutput::Call(bridge("c1", "sup1")));
    assert!(
        taken.is_some() && taken < hang_up && hang_up < bridge,
        "{outs:?}"
    );
    assert!(
        !outs.contains(&hang_up_monitor()),
        "the leg stays: {outs:?}"
    );
    assert!(matches!(state(&r, "arm1"), SeatState::WrapUp { .. }));
    assert_eq!(state(&r, "sup1"), SeatState::Busy { call: "c1".into() });
    assert!(r.monitoring("c1").is_none());
    // The supervisor hangs up: the call ends with them as its last handler.
    r.handle_call(t(9_000), seat_gone("c1", "sup1"));
    let outs = outputs(&mut r);
    let record = finished(&outs).expect("the call ended");
    let who = handlers(record);
    assert_eq!(who[0], ("arm1", Some("takeover")));
    assert_eq!(who[1].0, "sup1");
    let takeover = record.events.iter().find(|e| e.kind == EventKind::Takeover);
    let takeover = takeover.expect("in the timeline");
    assert_eq!(takeover.seat.as_deref(), Some("sup1"));
    assert_eq!(takeover.detail.as_deref(), Some("arm1"));
}

#[test]
fn a_waiting_call_moves_queue_and_priority_keeping_its_place() {
    let mut r = plateau();
    // arm1 busy elsewhere so that calls wait.
    talking(&mut r, "c0");
    for (call, at) in [("c1", 10_000), ("c2", 20_000)] {
        admit(&mut r, t(at), call);
    }
    outputs(&mut r);
    let unknown = r.move_waiting(t(30_000), "c2", Some("nowhere"), None);
    assert_eq!(
        unknown,
        Err(SeatRequestError::Invalid(
            "unknown queue nowhere (the call's dial plans have: amu, arm, renfort)".into()
        ))
    );
    let bridged = r.move_waiting(t(30_000), "c0", Some("renfort"), None);
    assert!(
        matches!(bridged, Err(SeatRequestError::Conflict(_))),
        "{bridged:?}"
    );
    assert_eq!(
        r.move_waiting(t(30_000), "ghost", None, None),
        Err(SeatRequestError::UnknownCall)
    );
    // Both move to the backup queue, c2 first: c1 loses nothing, it still goes first.
    let moved = r.move_waiting(t(30_000), "c2", Some("renfort"), None);
    assert_eq!(moved, Ok("renfort".into()));
    let moved = r.move_waiting(t(31_000), "c1", Some("renfort"), None);
    assert_eq!(moved, Ok("renfort".into()));
    assert_eq!(
        r.board().waiting_since("c1"),
        Some(T0 + 10_000),
        "its wait goes on"
    );
    r.handle_call(
        t(32_000),
        CallInput::SeatOnline {
            seat: "arm2".into(),
        },
    );
    let outs = outputs(&mut r);
    let ring = RouterOutput::Call(CallOutput::RingSeat {
        call: "c1".into(),
        seat: "arm2".into(),
    });
    assert!(outs.contains(&ring), "c1 waited longer: {outs:?}");
    // Then c2 goes up to P1: ahead of everything but P0.
    assert_eq!(r.board().urgency("c2"), Some(Urgency::Nr));
    assert_eq!(
        r.move_waiting(t(33_000), "c2", None, Some(Urgency::P1)),
        Ok("renfort".into())
    );
    assert_eq!(r.board().urgency("c2"), Some(Urgency::P1));
    let record = r.board().record("c2").unwrap();
    assert_eq!(record.queue.as_deref(), Some("renfort"));
    let last = record.events.last().unwrap();
    assert_eq!(last.kind, EventKind::EnterQueue);
    assert_eq!(
        last.detail.as_deref(),
        Some("renfort priority 1 urgency P1 moved")
    );
}

#[test]
fn a_seat_logged_out_on_a_call_leaves_distribution_at_its_end() {
    let mut r = plateau();
    talking(&mut r, "c1");
    r.seat_request(t(2_000), "arm1", SeatRequest::Logout)
        .unwrap();
    assert_eq!(state(&r, "arm1"), SeatState::Busy { call: "c1".into() });
    r.handle_call(t(3_000), CallInput::CallerGone { call: "c1".into() });
    outputs(&mut r);
    assert!(matches!(
        state(&r, "arm1"),
        SeatState::Paused {
            reason: PauseReason::LoggedOut,
            ..
        }
    ));
    // Unpaused by a supervisor: back in distribution, and offered the next call.
    r.seat_request(t(4_000), "arm1", SeatRequest::Resume)
        .unwrap();
    admit(&mut r, t(5_000), "c2");
    let ring = RouterOutput::Call(CallOutput::RingSeat {
        call: "c2".into(),
        seat: "arm1".into(),
    });
    assert!(outputs(&mut r).contains(&ring));
}
