//! Escalation on virtual time: blind and accompanied transfers, seats leaving, the call
//! file, and the seat states after each step.

use super::*;
use crate::acd::{CallRequest, SeatState};
use crate::call::CallInput;
use crate::call::tests_support::*;
use crate::time::SECOND;

/// arm1 answers c1; amu1 and amu2 (AMU regulators) are online.
fn answered_by_arm() -> Switchboard {
    let mut b = board_with(&[
        ("arm1", "arm"),
        ("amu1", "regulateur_amu"),
        ("amu2", "regulateur_amu"),
        ("lib1", "regulateur_liberal"),
    ]);
    for seat in ["arm1", "amu1", "amu2", "lib1"] {
        online(&mut b, T0, seat);
    }
    arrive(&mut b, T0 + 1, "c1", "samu", 0);
    answer(&mut b, T0 + 2, "c1", "arm1");
    actions(&mut b);
    b
}

/// arm1 hands c1 on to the AMU at T0 + 10.
fn hand_to_amu(
    b: &mut Switchboard,
    mode: TransferMode,
    urgency: Option<Urgency>,
) -> Result<TransferMode, TransferError> {
    b.transfer(Now::at(T0 + 10), "c1", "arm1", "amu", mode, urgency)
}

fn enqueue(b: &mut Switchboard, now: u64, call: &str, queue: &str, role: &str) {
    b.enqueue(Now::at(now), call, queue, &CallRequest::new(role, 0));
}

fn left(call: &str, seat: &str) -> CallOutput {
    CallOutput::SeatLeft {
        call: call.into(),
        seat: seat.into(),
    }
}

fn state(b: &Switchboard, seat: &str) -> &'static str {
    b.acd().seat(seat).unwrap().state.label()
}

fn kinds(b: &Switchboard, call: &str) -> Vec<String> {
    b.record(call)
        .unwrap()
        .events
        .iter()
        .map(|e| e.kind.to_string())
        .collect()
}

#[test]
fn blind_transfer_releases_the_arm_and_rings_a_regulator() {
    let mut b = answered_by_arm();
    let mode = hand_to_amu(&mut b, TransferMode::Blind, Some(Urgency::P1));
    assert_eq!(mode, Ok(TransferMode::Blind));
    assert_eq!(actions(&mut b), vec![hang_up("c1", "arm1")]);
    assert_eq!(state(&b, "arm1"), "wrap_up");
    enqueue(&mut b, T0 + 10, "c1", "amu", "regulateur_amu");
    assert_eq!(actions(&mut b), vec![ring("c1", "amu1")]);
    answer(&mut b, T0 + 20, "c1", "amu1");
    assert_eq!(actions(&mut b), vec![bridge("c1", "amu1")]);
    let r = b.record("c1").unwrap();
    assert_eq!(r.seat.as_deref(), Some("arm1"), "the seat that answered");
    assert_eq!(
        r.answered_at,
        Some(T0 + 2),
        "the first answer ends the wait"
    );
    assert_eq!(handlers(r), [("arm1", Some("transfer")), ("amu1", None)]);
    assert!(kinds(&b, "c1").contains(&"TRANSFER".to_string()));
    assert_eq!(b.urgency("c1"), Some(Urgency::P1));
}

#[test]
fn a_seat_not_on_the_call_cannot_transfer_it() {
    let mut b = answered_by_arm();
    let refused = b.transfer(
        Now::at(T0 + 5),
        "c1",
        "amu1",
        "amu",
        TransferMode::Blind,
        None,
    );
    assert_eq!(refused, Err(TransferError::NotOnCall("amu1".into())));
    let refused = b.transfer(
        Now::at(T0 + 5),
        "nope",
        "arm1",
        "amu",
        TransferMode::Blind,
        None,
    );
    assert_eq!(refused, Err(TransferError::NoCall));
    assert_eq!(state(&b, "arm1"), "busy");
}

#[test]
fn p0_is_always_accompanied_and_the_arm_stays_until_the_doctor_answers() {
    let mut b = answered_by_arm();
    let mode = hand_to_amu(&mut b, TransferMode::Blind, Some(Urgency::P0));
    assert_eq!(mode, Ok(TransferMode::Accompanied));
    assert!(actions(&mut b).is_empty(), "the ARM stays on the line");
    assert!(
        b.accompanying("c1"),
        "no announcements while the ARM is there"
    );
    assert_eq!(state(&b, "arm1"), "busy");
    enqueue(&mut b, T0 + 10, "c1", "amu", "regulateur_amu");
    assert_eq!(actions(&mut b), vec![ring("c1", "amu1")]);
    answer(&mut b, T0 + 15, "c1", "amu1");
    assert_eq!(
        actions(&mut b),
        vec![CallOutput::Conference { call: "c1".into() }]
    );
    assert!(!b.accompanying("c1"));
    assert_eq!((state(&b, "arm1"), state(&b, "amu1")), ("busy", "busy"));
    // The ARM hangs up: the caller stays with the doctor.
    b.handle(Now::at(T0 + 30), seat_gone("c1", "arm1"));
    assert_eq!(
        actions(&mut b),
        vec![left("c1", "arm1"), bridge("c1", "amu1")]
    );
    assert_eq!((state(&b, "arm1"), state(&b, "amu1")), ("wrap_up", "busy"));
    let k = kinds(&b, "c1");
    assert!(k.contains(&"ACCOMPANIED".into()) && k.contains(&"LEFT".into()));
    // Then the doctor's BYE ends the call.
    b.handle(Now::at(T0 + 60), seat_gone("c1", "amu1"));
    let out = actions(&mut b);
    let r = finished(&out).expect("finished");
    assert_eq!(r.seat.as_deref(), Some("arm1"), "the seat that answered");
    assert!(r.handlers.iter().all(|h| h.until.is_some()));
}

#[test]
fn p0_jumps_ahead_of_waiting_calls_in_the_regulator_queue() {
    let mut b = answered_by_arm();
    // Both regulators busy elsewhere: amu1 and amu2 take two earlier calls.
    for (call, seat) in [("e1", "amu1"), ("e2", "amu2")] {
        arrive_in(&mut b, T0 + 3, call, "regulateur_amu");
        answer(&mut b, T0 + 4, call, seat);
    }
    arrive_in(&mut b, T0 + 5, "older", "regulateur_amu");
    actions(&mut b);
    hand_to_amu(&mut b, TransferMode::Accompanied, Some(Urgency::P0)).unwrap();
    enqueue(&mut b, T0 + 10, "c1", "amu", "regulateur_amu");
    // amu2 frees up: the P0 goes first although "older" waited longer.
    b.handle(
        Now::at(T0 + 20),
        CallInput::CallerGone { call: "e2".into() },
    );
    b.handle_timeout(Now::at(T0 + 20 + 10 * SECOND));
    let rings: Vec<CallOutput> = actions(&mut b)
        .into_iter()
        .filter(|o| matches!(o, CallOutput::RingSeat { .. }))
        .collect();
    assert_eq!(rings, vec![ring("c1", "amu2")]);
}

#[test]
fn arm_leaving_an_accompanied_transfer_puts_the_caller_on_hold_still_queued() {
    let mut b = answered_by_arm();
    hand_to_amu(&mut b, TransferMode::Accompanied, None).unwrap();
    // Nobody free at AMU.
    b.pause(Now::at(T0 + 10), "amu1", PauseReason::Break);
    b.pause(Now::at(T0 + 10), "amu2", PauseReason::Break);
    enqueue(&mut b, T0 + 10, "c1", "amu", "regulateur_amu");
    actions(&mut b);
    b.handle(Now::at(T0 + 20), seat_gone("c1", "arm1"));
    assert_eq!(
        actions(&mut b),
        vec![left("c1", "arm1"), CallOutput::Hold { call: "c1".into() }]
    );
    assert_eq!(state(&b, "arm1"), "wrap_up");
    // Still queued: the first regulator back gets it and is bridged alone.
    b.unpause(Now::at(T0 + 30), "amu2");
    assert_eq!(actions(&mut b), vec![ring("c1", "amu2")]);
    answer(&mut b, T0 + 31, "c1", "amu2");
    assert_eq!(actions(&mut b), vec![bridge("c1", "amu2")]);
}

#[test]
fn caller_leaving_a_three_way_call_frees_both_seats() {
    let mut b = answered_by_arm();
    hand_to_amu(&mut b, TransferMode::Accompanied, None).unwrap();
    enqueue(&mut b, T0 + 10, "c1", "amu", "regulateur_amu");
    answer(&mut b, T0 + 15, "c1", "amu1");
    actions(&mut b);
    b.handle(
        Now::at(T0 + 20),
        CallInput::CallerGone { call: "c1".into() },
    );
    let out = actions(&mut b);
    let hung: Vec<&str> = out
        .iter()
        .filter_map(|o| match o {
            CallOutput::HangUpSeat { seat, .. } => Some(seat.name()),
            _ => None,
        })
        .collect();
    assert_eq!(hung, ["arm1", "amu1"]);
    assert!(finished(&out).is_some());
    assert_eq!(
        (state(&b, "arm1"), state(&b, "amu1")),
        ("wrap_up", "wrap_up")
    );
}

#[test]
fn amu_to_liberal_and_back_any_number_of_times() {
    let mut b = answered_by_arm();
    hand_to_amu(&mut b, TransferMode::Blind, None).unwrap();
    enqueue(&mut b, T0 + 10, "c1", "amu", "regulateur_amu");
    answer(&mut b, T0 + 12, "c1", "amu1");
    let mut now = T0 + 20;
    for (from, queue, role, to) in [
        ("amu1", "liberal", "regulateur_liberal", "lib1"),
        ("lib1", "amu", "regulateur_amu", "amu2"),
        ("amu2", "liberal", "regulateur_liberal", "lib1"),
    ] {
        b.transfer(Now::at(now), "c1", from, queue, TransferMode::Blind, None)
            .unwrap();
        enqueue(&mut b, now, "c1", queue, role);
        // lib1 comes back from its wrap-up in time for the third hop.
        b.handle_timeout(Now::at(now));
        now += 11 * SECOND;
        b.handle_timeout(Now::at(now));
        answer(&mut b, now, "c1", to);
        let r = b.record("c1").unwrap();
        assert_eq!(r.seat.as_deref(), Some("arm1"), "the seat that answered");
        assert_eq!(r.handlers.last().unwrap().seat, to);
        assert_eq!(state(&b, to), "busy");
        now += 5 * SECOND;
    }
    let seats: Vec<&str> = b
        .record("c1")
        .unwrap()
        .handlers
        .iter()
        .map(|h| h.seat.as_str())
        .collect();
    assert_eq!(seats, ["arm1", "amu1", "lib1", "amu2", "lib1"]);
}

#[test]
fn the_call_file_keeps_who_and_when_and_its_priority_rates_the_call() {
    let mut b = answered_by_arm();
    let data = Qualification {
        priority: Some(Urgency::P2),
        reason: Some("fièvre enfant".into()),
        postcode: Some("69003".into()),
        ..Qualification::default()
    };
    b.qualify(Now::at(T0 + 7), "c1", "arm1", data.clone());
    let r = b.record("c1").unwrap();
    assert_eq!(
        r.file,
        vec![FileEntry {
            at: T0 + 7,
            seat: "arm1".into(),
            data
        }]
    );
    assert_eq!(b.urgency("c1"), Some(Urgency::P2));
}

#[test]
fn a_console_hang_up_ends_the_call_and_both_legs() {
    let mut b = answered_by_arm();
    b.hang_up_seat(Now::at(T0 + 9), "c1", "arm1");
    let out = actions(&mut b);
    assert!(out.contains(&hang_up("c1", "arm1")));
    assert!(out.contains(&CallOutput::HangUpCaller { call: "c1".into() }));
    assert_eq!(
        finished(&out).unwrap().end_reason.as_deref(),
        Some("seat_hangup")
    );
    assert!(matches!(
        b.acd().seat("arm1").unwrap().state,
        SeatState::WrapUp { .. }
    ));
}

#[test]
fn a_caller_hanging_up_while_waiting_after_a_transfer_was_answered_not_misdialled() {
    let mut b = answered_by_arm();
    b.pause(Now::at(T0 + 3), "amu1", PauseReason::Break);
    b.pause(Now::at(T0 + 3), "amu2", PauseReason::Break);
    b.transfer(
        Now::at(T0 + 4),
        "c1",
        "arm1",
        "amu",
        TransferMode::Blind,
        None,
    )
    .unwrap();
    enqueue(&mut b, T0 + 4, "c1", "amu", "regulateur_amu");
    b.handle(Now::at(T0 + 6), CallInput::CallerGone { call: "c1".into() });
    let out = actions(&mut b);
    let r = finished(&out).unwrap();
    // The ARM answered it: the call counts as answered, by the ARM.
    assert_eq!(r.outcome, Some(Outcome::Answered));
    assert_eq!(r.seat.as_deref(), Some("arm1"));
}

/// arm1 talks with the caller of c1 and, from its phone, with amu1 on c2 (it dialled 2001).
fn consulting() -> Switchboard {
    let mut b = answered_by_arm();
    arrive_in(&mut b, T0 + 5, "c2", "regulateur_amu");
    assert_eq!(actions(&mut b), vec![ring("c2", "amu1")]);
    answer(&mut b, T0 + 6, "c2", "amu1");
    actions(&mut b);
    b
}

#[test]
fn attended_transfer_hands_the_caller_to_the_consulted_doctor() {
    let mut b = consulting();
    assert_eq!(
        b.replace(Now::at(T0 + 20), "c1", "arm1", "c2", "amu1"),
        Ok(())
    );
    let out = actions(&mut b);
    assert_eq!(
        out[..3],
        [
            hang_up("c1", "arm1"),
            bridge("c1", "amu1"),
            CallOutput::HangUpCaller { call: "c2".into() },
        ]
    );
    let consult = finished(&out).unwrap();
    assert_eq!(consult.id, "c2");
    assert_eq!(consult.outcome, Some(Outcome::Answered));
    assert_eq!(consult.end_reason.as_deref(), Some("replaced"));
    assert_eq!(state(&b, "arm1"), "wrap_up");
    assert_eq!(
        b.acd().seat("amu1").unwrap().state,
        SeatState::Busy { call: "c1".into() }
    );
    let r = b.record("c1").unwrap();
    assert_eq!(r.seat.as_deref(), Some("arm1"), "the seat that answered");
    assert_eq!(handlers(r), [("arm1", Some("transfer")), ("amu1", None)]);
    let transfer = r.events.iter().find(|e| e.kind == "TRANSFER").unwrap();
    assert_eq!(transfer.seat.as_deref(), Some("arm1"));
    assert!(transfer.detail.as_deref().unwrap().contains("attended"));

    // The doctor's BYE now ends the caller's call, and frees the doctor.
    b.handle(Now::at(T0 + 60), seat_gone("c1", "amu1"));
    let out = actions(&mut b);
    assert_eq!(finished(&out).unwrap().id, "c1");
    assert_ne!(state(&b, "amu1"), "busy");
}

#[test]
fn a_replace_naming_the_wrong_seats_changes_nothing() {
    let mut b = consulting();
    let wrong = [
        ("c1", "arm2", "c2", "amu1"),
        ("c1", "arm1", "c2", "amu2"),
        ("c1", "arm1", "c9", "amu1"),
    ];
    for (call, seat, consult, target) in wrong {
        assert!(
            b.replace(Now::at(T0 + 20), call, seat, consult, target)
                .is_err()
        );
    }
    assert!(actions(&mut b).is_empty());
    assert_eq!(state(&b, "arm1"), "busy");
    assert_eq!(
        b.acd().seat("amu1").unwrap().state,
        SeatState::Busy { call: "c2".into() }
    );
}

#[test]
fn a_seat_lost_mid_call_leaves_its_caller_waiting_for_the_next_seat() {
    let mut b = board(&["arm1", "arm2"]);
    online(&mut b, T0, "arm1");
    arrive(&mut b, T0 + 1, "c1", "samu", 0);
    answer(&mut b, T0 + 2, "c1", "arm1");
    online(&mut b, T0 + 3, "arm2");
    actions(&mut b);

    // arm1's browser died: no BYE, the caller must not be hung up.
    let lost = CallInput::SeatLost {
        call: "c1".into(),
        seat: "arm1".into(),
    };
    b.handle(Now::at(T0 + 10), lost);
    assert_eq!(
        actions(&mut b),
        vec![
            left("c1", "arm1"),
            CallOutput::Requeue { call: "c1".into() }
        ]
    );
    assert_eq!(state(&b, "arm1"), "wrap_up");
    enqueue(&mut b, T0 + 10, "c1", "arm", "arm");
    assert_eq!(actions(&mut b), vec![ring("c1", "arm2")]);
    answer(&mut b, T0 + 20, "c1", "arm2");
    actions(&mut b);
    let r = b.record("c1").unwrap();
    assert_eq!(
        r.seat.as_deref(),
        Some("arm1"),
        "the seat that answered first"
    );
    assert_eq!(handlers(r), [("arm1", Some("lost")), ("arm2", None)]);
    assert!(kinds(&b, "c1").contains(&"SEAT_LOST".to_string()));
}

#[test]
fn a_caller_hanging_up_while_requeued_after_a_lost_seat_was_answered() {
    let mut b = board(&["arm1"]);
    online(&mut b, T0, "arm1");
    arrive(&mut b, T0 + 1, "c1", "samu", 0);
    answer(&mut b, T0 + 2, "c1", "arm1");
    let lost = CallInput::SeatLost {
        call: "c1".into(),
        seat: "arm1".into(),
    };
    b.handle(Now::at(T0 + 20_000), lost);
    enqueue(&mut b, T0 + 20_000, "c1", "arm", "arm");
    b.handle(
        Now::at(T0 + 25_000),
        CallInput::CallerGone { call: "c1".into() },
    );
    let out = actions(&mut b);
    let r = finished(&out).expect("finished");
    assert_eq!(r.outcome, Some(Outcome::Answered), "{r:?}");
    assert_eq!(r.seat.as_deref(), Some("arm1"));
    assert_eq!(r.talk_ms, Some(25_000 - 2));
    assert_eq!(r.handlers[0].left.as_deref(), Some("lost"));
}

#[test]
fn a_seat_holding_its_caller_gives_it_hold_audio_then_takes_it_back() {
    let mut b = answered_by_arm();
    assert!(b.hold(Now::at(T0 + 5), "c1", "arm1", true));
    assert_eq!(
        actions(&mut b),
        vec![CallOutput::Hold { call: "c1".into() }]
    );
    // The phone refreshes its session while on hold: nothing new.
    assert!(b.hold(Now::at(T0 + 6), "c1", "arm1", true));
    assert_eq!(actions(&mut b), vec![]);
    assert!(b.hold(Now::at(T0 + 9), "c1", "arm1", false));
    let resume = CallOutput::Resume {
        call: "c1".into(),
        seat: "arm1".into(),
    };
    assert_eq!(actions(&mut b), vec![resume]);
    let k = kinds(&b, "c1");
    assert!(
        k.ends_with(&["HOLD".to_string(), "RESUME".to_string()]),
        "{k:?}"
    );
    // Only the seat talking with the caller may hold it.
    assert!(!b.hold(Now::at(T0 + 10), "c1", "amu1", true));
    assert_eq!(state(&b, "arm1"), "busy");
}

/// arm1 accompanies c1 (P0) to the AMU queue; amu1 and amu2 are kept from answering by
/// `away` (busy elsewhere, or paused).
fn p0_accompanied(away: impl Fn(&mut Switchboard)) -> Switchboard {
    let mut b = answered_by_arm();
    away(&mut b);
    hand_to_amu(&mut b, TransferMode::Blind, Some(Urgency::P0)).unwrap();
    enqueue(&mut b, T0 + 10, "c1", "amu", "regulateur_amu");
    actions(&mut b);
    b
}

fn unaccompanied(reachable: bool) -> CallOutput {
    CallOutput::Unaccompanied {
        call: "c1".into(),
        seat: "arm1".into(),
        reachable,
    }
}

#[test]
fn an_arm_leaving_a_p0_before_the_doctor_answers_raises_an_alert_and_the_caller_stays_queued() {
    let mut b = p0_accompanied(|b| {
        for (call, seat) in [("e1", "amu1"), ("e2", "amu2")] {
            arrive_in(b, T0 + 3, call, "regulateur_amu");
            answer(b, T0 + 4, call, seat);
        }
    });
    b.hang_up_seat(Now::at(T0 + 20), "c1", "arm1");
    let out = actions(&mut b);
    let hold = CallOutput::Hold { call: "c1".into() };
    assert!(out.contains(&hold), "{out:?}");
    // Both doctors are busy, not gone: the caller waits for the first one free.
    assert!(out.contains(&unaccompanied(true)), "{out:?}");
    let r = b.record("c1").unwrap();
    let alert = r
        .events
        .iter()
        .find(|e| e.kind == "P0_UNACCOMPANIED")
        .unwrap();
    assert_eq!(
        (alert.seat.as_deref(), alert.detail.as_deref()),
        (Some("arm1"), Some("queued"))
    );
    assert_eq!(b.waiting_since("c1"), Some(T0 + 10));
    b.handle(Now::at(T0 + 40), seat_gone("e1", "amu1"));
    b.handle_timeout(Now::at(T0 + 60 * SECOND));
    assert!(actions(&mut b).contains(&ring("c1", "amu1")));
}

#[test]
fn a_p0_left_alone_with_no_doctor_logged_in_is_flagged_for_the_overflow() {
    let mut b = p0_accompanied(|b| {
        b.pause(Now::at(T0 + 5), "amu1", PauseReason::LoggedOut);
        b.handle(
            Now::at(T0 + 5),
            CallInput::SeatOffline {
                seat: "amu2".into(),
            },
        );
    });
    // The ARM's phone drops (BYE) rather than a console hang-up: the same.
    b.handle(Now::at(T0 + 20), seat_gone("c1", "arm1"));
    let out = actions(&mut b);
    assert!(out.contains(&unaccompanied(false)), "{out:?}");
    let r = b.record("c1").unwrap();
    assert!(
        r.events
            .iter()
            .any(|e| e.kind == "P0_UNACCOMPANIED" && e.detail.as_deref() == Some("no_seat"))
    );
}

#[test]
fn an_escalated_call_counts_as_waiting_again_until_a_doctor_answers() {
    let mut b = answered_by_arm();
    b.pause(Now::at(T0 + 3), "amu1", PauseReason::Break);
    b.pause(Now::at(T0 + 3), "amu2", PauseReason::Break);
    assert_eq!((b.waiting_since("c1"), b.calls_waiting()), (None, 0));
    assert_eq!(b.seats_on("c1"), ["arm1"]);
    hand_to_amu(&mut b, TransferMode::Accompanied, None).unwrap();
    enqueue(&mut b, T0 + 11, "c1", "amu", "regulateur_amu");
    // Accompanied: waiting for AMU since it was queued there, the ARM still on the line.
    assert_eq!(
        (b.waiting_since("c1"), b.calls_waiting()),
        (Some(T0 + 11), 1)
    );
    assert_eq!(b.seats_on("c1"), ["arm1"]);
    b.hang_up_seat(Now::at(T0 + 20), "c1", "arm1");
    assert_eq!(b.waiting_since("c1"), Some(T0 + 11));
    assert!(b.seats_on("c1").is_empty(), "arm1 left");
    b.unpause(Now::at(T0 + 30), "amu2");
    answer(&mut b, T0 + 31, "c1", "amu2");
    assert_eq!((b.waiting_since("c1"), b.calls_waiting()), (None, 0));
    assert_eq!(b.seats_on("c1"), ["amu2"]);
}

#[test]
fn a_p0_left_while_its_forward_rings_stays_with_the_number_dialled() {
    let mut b = answered_by_arm();
    b.transfer(
        Now::at(T0 + 10),
        "c1",
        "arm1",
        "3114",
        TransferMode::Accompanied,
        Some(Urgency::P0),
    )
    .unwrap();
    let forward = CallInput::Forward {
        call: "c1".into(),
        number: "3114".into(),
    };
    b.handle(Now::at(T0 + 10), forward);
    actions(&mut b);
    b.hang_up_seat(Now::at(T0 + 15), "c1", "arm1");
    let out = actions(&mut b);
    assert!(
        out.contains(&unaccompanied(true)),
        "alerted, not overflowed: {out:?}"
    );
    // The number answers: the caller is bridged to it, not hung up as "too late".
    b.handle(
        Now::at(T0 + 20),
        CallInput::ExternalAnswered { call: "c1".into() },
    );
    assert_eq!(actions(&mut b), vec![bridge("c1", Party::External)]);
}

/// Accompanied transfers ending early: the number dialled is cancelled (and only it).
fn accompanied_ending(forward: bool, end: CallInput) -> Vec<CallOutput> {
    let mut b = answered_by_arm();
    hand_to_amu(&mut b, TransferMode::Accompanied, None).unwrap();
    if forward {
        let number = "0387000000".into();
        let dial = CallInput::Forward {
            call: "c1".into(),
            number,
        };
        b.handle(Now::at(T0 + 10), dial);
    } else {
        enqueue(&mut b, T0 + 10, "c1", "amu", "regulateur_amu");
    }
    actions(&mut b);
    b.handle(Now::at(T0 + 20), end);
    actions(&mut b)
}

#[test]
fn a_call_ending_while_its_accompanied_transfer_rings_lets_go_of_the_target() {
    let failed = CallInput::Failed {
        call: "c1".into(),
        reason: "media".into(),
    };
    let out = accompanied_ending(true, failed);
    assert!(out.contains(&cancel("c1", Party::External)), "{out:?}");
    let out = accompanied_ending(false, CallInput::CallerGone { call: "c1".into() });
    assert!(out.contains(&cancel("c1", "amu1")), "{out:?}");
    assert!(
        !out.contains(&cancel("c1", Party::External)),
        "nothing dialled: {out:?}"
    );
}
