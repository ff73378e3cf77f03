//! Autopause on virtual time: resume after the delay, the burst rule, what is never blamed.

use super::super::tests::{arm, ms, offers, outputs, pair, settings};
use super::super::*;

const RING: EpochMillis = 15_000;
const RESUME: EpochMillis = 60_000;

fn acd(seats: &[&str], burst: usize) -> Acd {
    let mut acd = Acd::new(AcdSettings {
        autopause_resume_ms: RESUME,
        autopause_burst: burst,
        ..settings()
    });
    for (i, s) in seats.iter().enumerate() {
        acd.add_seat(s, "arm", ms(i as EpochMillis));
        acd.seat_online(ms(0), s);
    }
    acd
}

fn paused(acd: &Acd, seat: &str) -> Option<(PauseReason, Option<Mono>)> {
    match acd.seat(seat)?.state {
        SeatState::Paused { reason, until } => Some((reason, until)),
        _ => None,
    }
}

#[test]
fn a_seat_that_let_it_ring_is_paused_then_back_by_itself() {
    let mut acd = acd(&["a", "b"], 0);
    acd.pause(ms(0), "b", PauseReason::Break);
    acd.enqueue(ms(1), "c", &arm()).unwrap();
    assert_eq!(offers(&mut acd), vec![pair("c", "a")]);
    acd.seat_rang("a", "c");
    acd.handle_timeout(ms(1 + RING));
    let until = 1 + RING + RESUME;
    assert_eq!(
        paused(&acd, "a"),
        Some((PauseReason::RingNoAnswer, Some(ms(until))))
    );
    assert!(outputs(&mut acd).contains(&AcdOutput::Autopaused {
        seat: "a".into(),
        reason: PauseReason::RingNoAnswer,
        until: Some(ms(until)),
    }));
    assert_eq!(acd.poll_timeout(), Some(ms(until)));
    acd.handle_timeout(ms(until - 1));
    assert!(paused(&acd, "a").is_some(), "not before its time");
    acd.handle_timeout(ms(until));
    assert_eq!(offers(&mut acd), vec![pair("c", "a")], "back, and offered");
    // A pause the seat asked for stays until it resumes.
    assert_eq!(paused(&acd, "b"), Some((PauseReason::Break, None)));
}

#[test]
fn the_queue_may_shorten_the_autopause_and_zero_means_until_resumed() {
    let mut acd = acd(&["a"], 0);
    let short = QueueSettings {
        autopause_resume_ms: Some(5_000),
        ..Default::default()
    };
    acd.set_queue(QueueKey::role("arm"), short);
    acd.enqueue(ms(1), "c", &arm()).unwrap();
    acd.offer_failed(ms(2), "a", "c", PauseReason::Rejected);
    assert_eq!(
        paused(&acd, "a"),
        Some((PauseReason::Rejected, Some(ms(5_002))))
    );

    let mut acd = Acd::new(AcdSettings {
        autopause_resume_ms: 0,
        ..settings()
    });
    acd.add_seat("a", "arm", ms(0));
    acd.seat_online(ms(0), "a");
    acd.enqueue(ms(1), "c", &arm()).unwrap();
    acd.offer_failed(ms(2), "a", "c", PauseReason::Rejected);
    assert_eq!(paused(&acd, "a"), Some((PauseReason::Rejected, None)));
    assert_eq!(acd.poll_timeout(), None);
}

#[test]
fn a_phone_that_never_said_it_rang_is_unreachable_not_ring_no_answer() {
    let mut acd = acd(&["a"], 0);
    acd.enqueue(ms(1), "c", &arm()).unwrap();
    acd.handle_timeout(ms(1 + RING));
    assert_eq!(
        paused(&acd, "a").map(|p| p.0),
        Some(PauseReason::Unreachable)
    );
}

#[test]
fn an_offer_the_router_could_not_send_blames_nobody() {
    let mut acd = acd(&["a", "b"], 0);
    acd.enqueue(ms(1), "c", &arm()).unwrap();
    assert_eq!(offers(&mut acd), vec![pair("c", "a")]);
    acd.offer_not_sent(ms(2), "a", "c");
    // Held out for one ring timeout so the router does not spin on it, unblamed.
    assert_eq!(
        paused(&acd, "a"),
        Some((PauseReason::Unreachable, Some(ms(2 + RING))))
    );
    let out = outputs(&mut acd);
    assert!(out.contains(&AcdOutput::Offer {
        call: "c".into(),
        seat: "b".into()
    }));
    assert!(!out.iter().any(|o| matches!(
        o,
        AcdOutput::Autopaused { .. } | AcdOutput::MissBurst { .. }
    )));
    // Back when b's offer rings out: a takes the call again.
    acd.handle_timeout(ms(2 + RING));
    assert_eq!(offers(&mut acd), vec![pair("c", "a")]);
}

/// The overload of issue 13: many offers time out together. Three seats missing within
/// one ring timeout is a burst: the first two, paused, come back; nobody else is paused;
/// supervisors hear of it once.
#[test]
fn seats_missing_offers_together_are_not_paused() {
    let seats = ["s1", "s2", "s3", "s4", "s5", "s6"];
    let mut acd = acd(&seats, 3);
    for i in 0..5 {
        acd.enqueue(ms(1 + i), &format!("c{i}"), &arm()).unwrap();
    }
    assert_eq!(offers(&mut acd).len(), 5);
    // The offers time out one after the other, 1 ms apart.
    for i in 0..5 {
        acd.handle_timeout(ms(1 + i + RING));
    }
    let out = outputs(&mut acd);
    let bursts: Vec<&AcdOutput> = out
        .iter()
        .filter(|o| matches!(o, AcdOutput::MissBurst { .. }))
        .collect();
    assert_eq!(bursts.len(), 1, "one alert per burst: {out:?}");
    let not_paused = acd
        .seats()
        .filter(|s| paused(&acd, &s.id).is_none())
        .count();
    assert_eq!(
        not_paused,
        6,
        "no seat left paused: {:?}",
        acd.seats().collect::<Vec<_>>()
    );

    // Long after (the callers gone), a lone miss is the seat's again.
    let later = 10 * RING;
    for i in 0..5 {
        acd.withdraw(ms(later - 1), &format!("c{i}"));
    }
    acd.enqueue(ms(later), "lone", &arm()).unwrap();
    let offered = offers(&mut acd);
    let lone = offered
        .iter()
        .find(|(c, _)| c == "lone")
        .map(|(_, s)| s.clone())
        .expect("the lone call is offered");
    acd.seat_rang(&lone, "lone");
    acd.handle_timeout(ms(later + RING));
    assert_eq!(
        paused(&acd, &lone).map(|p| p.0),
        Some(PauseReason::RingNoAnswer)
    );
}

#[test]
fn a_refusal_pauses_even_during_a_burst() {
    let mut acd = acd(&["a", "b", "c", "d"], 2);
    for (i, call) in ["x", "y", "z"].iter().enumerate() {
        acd.enqueue(ms(1 + i as EpochMillis), call, &arm()).unwrap();
    }
    acd.handle_timeout(ms(1 + RING));
    acd.handle_timeout(ms(2 + RING));
    acd.offer_failed(ms(3 + RING), "c", "z", PauseReason::Rejected);
    assert_eq!(paused(&acd, "a"), None);
    assert_eq!(paused(&acd, "b"), None);
    assert_eq!(paused(&acd, "c").map(|p| p.0), Some(PauseReason::Rejected));
}

/// Issue 13's overload on 100 seats: every offer of a few seconds times out (the router
/// was too loaded to get the INVITEs out, no phone said it rang). The old rule paused all
/// 100; the burst rule pauses none, and the queue drains.
#[test]
fn a_short_overload_leaves_the_centre_its_seats() {
    let paused_after_overload = |burst: usize| {
        let seats: Vec<String> = (0..100).map(|i| format!("s{i:03}")).collect();
        let ids: Vec<&str> = seats.iter().map(String::as_str).collect();
        let mut acd = acd(&ids, burst);
        for i in 0..300 {
            acd.enqueue(ms(1 + i), &format!("c{i}"), &arm()).unwrap();
        }
        // The 100 offers ring out over 3 s, a few at a time.
        for step in 0..100 {
            acd.handle_timeout(ms(1 + RING + step * 30));
        }
        acd.seats()
            .filter(|s| matches!(s.state, SeatState::Paused { .. }))
            .count()
    };
    assert_eq!(
        paused_after_overload(0),
        100,
        "the old rule: the centre is empty"
    );
    assert_eq!(paused_after_overload(3), 0, "the burst rule: nobody blamed");
}
