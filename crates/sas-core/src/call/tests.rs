//! Virtual-time tests of the switchboard: no sockets, no sleeping, time is a number.

use super::*;
use crate::cti::TransferMode;
use crate::time::SECOND;

use super::tests_support::*;

#[test]
fn samu_calls_are_served_before_sas_calls_and_oldest_first() {
    let mut b = board(&["arm1"]);
    arrive(&mut b, T0, "sas1", "sas", 1);
    arrive(&mut b, T0 + 1, "samu1", "samu", 0);
    arrive(&mut b, T0 + 2, "samu2", "samu", 0);
    assert!(actions(&mut b).is_empty(), "no seat online yet");
    online(&mut b, T0 + 3, "arm1");
    assert_eq!(actions(&mut b), vec![ring("samu1", "arm1")]);
    // Each call answered and ended, wrap-up passes, the next one follows in order.
    let mut now = T0 + 4;
    for (call, next) in [
        ("samu1", Some("samu2")),
        ("samu2", Some("sas1")),
        ("sas1", None),
    ] {
        answer(&mut b, now, call, "arm1");
        b.handle(
            Now::at(now + SECOND),
            CallInput::CallerGone { call: call.into() },
        );
        assert!(
            actions(&mut b)
                .iter()
                .any(|o| matches!(o, CallOutput::HangUpSeat { .. }))
        );
        now += SECOND + 10 * SECOND;
        assert_eq!(
            b.poll_timeout(),
            Some(Mono::from_millis(now)),
            "wrap-up deadline"
        );
        b.handle_timeout(Now::at(now));
        let got = actions(&mut b);
        match next {
            Some(n) => assert_eq!(got, vec![ring(n, "arm1")]),
            None => assert!(got.is_empty()),
        }
    }
}

#[test]
fn longest_idle_seat_gets_the_call() {
    let mut b = board(&["arm1", "arm2", "arm3"]);
    online(&mut b, T0 + 30, "arm1");
    online(&mut b, T0 + 10, "arm2");
    online(&mut b, T0 + 20, "arm3");
    arrive(&mut b, T0 + 100, "c1", "samu", 0);
    arrive(&mut b, T0 + 101, "c2", "samu", 0);
    assert_eq!(
        actions(&mut b),
        vec![ring("c1", "arm2"), ring("c2", "arm3")]
    );
}

#[test]
fn ring_no_answer_pauses_the_seat_and_offers_the_next() {
    let mut b = board(&["arm1", "arm2"]);
    online(&mut b, T0, "arm1");
    online(&mut b, T0 + 1, "arm2");
    arrive(&mut b, T0 + 10, "c1", "samu", 0);
    assert_eq!(actions(&mut b), vec![ring("c1", "arm1")]);
    let deadline = T0 + 10 + 15 * SECOND;
    assert_eq!(b.poll_timeout(), Some(Mono::from_millis(deadline)));
    b.handle_timeout(Now::at(deadline - 1));
    assert!(actions(&mut b).is_empty(), "not before the deadline");
    b.handle_timeout(Now::at(deadline));
    assert_eq!(
        actions(&mut b),
        vec![cancel("c1", "arm1"), ring("c1", "arm2"),]
    );
    assert_eq!(b.acd().seat("arm1").unwrap().state.label(), "paused");
    let offers = &b.record("c1").unwrap().offers;
    assert_eq!(offers[0].result, OfferResult::NoAnswer);
    assert_eq!(offers[1].result, OfferResult::Ringing);
}

#[test]
fn rejection_and_unreachable_seat_move_to_the_next_seat() {
    let mut b = board(&["arm1", "arm2", "arm3"]);
    for (i, s) in ["arm1", "arm2", "arm3"].iter().enumerate() {
        online(&mut b, T0 + i as u64, s);
    }
    arrive(&mut b, T0 + 10, "c1", "sas", 1);
    assert_eq!(actions(&mut b), vec![ring("c1", "arm1")]);
    b.handle(
        Now::at(T0 + 20),
        CallInput::SeatFailed {
            call: "c1".into(),
            seat: "arm1".into(),
            status: Some(486),
        },
    );
    assert_eq!(actions(&mut b), vec![ring("c1", "arm2")]);
    b.handle(
        Now::at(T0 + 30),
        CallInput::SeatFailed {
            call: "c1".into(),
            seat: "arm2".into(),
            status: None,
        },
    );
    assert_eq!(actions(&mut b), vec![ring("c1", "arm3")]);
    let r = b.record("c1").unwrap();
    assert_eq!(r.offers[0].status, Some(486));
    assert_eq!(r.offers[1].result, OfferResult::Unreachable);
}

#[test]
fn seat_vanishing_mid_ring_sends_the_call_to_the_next_seat() {
    let mut b = board(&["arm1", "arm2"]);
    online(&mut b, T0, "arm1");
    online(&mut b, T0 + 1, "arm2");
    arrive(&mut b, T0 + 10, "c1", "samu", 0);
    actions(&mut b);
    b.handle(
        Now::at(T0 + 500),
        CallInput::SeatOffline {
            seat: "arm1".into(),
        },
    );
    assert_eq!(
        actions(&mut b),
        vec![cancel("c1", "arm1"), ring("c1", "arm2"),]
    );
    assert_eq!(b.acd().seat("arm1").unwrap().state.label(), "offline");
    // arm1's ring timer is gone: the only deadline left is arm2's.
    assert_eq!(
        b.poll_timeout(),
        Some(Mono::from_millis(T0 + 500 + 15 * SECOND))
    );
}

#[test]
fn cancel_while_queued_is_abandoned_or_misdial() {
    let mut b = board(&[]);
    arrive(&mut b, T0, "quick", "samu", 0);
    arrive(&mut b, T0, "patient", "samu", 0);
    b.handle(
        Now::at(T0 + 14 * SECOND),
        CallInput::CallerGone {
            call: "quick".into(),
        },
    );
    let r = finished(&actions(&mut b)).cloned().unwrap();
    assert_eq!(r.outcome, Some(Outcome::Misdial));
    b.handle(
        Now::at(T0 + 40 * SECOND),
        CallInput::CallerGone {
            call: "patient".into(),
        },
    );
    let r = finished(&actions(&mut b)).cloned().unwrap();
    assert_eq!(r.outcome, Some(Outcome::Abandoned));
    assert_eq!(r.wait_ms, Some(40_000));
    assert_eq!(r.end_reason.as_deref(), Some("caller_cancel"));
    assert_eq!(b.active_calls(), 0);
}

#[test]
fn cancel_while_ringing_withdraws_the_offer_and_frees_the_seat() {
    let mut b = board(&["arm1"]);
    online(&mut b, T0, "arm1");
    arrive(&mut b, T0, "c1", "samu", 0);
    actions(&mut b);
    b.handle(
        Now::at(T0 + 20 * SECOND),
        CallInput::CallerGone { call: "c1".into() },
    );
    let out = actions(&mut b);
    assert_eq!(out[0], cancel("c1", "arm1"));
    let r = finished(&out).unwrap();
    assert_eq!(r.offers[0].result, OfferResult::Withdrawn);
    assert_eq!(b.acd().seat("arm1").unwrap().state.label(), "available");
    assert_eq!(b.poll_timeout(), None);
}

#[test]
fn answered_call_bridges_and_records_wait_and_talk_time() {
    let mut b = board(&["arm1"]);
    online(&mut b, T0, "arm1");
    arrive(&mut b, T0, "c1", "samu", 0);
    actions(&mut b);
    answer(&mut b, T0 + 3 * SECOND, "c1", "arm1");
    assert_eq!(actions(&mut b), vec![bridge("c1", "arm1")]);
    assert_eq!(b.acd().seat("arm1").unwrap().state.label(), "busy");
    b.handle(Now::at(T0 + 63 * SECOND), seat_gone("c1", "arm1"));
    let out = actions(&mut b);
    assert_eq!(out[0], CallOutput::HangUpCaller { call: "c1".into() });
    let r = finished(&out).unwrap();
    assert_eq!(r.outcome, Some(Outcome::Answered));
    assert_eq!((r.wait_ms, r.talk_ms), (Some(3_000), Some(60_000)));
    assert_eq!(r.seat.as_deref(), Some("arm1"));
    let kinds: Vec<&str> = r.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["ARRIVED", "ENTERQUEUE", "OFFER", "CONNECT", "END"]);
    assert_eq!(b.acd().seat("arm1").unwrap().state.label(), "wrap_up");
}

#[test]
fn late_answer_after_withdrawal_is_hung_up() {
    let mut b = board(&["arm1", "arm2"]);
    online(&mut b, T0, "arm1");
    arrive(&mut b, T0, "c1", "samu", 0);
    actions(&mut b);
    b.handle_timeout(Now::at(T0 + 15 * SECOND));
    actions(&mut b);
    answer(&mut b, T0 + 15 * SECOND + 5, "c1", "arm1");
    assert_eq!(actions(&mut b), vec![hang_up("c1", "arm1")]);
    assert!(b.record("c1").is_some(), "the call still waits");
}

#[test]
fn a_thousand_calls_with_failures_all_end_with_a_record() {
    // 20 seats, calls every 3 s, one seat in five never answers; everything ends recorded.
    let seats: Vec<String> = (0..20).map(|i| format!("arm{i}")).collect();
    let refs: Vec<&str> = seats.iter().map(String::as_str).collect();
    let mut b = board(&refs);
    for s in &seats {
        online(&mut b, T0, s);
    }
    let mut now = T0;
    let mut finished_count = 0;
    let mut bridged: Vec<(EpochMillis, String)> = Vec::new();
    for i in 0..1000u64 {
        now += 3 * SECOND;
        arrive(
            &mut b,
            now,
            &format!("c{i}"),
            if i % 3 == 0 { "samu" } else { "sas" },
            (i % 3 != 0) as u8,
        );
        // Hang up bridged calls after 40 s; unpause seats paused by ring-no-answer.
        while let Some(pos) = bridged.iter().position(|(t, _)| *t <= now) {
            let (_, call) = bridged.remove(pos);
            b.handle(Now::at(now), CallInput::CallerGone { call: call.into() });
        }
        while let Some(t) = b.poll_timeout().map(Mono::as_millis).filter(|t| *t <= now) {
            b.handle_timeout(Now::at(t));
        }
        let paused: Vec<SeatId> = b
            .acd()
            .seats()
            .filter(|s| s.state.label() == "paused")
            .map(|s| s.id.clone())
            .collect();
        for s in paused {
            b.handle(Now::at(now), CallInput::SeatOnline { seat: s.clone() });
        }
        while let Some(out) = b.poll_output() {
            match out {
                CallOutput::RingSeat { call, seat } if !seat.ends_with('4') => {
                    b.handle(
                        Now::at(now),
                        CallInput::SeatAnswered {
                            call: call.clone(),
                            seat,
                        },
                    );
                    bridged.push((now + 40 * SECOND, String::from(call)));
                }
                CallOutput::Finished(r) => {
                    assert!(r.outcome.is_some());
                    finished_count += 1;
                }
                _ => {}
            }
        }
    }
    assert!(finished_count > 900, "{finished_count}");
    assert!(b.active_calls() < 100);
}

#[test]
fn a_call_answered_by_the_router_keeps_the_callers_digits() {
    use crate::media::dtmf::{DigitEvent, DtmfSource};
    let mut b = board(&[]);
    arrive(&mut b, T0, "c1", "samu", 0);
    b.handle(Now::at(T0), CallInput::CallerAnswered { call: "c1".into() });
    assert!(actions(&mut b).is_empty(), "no seat: nothing to do yet");
    for (i, (digit, source)) in [('3', DtmfSource::Rfc4733), ('#', DtmfSource::SipInfo)]
        .into_iter()
        .enumerate()
    {
        let at = T0 + 1000 * (i as u64 + 1);
        let digit = DigitEvent {
            digit,
            at,
            duration_ms: 100,
            source,
        };
        b.handle(
            Now::at(at),
            CallInput::Digit {
                call: "c1".into(),
                digit,
            },
        );
    }
    b.handle(
        Now::at(T0 + 20 * SECOND),
        CallInput::CallerGone { call: "c1".into() },
    );
    let out = actions(&mut b);
    let record = finished(&out).expect("record");
    assert_eq!(record.caller_answered_at, Some(T0));
    let keys: String = record.dtmf.iter().map(|d| d.digit).collect();
    assert_eq!(keys, "3#");
    let dtmf_events: Vec<_> = record
        .events
        .iter()
        .filter(|e| e.kind == "DTMF")
        .map(|e| (e.at, e.detail.clone().unwrap_or_default()))
        .collect();
    assert_eq!(
        dtmf_events,
        vec![
            (T0 + 1000, "3 rfc4733".into()),
            (T0 + 2000, "# sip_info".into())
        ]
    );
    assert_eq!(record.outcome, Some(Outcome::Abandoned));
}

#[test]
fn overflow_leaves_the_queue_and_a_released_call_is_closed() {
    let mut b = board(&["arm1"]);
    arrive(&mut b, T0, "c1", "sas", 1);
    online(&mut b, T0 + 1, "arm1");
    assert_eq!(actions(&mut b), vec![ring("c1", "arm1")]);
    b.handle(
        Now::at(T0 + 60 * SECOND),
        CallInput::Overflow { call: "c1".into() },
    );
    assert_eq!(
        actions(&mut b),
        vec![cancel("c1", "arm1")],
        "the ringing offer is withdrawn"
    );
    assert_eq!(b.acd().waiting(), 0);
    b.handle(
        Now::at(T0 + 61 * SECOND),
        CallInput::Released {
            call: "c1".into(),
            reason: "dial_plan_hangup".into(),
        },
    );
    let out = actions(&mut b);
    assert!(
        out.contains(&CallOutput::RejectCaller {
            call: "c1".into(),
            status: 480
        }),
        "never answered: refused, not BYE"
    );
    let r = finished(&out).expect("record");
    assert_eq!(r.outcome, Some(Outcome::Closed));
    assert!(r.events.iter().any(|e| e.kind == "OVERFLOW"));
    assert_eq!(r.offers[0].result, OfferResult::Withdrawn);
}

#[test]
fn a_forward_rides_the_seat_leg_and_falls_back_when_it_fails() {
    let mut b = board(&[]);
    arrive(&mut b, T0, "c1", "samu", 0);
    let forward = |b: &mut Switchboard, now| {
        b.handle(
            Now::at(now),
            CallInput::Forward {
                call: "c1".into(),
                number: "0387000000".into(),
            },
        );
    };
    forward(&mut b, T0 + 1000);
    let dial = CallOutput::Dial {
        call: "c1".into(),
        number: "0387000000".into(),
    };
    assert_eq!(actions(&mut b), vec![dial.clone()]);
    assert_eq!(b.acd().waiting(), 0, "out of the queue while dialling");
    b.handle(
        Now::at(T0 + 2000),
        CallInput::ExternalFailed {
            call: "c1".into(),
            status: Some(503),
        },
    );
    assert!(actions(&mut b).is_empty());
    forward(&mut b, T0 + 3000);
    assert_eq!(
        actions(&mut b),
        vec![dial],
        "back to waiting: can be forwarded again"
    );
    b.handle(
        Now::at(T0 + 4000),
        CallInput::ExternalAnswered { call: "c1".into() },
    );
    assert_eq!(actions(&mut b), vec![bridge("c1", Party::External)]);
    b.handle(
        Now::at(T0 + 9000),
        CallInput::ExternalGone { call: "c1".into() },
    );
    let out = actions(&mut b);
    let r = finished(&out).expect("record");
    assert_eq!(r.outcome, Some(Outcome::Forwarded));
    assert_eq!(r.end_reason.as_deref(), Some("external_bye"));
    assert_eq!(r.wait_ms, Some(4000));
    assert!(r.events.iter().any(|e| e.kind == "FORWARD_FAILED"));
}

#[test]
fn ring_all_cancels_the_seats_that_lost_the_race() {
    let mut b = board(&["arm1", "arm2", "arm3"]);
    b.set_queue(
        QueueKey::role("arm"),
        QueueSettings {
            strategy: crate::acd::Strategy::RingAll,
            ..Default::default()
        },
    );
    for s in ["arm1", "arm2", "arm3"] {
        online(&mut b, T0, s);
    }
    arrive(&mut b, T0 + 1, "c1", "samu", 0);
    assert_eq!(actions(&mut b).len(), 3, "every seat rings");
    answer(&mut b, T0 + 2, "c1", "arm2");
    let got = actions(&mut b);
    for loser in ["arm1", "arm3"] {
        assert!(got.contains(&cancel("c1", loser)));
    }
    let offers = &b.record("c1").unwrap().offers;
    assert_eq!(
        offers
            .iter()
            .filter(|o| o.result == OfferResult::Withdrawn)
            .count(),
        2
    );
}

#[test]
fn seat_reset_ends_a_call_whose_bye_was_lost() {
    let mut b = board(&["arm1"]);
    online(&mut b, T0, "arm1");
    arrive(&mut b, T0 + 1, "c1", "samu", 0);
    answer(&mut b, T0 + 2, "c1", "arm1");
    actions(&mut b);
    b.seat_reset(Now::at(T0 + 60 * SECOND), "arm1").unwrap();
    let got = actions(&mut b);
    assert!(got.contains(&CallOutput::HangUpCaller { call: "c1".into() }));
    assert_eq!(
        finished(&got).unwrap().end_reason.as_deref(),
        Some("seat_reset")
    );
    assert_eq!(b.acd().seat("arm1").unwrap().state.label(), "available");
    assert!(b.seat_reset(Now::at(T0), "ghost").is_err());
}

#[test]
fn an_escalated_p0_call_overtakes_the_waiting_ones() {
    let mut b = board(&["reg1"]);
    let reg = |u| CallRequest::new("arm", 0).with_urgency(u);
    for (i, call) in ["p2", "p0"].into_iter().enumerate() {
        arrive(&mut b, T0 + i as u64, call, "samu", 0);
    }
    // Both were queued unrated by `arrive`; re-queue them rated as a regulator would.
    for call in ["p2", "p0"] {
        b.handle(Now::at(T0 + 5), CallInput::Overflow { call: call.into() });
    }
    b.enqueue(Now::at(T0 + 6), "p2", "reg", &reg(Urgency::P2));
    b.enqueue(Now::at(T0 + 7), "p0", "reg", &reg(Urgency::P0));
    online(&mut b, T0 + 8, "reg1");
    assert_eq!(actions(&mut b), vec![ring("p0", "reg1")]);
    let detail = b
        .record("p0")
        .unwrap()
        .events
        .iter()
        .rev()
        .find(|e| e.kind == "ENTERQUEUE");
    assert!(
        detail
            .unwrap()
            .detail
            .as_deref()
            .unwrap()
            .ends_with("urgency P0")
    );
}

#[test]
fn a_full_queue_refuses_new_calls_busy_but_takes_back_answered_ones() {
    let mut b = board(&["arm1"]);
    let one = QueueSettings {
        max_waiting: Some(1),
        ..Default::default()
    };
    b.set_queue(QueueKey::role("arm"), one);
    online(&mut b, T0, "arm1");
    arrive(&mut b, T0 + 1, "c1", "samu", 0);
    arrive(&mut b, T0 + 2, "c2", "samu", 0);
    arrived(&mut b, T0 + 3, "c3", "samu");
    let request = CallRequest::new("arm", 0);
    assert!(
        !b.enqueue(Now::at(T0 + 3), "c3", "arm", &request),
        "one waits already"
    );
    actions(&mut b);
    b.handle(Now::at(T0 + 3), CallInput::QueueFull { call: "c3".into() });
    let out = actions(&mut b);
    assert!(out.contains(&CallOutput::RejectCaller {
        call: "c3".into(),
        status: 486
    }));
    let r = finished(&out).expect("c3 ends at once");
    assert_eq!(r.outcome, Some(Outcome::QueueFull));
    assert_eq!(r.end_reason.as_deref(), Some("queue_full"));
    assert!(r.events.iter().any(|e| e.kind == "QUEUE_REFUSED"));

    // c1, answered then transferred back to the full queue, is taken whatever its size.
    answer(&mut b, T0 + 4, "c1", "arm1");
    b.transfer(
        Now::at(T0 + 5),
        "c1",
        "arm1",
        "arm",
        TransferMode::Blind,
        None,
    )
    .unwrap();
    arrived(&mut b, T0 + 5, "c4", "samu");
    assert!(
        !b.enqueue(Now::at(T0 + 5), "c4", "arm", &request),
        "still full"
    );
    assert!(
        b.enqueue(Now::at(T0 + 6), "c1", "arm", &request),
        "c1 comes back"
    );
}

#[test]
fn a_lost_caller_ends_its_call_and_frees_its_seat() {
    let mut b = board(&["arm1", "arm2"]);
    online(&mut b, T0, "arm1");
    arrive(&mut b, T0 + 1, "c1", "samu", 0);
    answer(&mut b, T0 + 2, "c1", "arm1");
    actions(&mut b);
    let detail = "no RTP/RTCP for 60 s, OPTIONS probe unanswered".to_string();
    b.handle(
        Now::at(T0 + 70 * SECOND),
        CallInput::CallerLost {
            call: "c1".into(),
            detail,
        },
    );
    let out = actions(&mut b);
    assert!(out.contains(&hang_up("c1", "arm1")));
    assert!(out.contains(&CallOutput::HangUpCaller { call: "c1".into() }));
    let r = finished(&out).expect("record");
    assert_eq!(r.outcome, Some(Outcome::CallerLost));
    assert_eq!(r.handlers[0].left.as_deref(), Some("caller_lost"));
    assert!(r.events.iter().any(|e| e.kind == "CALLER_LOST"));
    assert_eq!(b.acd().seat("arm1").unwrap().state.label(), "wrap_up");

    // Waiting, ringing a seat: the offer is withdrawn.
    online(&mut b, T0, "arm2");
    arrive(&mut b, T0 + 80 * SECOND, "c2", "samu", 0);
    actions(&mut b);
    b.handle(
        Now::at(T0 + 81 * SECOND),
        CallInput::CallerLost {
            call: "c2".into(),
            detail: String::new(),
        },
    );
    let out = actions(&mut b);
    assert!(out.contains(&cancel("c2", "arm2")));
    assert_eq!(finished(&out).unwrap().outcome, Some(Outcome::CallerLost));
}

#[test]
fn a_408_or_503_for_the_seat_is_not_its_refusal() {
    let mut b = board(&["arm1", "arm2"]);
    online(&mut b, T0, "arm1");
    online(&mut b, T0 + 1, "arm2");
    arrive(&mut b, T0 + 2, "c1", "samu", 0);
    actions(&mut b);
    for (seat, status) in [("arm1", 503), ("arm2", 486)] {
        b.handle(
            Now::at(T0 + 3),
            CallInput::SeatFailed {
                call: "c1".into(),
                seat: seat.into(),
                status: Some(status),
            },
        );
    }
    let reason = |b: &Switchboard, seat: &str| match b.acd().seat(seat).unwrap().state {
        crate::acd::SeatState::Paused { reason, .. } => Some(reason),
        _ => None,
    };
    assert_eq!(reason(&b, "arm1"), Some(PauseReason::Unreachable));
    assert_eq!(reason(&b, "arm2"), Some(PauseReason::Rejected));
    assert_eq!(b.record("c1").unwrap().offers[0].status, Some(503));
}

/// A call that ends by a path that forgot its seats (none does today; under overload all
/// 100 seats once stayed busy for minutes): the seat busy with it and the one ringing for
/// it are freed as it ends, their legs hung up and cancelled.
#[test]
fn a_call_ending_with_its_seats_still_held_frees_them() {
    let mut b = board(&["arm1", "arm2"]);
    online(&mut b, T0, "arm1");
    arrive(&mut b, T0, "c1", "samu", 0);
    b.handle(Now::at(T0 + SECOND), answered_by("c1", "arm1"));
    online(&mut b, T0, "arm2");
    arrive(&mut b, T0 + SECOND, "c2", "samu", 0);
    actions(&mut b);
    let now = Now::at(T0 + 2 * SECOND);
    for call in ["c1", "c2"] {
        b.finish(now, call, Outcome::Failed, EndReason::CallerLost);
    }
    let outs = actions(&mut b);
    assert!(outs.iter().any(|o| matches!(o,
        CallOutput::HangUpSeat { call, seat: Party::Seat(s) } if call.as_str() == "c1" && s.as_str() == "arm1")));
    assert!(outs.iter().any(|o| matches!(o,
        CallOutput::CancelSeat { call, .. } if call.as_str() == "c2")));
    // arm1 in its wrap-up (10 s on this board), arm2 available again.
    let state = |b: &Switchboard, seat| b.acd().seat(seat).map(|s| s.state.clone());
    assert!(matches!(state(&b, "arm1"), Some(SeatState::WrapUp { .. })));
    assert_eq!(state(&b, "arm2"), Some(SeatState::Available));
}
