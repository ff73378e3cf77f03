//! The overload governor on virtual time: each signal sheds and recovers as documented,
//! retransmissions and memory are handled, overflow stops at its hard limits.

use super::*;

fn limits(max_calls: u32, max_call_rate: u32, max_delay_ms: u32) -> Limits {
    Limits {
        max_calls,
        max_call_rate,
        max_delay_ms,
        retry_after_s: 5,
        overflow_max_calls: max_calls + 2,
    }
}

fn at(ms: u64) -> Mono {
    Mono::from_millis(ms)
}

fn shed(reason: ShedReason) -> Verdict {
    Verdict::Shed {
        reason,
        retry_after_s: 5,
    }
}

#[test]
fn calls_past_max_calls_are_shed_until_one_ends() {
    let mut g = Governor::new(limits(3, 0, 0), at(0));
    for id in 1..=3 {
        assert_eq!(g.judge(at(0), id, false), Verdict::Admit);
    }
    // Pending ones count: the driver has not seen them yet.
    assert_eq!(g.in_progress(), 3);
    assert_eq!(g.judge(at(1), 4, false), shed(ShedReason::Calls));
    assert_eq!(g.state(at(1)), State::Shedding(ShedReason::Calls));
    // The driver takes them: still three in progress.
    (1..=3).for_each(|id| g.settled(id));
    g.driver_calls(3);
    assert_eq!(g.judge(at(2), 5, false), shed(ShedReason::Calls));
    // One ends.
    g.driver_calls(2);
    assert_eq!(g.judge(at(3), 6, false), Verdict::Admit);
    assert_eq!(
        g.state(at(2_000)),
        State::Normal,
        "a second without shedding"
    );
}

#[test]
fn a_retransmission_of_an_admitted_invite_is_never_shed_nor_counted_twice() {
    let mut g = Governor::new(limits(1, 1, 0), at(0));
    assert_eq!(g.judge(at(0), 7, false), Verdict::Admit);
    assert_eq!(
        g.judge(at(500), 7, false),
        Verdict::Admit,
        "Timer A retransmission"
    );
    assert_eq!(g.in_progress(), 1);
    assert_eq!(g.judge(at(600), 8, false), shed(ShedReason::Calls));
    g.settled(7);
    g.settled(7);
    g.driver_calls(1);
    assert_eq!(g.in_progress(), 1, "settling twice counts once");
    assert_eq!(g.judge(at(31_000), 7, false), Verdict::Admit);
    // Past Timer B it is forgotten: a new INVITE with that Call-ID is judged afresh.
    assert_eq!(
        g.judge(at(REMEMBER_MS + 1), 7, false),
        shed(ShedReason::Calls)
    );
}

#[test]
fn the_rate_bucket_admits_its_rate_with_a_one_second_burst_and_no_more() {
    let mut g = Governor::new(limits(0, 10, 0), at(0));
    let admitted = (0..30).filter(|&id| g.judge(at(0), id, false) == Verdict::Admit);
    assert_eq!(admitted.count(), 10, "one second's burst");
    assert_eq!(g.judge(at(50), 100, false), shed(ShedReason::Rate));
    // 100 ms later one token is back, and only one.
    assert_eq!(g.judge(at(100), 101, false), Verdict::Admit);
    assert_eq!(g.judge(at(100), 102, false), shed(ShedReason::Rate));
    // A steady 50/s for 10 s: 10/s admitted, whatever the phase.
    let mut admitted = 0;
    for i in 0..500u64 {
        if g.judge(at(1_000 + i * 20), 1_000 + i, false) == Verdict::Admit {
            admitted += 1;
        }
    }
    assert!((100..=111).contains(&admitted), "{admitted}");
    // Shed calls take no token: the rate recovers as soon as the flood stops.
    assert_eq!(g.judge(at(13_000), 5_000, false), Verdict::Admit);
}

#[test]
fn input_queue_delay_sheds_above_the_limit_and_stops_below_half_of_it() {
    let mut g = Governor::new(limits(0, 0, 200), at(0));
    let mut now = 0;
    // A driver answering its probes within 10 ms.
    for _ in 0..20 {
        assert!(g.tick(at(now), 0));
        g.probe_returned(at(now + 10), at(now));
        now += PROBE_EVERY_MS;
    }
    assert_eq!(g.judge(at(now), 1, false), Verdict::Admit);
    assert!(g.delay_ms() <= 10);
    // The driver falls behind: its probe stays queued, and counts as its age.
    let sent = now;
    assert!(g.tick(at(sent), 0));
    let mut reacted = None;
    for step in 1..=20 {
        now += PROBE_EVERY_MS;
        assert!(!g.tick(at(now), 0), "one probe out at a time");
        if g.judge(at(now), 1_000 + step, false) == shed(ShedReason::Delay) {
            reacted = Some(now - sent);
            break;
        }
    }
    let reacted = reacted.expect("shed while the probe is stuck");
    assert!(reacted <= 1_000, "reacts within a second: {reacted} ms");
    assert_eq!(g.state(at(now)), State::Shedding(ShedReason::Delay));
    // It comes back late; then the driver is quick again: shedding holds until the
    // smoothed delay is below half the limit (no flapping at the threshold).
    g.probe_returned(at(now), at(sent));
    let mut states = Vec::new();
    for _ in 0..30 {
        now += PROBE_EVERY_MS;
        assert!(g.tick(at(now), 0));
        g.probe_returned(at(now + 5), at(now));
        states.push(g.judge(at(now + 5), now, false) == Verdict::Admit);
    }
    let first_admit = states.iter().position(|&a| a).expect("recovers");
    assert!(first_admit > 0, "not at the first good sample");
    assert!(
        states[first_admit..].iter().all(|&a| a),
        "no flapping: {states:?}"
    );
    assert!(
        first_admit * PROBE_EVERY_MS as usize <= 2_000,
        "recovers within 2 s"
    );
}

#[test]
fn with_no_limits_everything_is_admitted() {
    let mut g = Governor::new(limits(0, 0, 0), at(0));
    g.driver_calls(1_000_000);
    for id in 0..10_000 {
        assert_eq!(g.judge(at(id / 10), id, false), Verdict::Admit);
    }
    g.tick(at(0), 0);
    g.tick(at(60_000), 0);
    assert_eq!(g.judge(at(60_000), 1, false), Verdict::Admit);
    assert_eq!(g.state(at(60_000)), State::Normal);
}

#[test]
fn memory_is_capped_and_expired_entries_stop_counting_as_pending() {
    let mut g = Governor::new(limits(0, 0, 0), at(0));
    for id in 0..(REMEMBER_CAP as u64 + 10) {
        g.judge(at(0), id, false);
    }
    assert_eq!(g.admitted.len(), REMEMBER_CAP);
    assert_eq!(g.in_progress(), REMEMBER_CAP as u32);
    // Never settled (the transaction died before admission): forgotten after Timer B.
    g.judge(at(REMEMBER_MS), u64::MAX, false);
    assert_eq!(g.admitted.len(), 1);
    assert_eq!(g.in_progress(), 1);
}

#[test]
fn a_call_that_would_be_shed_overflows_when_its_entry_can_up_to_the_hard_limits() {
    let mut g = Governor::new(limits(2, 0, 200), at(0));
    assert_eq!(
        g.judge(at(0), 1, true),
        Verdict::Admit,
        "not shed: not overflowed"
    );
    assert!(!g.overflowed(1));
    assert_eq!(g.judge(at(0), 2, false), Verdict::Admit);
    // Full: an entry with an on_overload step overflows, one without is shed.
    assert_eq!(g.judge(at(1), 3, false), shed(ShedReason::Calls));
    assert_eq!(
        g.judge(at(1), 4, true),
        Verdict::Overflow(ShedReason::Calls)
    );
    assert!(g.overflowed(4));
    assert_eq!(
        g.judge(at(2), 4, true),
        Verdict::Admit,
        "its retransmission"
    );
    assert_eq!(
        g.judge(at(2), 5, true),
        Verdict::Overflow(ShedReason::Calls)
    );
    // overflow_max_calls (4) reached: shed even so.
    assert_eq!(g.in_progress(), 4);
    assert_eq!(g.judge(at(3), 6, true), shed(ShedReason::Calls));
    // A router far behind (over twice max_delay_ms) overflows nothing either.
    let mut g = Governor::new(limits(0, 0, 200), at(0));
    g.tick(at(0), 0);
    g.tick(at(500), 0);
    g.tick(at(600), 0);
    assert!((200..400).contains(&g.delay_ms()), "{}", g.delay_ms());
    assert_eq!(
        g.judge(at(600), 7, true),
        Verdict::Overflow(ShedReason::Delay)
    );
    for t in 6..=20 {
        g.tick(at(t * 100), 0);
    }
    assert!(g.delay_ms() > 400, "{}", g.delay_ms());
    assert_eq!(g.judge(at(2_000), 8, true), shed(ShedReason::Delay));
}

#[test]
fn a_late_tick_counts_as_its_lateness() {
    let mut g = Governor::new(limits(0, 0, 200), at(0));
    assert!(g.tick(at(0), 0));
    g.probe_returned(at(1), at(0));
    // The process was frozen 2 s: the next tick fires 2 s late, no probe out.
    assert!(g.tick(at(2_100), 2_000));
    assert_eq!(g.judge(at(2_100), 1, false), shed(ShedReason::Delay));
    // A tick a few ms late is scheduling noise, not a sample.
    let mut calm = Governor::new(limits(0, 0, 200), at(0));
    assert!(calm.tick(at(0), 0));
    calm.probe_returned(at(1), at(0));
    assert!(calm.tick(at(100), 30));
    assert_eq!(calm.delay_ms(), 0);
}

/// A process frozen (SIGSTOP, a stalled disk) reads the calls queued in its socket before
/// its probe ticker runs again: an overdue tick is itself the sign, so they are shed.
#[test]
fn calls_judged_before_an_overdue_tick_are_shed_for_delay() {
    let mut g = Governor::new(limits(0, 0, 250), at(0));
    assert!(g.tick(at(0), 0));
    g.probe_returned(at(1), at(0));
    assert_eq!(
        g.judge(at(300), 1, false),
        Verdict::Admit,
        "within a tick and the limit"
    );
    assert_eq!(g.judge(at(2_000), 2, false), shed(ShedReason::Delay));
    // The ticker runs again on time: nothing overdue, and the late tick's sample decides.
    g.tick(at(2_010), 0);
    g.probe_returned(at(2_011), at(2_010));
    assert_eq!(g.judge(at(2_020), 3, false), Verdict::Admit);
}

/// Without a delay limit an overdue ticker sheds nothing.
#[test]
fn an_overdue_tick_without_a_delay_limit_sheds_nothing() {
    let mut g = Governor::new(limits(0, 0, 0), at(0));
    assert_eq!(g.judge(at(60_000), 1, false), Verdict::Admit);
}
