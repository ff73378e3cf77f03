//! Unit tests of the ACD: one behaviour each, on virtual time.

use super::*;

pub(super) fn settings() -> AcdSettings {
    AcdSettings {
        ring_timeout_ms: 15_000,
        wrap_up_ms: 0,
        autopause: true,
        // Autopause as it was: until resumed, one seat at a time (tests opt in).
        autopause_resume_ms: 0,
        autopause_burst: 0,
        aging_step_ms: 0,
    }
}

pub(super) fn offers(acd: &mut Acd) -> Vec<(CallId, SeatId)> {
    outputs(acd)
        .into_iter()
        .filter_map(|o| match o {
            AcdOutput::Offer { call, seat } => Some((call, seat)),
            _ => None,
        })
        .collect()
}

pub(super) fn outputs(acd: &mut Acd) -> Vec<AcdOutput> {
    std::iter::from_fn(|| acd.poll_output()).collect()
}

/// An ARM queue that rings all of `seats` at once, all online.
fn ring_all(seats: &[&str]) -> Acd {
    let mut acd = Acd::new(settings());
    let all = QueueSettings {
        strategy: Strategy::RingAll,
        ..Default::default()
    };
    acd.set_queue(QueueKey::role("arm"), all);
    for s in seats {
        acd.add_seat(s, "arm", ms(0));
        acd.seat_online(ms(0), s);
    }
    acd
}

/// Seat `a` (ARM, 30 s wrap-up) answered call `c` at 2 ms.
fn a_busy_on_c() -> Acd {
    let mut acd = Acd::new(AcdSettings {
        wrap_up_ms: 30_000,
        ..settings()
    });
    acd.add_seat("a", "arm", ms(0));
    acd.seat_online(ms(0), "a");
    acd.enqueue(ms(1), "c", &arm()).unwrap();
    assert!(acd.answered(ms(2), "a", "c"));
    acd
}

pub(super) fn pair(call: &str, seat: &str) -> (CallId, SeatId) {
    (call.into(), seat.into())
}

/// The monotonic instant `t` ms after the origin.
pub(super) fn ms(t: u64) -> Mono {
    Mono::from_millis(t)
}

pub(super) fn arm() -> CallRequest {
    CallRequest::new(ARM_ROLE, 0)
}

#[test]
fn each_queue_is_served_by_seats_of_its_role_only() {
    let mut acd = Acd::new(settings());
    acd.add_seat("arm1", "arm", ms(0));
    acd.add_seat("psy1", "psy", ms(0));
    acd.seat_online(ms(1), "arm1");
    acd.enqueue(ms(2), "c-psy", &CallRequest::new("psy", 1))
        .unwrap();
    acd.enqueue(ms(3), "c-arm", &arm()).unwrap();
    assert_eq!(offers(&mut acd), vec![pair("c-arm", "arm1")]);
    assert_eq!(acd.waiting(), 1, "the psy call waits for a psy seat");
    acd.seat_online(ms(4), "psy1");
    assert_eq!(offers(&mut acd), vec![pair("c-psy", "psy1")]);
}

#[test]
fn skill_queue_takes_only_skilled_seats_and_role_queue_takes_all() {
    let mut acd = Acd::new(settings());
    for s in ["a", "b"] {
        acd.add_seat(s, "med", ms(0));
    }
    acd.set_skills(ms(0), "b", &["pédiatrie"]).unwrap();
    acd.seat_online(ms(1), "a");
    let child = CallRequest::new("med", 0).with_skill("pédiatrie");
    acd.enqueue(ms(2), "child", &child).unwrap();
    assert!(offers(&mut acd).is_empty(), "a lacks the skill");
    acd.seat_online(ms(3), "b");
    assert_eq!(offers(&mut acd), vec![pair("child", "b")]);
    acd.enqueue(ms(4), "adult", &CallRequest::new("med", 0))
        .unwrap();
    assert_eq!(offers(&mut acd), vec![pair("adult", "a")]);
    assert_eq!(
        acd.set_skills(ms(5), "nobody", &[]),
        Err(AcdError::UnknownSeat("nobody".into()))
    );
}

#[test]
fn p0_goes_ahead_and_same_priority_is_oldest_first() {
    let mut acd = Acd::new(settings());
    acd.add_seat("r", "med", ms(0));
    let med = |u| CallRequest::new("med", 0).with_urgency(u);
    acd.enqueue(ms(1), "p2-old", &med(Urgency::P2)).unwrap();
    acd.enqueue(ms(2), "p1", &med(Urgency::P1)).unwrap();
    acd.enqueue(ms(3), "p2-new", &med(Urgency::P2)).unwrap();
    acd.enqueue(ms(4), "p0", &med(Urgency::P0)).unwrap();
    acd.enqueue(ms(5), "nr", &med(Urgency::Nr)).unwrap();
    acd.seat_online(ms(6), "r");
    let mut served = Vec::new();
    let mut now = 6;
    while let Some((call, _)) = offers(&mut acd).pop() {
        served.push(call.clone());
        now += 1;
        assert!(acd.answered(ms(now), "r", &call));
        acd.call_ended(ms(now), "r");
    }
    assert_eq!(served, ["p0", "p1", "p2-old", "p2-new", "nr"]);
}

#[test]
fn max_waiting_refuses_the_extra_call() {
    let mut acd = Acd::new(settings());
    let q = QueueKey::role("arm");
    acd.set_queue(
        q.clone(),
        QueueSettings {
            max_waiting: Some(2),
            ..Default::default()
        },
    );
    acd.enqueue(ms(1), "a", &arm()).unwrap();
    acd.enqueue(ms(1), "b", &arm()).unwrap();
    assert_eq!(
        acd.enqueue(ms(1), "c", &arm()),
        Err(AcdError::QueueFull { queue: q, max: 2 })
    );
    assert_eq!(
        acd.enqueue(ms(1), "a", &arm()),
        Err(AcdError::AlreadyQueued("a".into()))
    );
    assert_eq!(acd.waiting(), 2);
}

#[test]
fn wrap_up_comes_from_seat_then_queue_then_default() {
    let mut acd = Acd::new(AcdSettings {
        wrap_up_ms: 1_000,
        ..settings()
    });
    acd.set_queue(
        QueueKey::role("arm"),
        QueueSettings {
            wrap_up_ms: Some(5_000),
            ..Default::default()
        },
    );
    acd.add_seat("q", "arm", ms(0));
    acd.add_seat("s", "arm", ms(0));
    acd.set_seat_wrap_up("s", Some(9_000)).unwrap();
    for (i, seat) in ["q", "s"].into_iter().enumerate() {
        acd.seat_online(ms(0), seat);
        let call = format!("c{i}");
        acd.enqueue(ms(10), &call, &arm()).unwrap();
        assert!(acd.answered(ms(20), seat, &call));
        acd.call_ended(ms(100), seat);
    }
    assert_eq!(
        acd.seat("q").unwrap().state,
        SeatState::WrapUp { until: ms(5_100) }
    );
    assert_eq!(
        acd.seat("s").unwrap().state,
        SeatState::WrapUp { until: ms(9_100) }
    );
    assert_eq!(acd.poll_timeout(), Some(ms(5_100)));
    acd.handle_timeout(ms(5_100));
    assert_eq!(acd.seat("q").unwrap().state, SeatState::Available);
    assert_eq!(acd.poll_timeout(), Some(ms(9_100)));
}

#[test]
fn ring_no_answer_autopauses_and_requeues() {
    let mut acd = Acd::new(settings());
    acd.add_seat("a", "arm", ms(0));
    acd.add_seat("b", "arm", ms(5));
    acd.seat_online(ms(0), "a");
    acd.seat_online(ms(0), "b");
    acd.enqueue(ms(1), "c", &arm()).unwrap();
    assert_eq!(offers(&mut acd), vec![pair("c", "a")]);
    acd.seat_rang("a", "c");
    assert_eq!(acd.poll_timeout(), Some(ms(15_001)));
    acd.handle_timeout(ms(15_001));
    let out = outputs(&mut acd);
    assert!(out.contains(&AcdOutput::OfferTimedOut {
        call: "c".into(),
        seat: "a".into()
    }));
    assert!(out.contains(&AcdOutput::Offer {
        call: "c".into(),
        seat: "b".into()
    }));
    assert_eq!(
        acd.seat("a").unwrap().state,
        SeatState::Paused {
            reason: PauseReason::RingNoAnswer,
            until: None
        }
    );
}

#[test]
fn ring_all_rings_everyone_and_cancels_the_losers() {
    let mut acd = ring_all(&["a", "b", "c"]);
    acd.enqueue(ms(1), "x", &arm()).unwrap();
    assert_eq!(offers(&mut acd).len(), 3);
    assert!(acd.answered(ms(2), "b", "x"));
    let cancels: Vec<_> = outputs(&mut acd)
        .into_iter()
        .filter(|o| matches!(o, AcdOutput::Cancel { .. }))
        .collect();
    assert_eq!(cancels.len(), 2);
    assert_eq!(acd.seat("a").unwrap().state, SeatState::Available);
    assert!(!acd.answered(ms(3), "a", "x"), "late answer refused");
}

#[test]
fn ring_all_timeout_does_not_pause_and_rings_again() {
    let mut acd = ring_all(&["a", "b"]);
    acd.enqueue(ms(1), "x", &arm()).unwrap();
    acd.offer_failed(ms(2), "a", "x", PauseReason::Rejected);
    assert_eq!(acd.waiting(), 0, "b still rings");
    outputs(&mut acd);
    acd.handle_timeout(ms(15_001));
    assert_eq!(offers(&mut acd), vec![pair("x", "b")]);
}

#[test]
fn seat_reset_ends_a_stuck_call_or_offer() {
    let mut acd = a_busy_on_c();
    // The BYE was lost: the supervisor frees the seat.
    assert_eq!(acd.seat_reset(ms(100), "a"), Ok(Some("c".into())));
    assert_eq!(acd.seat("a").unwrap().state, SeatState::Available);
    acd.enqueue(ms(101), "d", &arm()).unwrap();
    assert_eq!(acd.seat_reset(ms(102), "a"), Ok(Some("d".into())));
    // The offer was withdrawn and immediately made again to the only seat.
    assert!(matches!(
        acd.seat("a").unwrap().state,
        SeatState::Ringing { .. }
    ));
    assert_eq!(
        acd.seat_reset(ms(0), "zz"),
        Err(AcdError::UnknownSeat("zz".into()))
    );
}

#[test]
fn seat_offline_while_busy_goes_offline_at_the_end() {
    let mut acd = a_busy_on_c();
    assert_eq!(acd.seat_offline(ms(3), "a"), None);
    acd.call_ended(ms(4), "a");
    assert_eq!(acd.seat("a").unwrap().state, SeatState::Offline);
    assert_eq!(acd.poll_timeout(), None);
}

#[test]
fn a_pause_asked_on_a_call_starts_when_the_call_ends_and_can_be_cancelled() {
    let mut acd = Acd::new(settings());
    acd.add_seat("arm1", "arm", ms(0));
    acd.seat_online(ms(0), "arm1");
    acd.enqueue(ms(1), "c1", &arm()).unwrap();
    acd.answered(ms(2), "arm1", "c1");
    assert!(
        acd.pause(ms(3), "arm1", PauseReason::Break),
        "accepted while busy"
    );
    assert_eq!(acd.seat("arm1").unwrap().state.label(), "busy");
    acd.call_ended(ms(4), "arm1");
    assert_eq!(
        acd.seat("arm1").unwrap().state,
        SeatState::Paused {
            reason: PauseReason::Break,
            until: None
        },
        "paused instead of wrap-up"
    );
    // Asked again on the next call, then cancelled: back in distribution as usual.
    acd.unpause(ms(5), "arm1");
    acd.enqueue(ms(6), "c2", &arm()).unwrap();
    acd.answered(ms(7), "arm1", "c2");
    acd.pause(ms(8), "arm1", PauseReason::OtherTask);
    assert!(acd.unpause(ms(9), "arm1"), "the pending pause is cancelled");
    acd.call_ended(ms(10), "arm1");
    assert_eq!(acd.seat("arm1").unwrap().state.label(), "available");
    // Ringing: answer or decline first.
    acd.enqueue(ms(11), "c3", &arm()).unwrap();
    assert_eq!(acd.seat("arm1").unwrap().state.label(), "ringing");
    assert!(!acd.pause(ms(12), "arm1", PauseReason::Break));
}

#[test]
fn a_busy_seat_moves_to_another_call_and_ends_with_it() {
    let mut acd = Acd::new(settings());
    acd.add_seat("d", "arm", ms(0));
    acd.seat_online(ms(0), "d");
    acd.enqueue(ms(1), "y", &arm()).unwrap();
    assert_eq!(offers(&mut acd), vec![pair("y", "d")]);
    assert!(acd.answered(ms(2), "d", "y"));
    assert!(
        !acd.move_call(ms(3), "d", "other", "x"),
        "not busy on that call"
    );
    assert!(acd.move_call(ms(3), "d", "y", "x"));
    assert_eq!(
        acd.seat("d").unwrap().state,
        SeatState::Busy { call: "x".into() }
    );
    acd.call_ended(ms(4), "d");
    assert_eq!(acd.seat("d").unwrap().state, SeatState::Available);
}

#[test]
fn a_seat_back_online_still_owes_its_wrap_up() {
    let mut acd = a_busy_on_c();
    // Registration lost mid-call, back 5 s after the call ended: 25 s of wrap-up left.
    acd.seat_offline(ms(3), "a");
    acd.call_ended(ms(4), "a");
    acd.enqueue(ms(5), "d", &arm()).unwrap();
    acd.seat_online(ms(5_004), "a");
    assert_eq!(
        acd.seat("a").unwrap().state,
        SeatState::WrapUp { until: ms(30_004) }
    );
    outputs(&mut acd);
    acd.handle_timeout(ms(30_004));
    assert_eq!(offers(&mut acd), vec![pair("d", "a")]);
    // Offline during the wrap-up, back after its end: available at once.
    assert!(acd.answered(ms(30_005), "a", "d"));
    acd.call_ended(ms(30_006), "a");
    acd.seat_offline(ms(30_007), "a");
    acd.seat_online(ms(70_000), "a");
    assert_eq!(acd.seat("a").unwrap().state, SeatState::Available);
}

/// A pause kept across a restart holds whether the seat is online yet or not, and a
/// pause asked during a call survives the seat going offline before it ends.
#[test]
fn a_standing_pause_is_restored_online_or_offline_and_autopauses_do_not_stand() {
    let mut acd = Acd::new(settings());
    for seat in ["on", "off", "busy"] {
        acd.add_seat(seat, "arm", ms(0));
    }
    acd.seat_online(ms(0), "on");
    acd.restore_pause(ms(1), "on", PauseReason::Break);
    acd.restore_pause(ms(1), "off", PauseReason::LoggedOut);
    assert_eq!(acd.standing("on"), Some(PauseReason::Break));
    assert_eq!(acd.standing("off"), Some(PauseReason::LoggedOut));
    assert_eq!(acd.seat("off").unwrap().state, SeatState::Offline);
    acd.seat_online(ms(2), "off");
    let paused = |reason| SeatState::Paused {
        reason,
        until: None,
    };
    assert_eq!(
        acd.seat("off").unwrap().state,
        paused(PauseReason::LoggedOut)
    );
    // No seat available: the call waits.
    acd.enqueue(ms(3), "c", &arm()).unwrap();
    assert!(offers(&mut acd).is_empty());

    acd.seat_online(ms(4), "busy");
    assert_eq!(offers(&mut acd), [pair("c", "busy")]);
    assert!(acd.answered(ms(5), "busy", "c"));
    acd.pause(ms(6), "busy", PauseReason::OtherTask);
    acd.seat_offline(ms(7), "busy");
    acd.call_ended(ms(8), "busy");
    assert_eq!(acd.standing("busy"), Some(PauseReason::OtherTask));
    acd.seat_online(ms(9), "busy");
    assert_eq!(
        acd.seat("busy").unwrap().state,
        paused(PauseReason::OtherTask)
    );

    acd.unpause(ms(10), "on");
    acd.pause(ms(11), "on", PauseReason::RingNoAnswer);
    assert_eq!(acd.standing("on"), None, "an autopause ends by itself");
}
