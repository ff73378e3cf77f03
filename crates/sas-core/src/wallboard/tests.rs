//! The board's figures on virtual time: a known set of calls gives exact cells, today
//! (Paris midnight, across a rollover) and over the last hour; the live state (waiting
//! calls, an accompanied P0 escalation, seats, a switched line) gives its rows.

use super::*;
use crate::acd::CallRequest;
use crate::call::Switchboard;
use crate::call::router::LineSwitch;
use crate::call::tests_support::*;
use crate::cti::TransferMode;
use crate::record::{CallRecord, EventKind, Outcome};
use crate::report::test_calls::{Call, S, paris};

/// 2026-11-02, Paris (UTC+1), 23:30: the board is drawn then.
fn now() -> EpochMillis {
    paris(2026, 11, 2, 23, 30, 0)
}

fn at(h: u32, m: u32) -> EpochMillis {
    paris(2026, 11, 2, h, m, 0)
}

/// Finished calls: the day's, one from yesterday that ended today.
fn finished() -> Vec<CallRecord> {
    use EventKind::*;
    vec![
        // Earlier today: answered in 20 s.
        Call::new("a", "samu", at(22, 10))
            .queue(2, "arm")
            .answer("arm1", 20, 200)
            .end(200, Outcome::Answered),
        // Last hour: answered in 45 s.
        Call::new("b", "samu", at(23, 0))
            .queue(2, "arm")
            .answer("arm1", 45, 90)
            .end(90, Outcome::Answered),
        // Abandoned after 40 s; a misdial.
        Call::new("c", "samu", at(23, 5))
            .queue(2, "arm")
            .end(40, Outcome::Abandoned),
        Call::new("d", "samu", at(23, 6))
            .queue(1, "arm")
            .end(3, Outcome::Misdial),
        // 116 117, answered in 70 s, escalated to AMU: the regulator answers 12 s later.
        Call::new("e", "sas", at(23, 10))
            .queue(2, "arm")
            .answer("arm2", 70, 100)
            .event(100, Transfer, None)
            .queue(100, "amu")
            .answer("amu1", 112, 300)
            .end(300, Outcome::Answered),
        // Nobody within 65 s: overflow to the backup centre.
        Call::new("f", "samu", at(23, 12))
            .queue(2, "arm")
            .event(65, Overflow, None)
            .event(65, Forward, Some("0387000000"))
            .end(120, Outcome::Forwarded),
        // Yesterday 23:50, answered after midnight: not today's.
        Call::new("y", "samu", paris(2026, 11, 1, 23, 50, 0))
            .queue(2, "arm")
            .answer("arm1", 50, 700)
            .end(700, Outcome::Answered),
    ]
    .into_iter()
    .map(|c| c.0)
    .collect()
}

/// In progress: one answered in 10 s (counted), one still waiting (not yet).
fn live() -> Vec<CallRecord> {
    vec![
        Call::new("g", "samu", now() - 30 * S)
            .queue(1, "arm")
            .answer("arm2", 10, 10)
            .0,
        Call::new("h", "samu", now() - 5 * S).queue(1, "arm").0,
    ]
}

fn tally_of(records: &[CallRecord], now: EpochMillis) -> Tally {
    let mut tally = Tally::new(now);
    for r in records {
        tally.finished(now, r);
    }
    tally
}

/// (received, answered, ≤30, ≤60, pct 30, pct 60, abandoned, misdials, overflows, forwards)
type Cells10 = (
    u64,
    u64,
    u64,
    u64,
    Option<f64>,
    Option<f64>,
    u64,
    u64,
    u64,
    u64,
);

fn cells(row: Option<&Row>) -> Cells10 {
    let c = row.map(Counts::from).unwrap_or_default();
    (
        c.received,
        c.answered,
        c.answered_30s,
        c.answered_60s,
        c.pct_30s,
        c.pct_60s,
        c.abandoned,
        c.misdials,
        c.overflows,
        c.forwards,
    )
}

#[test]
fn today_and_the_last_hour_from_a_known_set_of_calls() {
    let mut tally = tally_of(&finished(), now());
    let f = tally.figures(now(), live().iter());
    // Today, 15: a, b, c, d, f and g in progress (y arrived yesterday, h waits):
    // 3 answered (a 20 s, b 45 s, g 10 s) of 5 to answer (d misdialled).
    assert_eq!(
        cells(f.today.lines.get("samu")),
        (6, 3, 2, 3, Some(40.0), Some(60.0), 1, 1, 1, 1)
    );
    // The last hour (since 22:30): b, c, d, f, g.
    assert_eq!(
        cells(f.last_hour.lines.get("samu")),
        (5, 2, 1, 2, Some(25.0), Some(50.0), 1, 1, 1, 1)
    );
    // 116 117: answered in 70 s.
    assert_eq!(
        cells(f.today.lines.get("sas")),
        (1, 1, 0, 0, Some(0.0), Some(0.0), 0, 0, 0, 0)
    );
    // Queues: the ARM got every first wait; AMU the escalation, answered in 12 s.
    assert_eq!(f.today.queues["arm"].received, 7);
    let amu = Counts::from(&f.today.queues["amu"]);
    assert_eq!(
        (amu.received, amu.escalated, amu.escalated_answered),
        (0, 1, 1)
    );
    assert_eq!(amu.escalation_max_ms, 12 * S);
    // A restart: the same records read from the store give the same board.
    let mut again = Tally::new(now());
    assert!(again.start_from(now()) <= at(0, 0));
    for r in finished() {
        again.finished(now(), &r);
    }
    assert_eq!(again.figures(now(), live().iter()), f);
}

#[test]
fn local_midnight_starts_a_new_day_and_the_last_hour_runs_across_it() {
    let mut tally = tally_of(&finished(), now());
    // 23:59:50, answered in 5 s, ends after midnight.
    let late = Call::new("z", "samu", paris(2026, 11, 2, 23, 59, 50))
        .queue(1, "arm")
        .answer("arm1", 5, 40)
        .end(40, Outcome::Answered)
        .0;
    let after = paris(2026, 11, 3, 0, 0, 40);
    tally.finished(after, &late);
    let f = tally.figures(after, std::iter::empty());
    assert!(f.today.lines.is_empty(), "{:?}", f.today);
    // Since 23:00:40: c, d, f and z.
    assert_eq!(
        cells(f.last_hour.lines.get("samu")),
        (4, 1, 1, 1, Some(33.3), Some(33.3), 1, 1, 1, 1)
    );
    // A call of the new day counts today.
    let first = Call::new("n", "sas", paris(2026, 11, 3, 0, 1, 0))
        .queue(1, "arm")
        .answer("arm1", 8, 60)
        .end(60, Outcome::Answered)
        .0;
    let later = paris(2026, 11, 3, 0, 5, 0);
    tally.finished(later, &first);
    let f = tally.figures(later, std::iter::empty());
    assert_eq!(
        cells(f.today.lines.get("sas")),
        (1, 1, 1, 1, Some(100.0), Some(100.0), 0, 0, 0, 0)
    );
    // An hour later, the last hour has forgotten them all.
    let f = tally.figures(later + HOUR_MS, std::iter::empty());
    assert!(f.last_hour.lines.is_empty(), "{:?}", f.last_hour);
}

/// `calls` misdials of the 15 spread evenly over the ten minutes from `start`, counted as
/// each ends (3 s after it arrived).
fn ten_minutes_of_misdials(start: EpochMillis, calls: u64) -> Tally {
    let mut tally = Tally::new(start);
    for i in 0..calls {
        let arrived = start + i * 600 * S / calls;
        let call = Call::new(&format!("c{i}"), "samu", arrived)
            .queue(1, "arm")
            .end(3, Outcome::Misdial)
            .0;
        tally.finished(arrived + 3 * S, &call);
    }
    tally
}

#[test]
fn the_last_hour_keeps_one_sum_per_second_whatever_the_call_rate() {
    // 20,000 calls in 10 minutes (33/s, a load test's rate): 600 sums, not 20,000 rows.
    let start = at(22, 0);
    let calls = 20_000u64;
    let mut tally = ten_minutes_of_misdials(start, calls);
    assert_eq!(tally.recent_slots(), 600);
    let end = start + 600 * S;
    let f = tally.figures(end, std::iter::empty());
    assert_eq!(cells(f.last_hour.lines.get("samu")).0, calls);
    // A call leaves the last hour within a second of its hour: the first second's 34 calls
    // still count at start + 1 h - 1 ms, not at start + 1 h.
    let f = tally.figures(start + HOUR_MS - 1, std::iter::empty());
    assert_eq!(cells(f.last_hour.lines.get("samu")).0, calls);
    let f = tally.figures(start + HOUR_MS, std::iter::empty());
    assert_eq!(cells(f.last_hour.lines.get("samu")).0, calls - 34);
    assert_eq!(tally.recent_slots(), 599);
    let f = tally.figures(end + HOUR_MS, std::iter::empty());
    assert!(f.last_hour.lines.is_empty(), "{:?}", f.last_hour);
    assert_eq!(tally.recent_slots(), 0);
}

#[test]
fn a_second_of_the_last_hour_holds_its_rows_and_no_spare_room() {
    // Three calls a second for ten minutes, one line and one queue: ~0.7 KiB a second
    // (as a map of rows, ~7 KiB: 24 MiB for a full hour).
    let tally = ten_minutes_of_misdials(at(22, 0), 1_800);
    assert_eq!(tally.recent_slots(), 600);
    let per_slot = tally.recent_bytes() / 600;
    assert!(per_slot <= 1024, "{per_slot} bytes a second");
}

#[test]
fn summer_time_days_start_at_their_own_midnight() {
    // 2026-03-29: Paris goes to UTC+2 at 02:00; the day is 23 hours long.
    let morning = paris(2026, 3, 29, 10, 0, 0);
    let call = Call::new("s", "samu", paris(2026, 3, 29, 0, 30, 0))
        .queue(1, "arm")
        .answer("arm1", 10, 50)
        .end(50, Outcome::Answered)
        .0;
    let mut tally = Tally::new(morning);
    tally.finished(morning, &call);
    let f = tally.figures(morning, std::iter::empty());
    assert_eq!(f.today.lines["samu"].answered_30s, 1);
    assert_eq!(tally.start_from(morning), paris(2026, 3, 29, 0, 0, 0));
}

#[test]
fn thresholds_turn_cells_amber_then_red() {
    let l = Limits::default();
    assert_eq!(l.wait_level(29_999), Level::Ok);
    assert_eq!(l.wait_level(30_000), Level::Amber);
    assert_eq!(l.wait_level(60_000), Level::Red);
    assert_eq!(l.share_level(None), Level::Ok);
    assert_eq!(l.share_level(Some(99.0)), Level::Ok);
    assert_eq!(l.share_level(Some(98.9)), Level::Amber);
    assert_eq!(l.share_level(Some(94.9)), Level::Red);
    assert!(l.check().is_ok());
    let bad = Limits {
        wait_amber_s: 60,
        wait_red_s: 30,
        ..l
    };
    assert_eq!(
        bad.check(),
        Err(LimitsError::WaitOrder { amber: 60, red: 30 })
    );
    let bad = Limits {
        answered_60s_target: 101.0,
        ..l
    };
    assert!(matches!(
        bad.check(),
        Err(LimitsError::Share {
            key: "answered_60s_target",
            ..
        })
    ));
}

/// The plateau at T0 + 70 s: c1 (15) waits since T0 (no ARM free); c2 (15, P0) was
/// answered by arm1 and waits for AMU since T0 + 40 s, arm1 staying with the caller; amu1
/// is on a break since T0 + 5 s; arm2 is available; the 116 117 is switched.
fn plateau() -> (Router, Now) {
    let mut b: Switchboard =
        board_with(&[("arm1", "arm"), ("arm2", "arm"), ("amu1", "regulateur_amu")]);
    for seat in ["arm1", "amu1"] {
        online(&mut b, T0, seat);
    }
    b.pause(Now::at(T0 + 5 * S), "amu1", crate::acd::PauseReason::Break);
    arrive(&mut b, T0 + 10 * S, "c2", "samu", 0);
    answer(&mut b, T0 + 12 * S, "c2", "arm1");
    arrive(&mut b, T0 + 20 * S, "c1", "samu", 0);
    b.transfer(
        Now::at(T0 + 40 * S),
        "c2",
        "arm1",
        "amu",
        TransferMode::Blind,
        Some(Urgency::P0),
    )
    .unwrap();
    b.enqueue(
        Now::at(T0 + 40 * S),
        "c2",
        "amu",
        &CallRequest::new("regulateur_amu", 0),
    );
    online(&mut b, T0 + 50 * S, "arm2");
    // arm2 is offered c1: it rings.
    actions(&mut b);
    let now = Now::at(T0 + 70 * S);
    let mut router = Router::new(b, now);
    router.restore_switch(
        "sas",
        LineSwitch {
            by: "sup1".into(),
            reason: "panne".into(),
            since: T0,
            node: None,
        },
    );
    (router, now)
}

#[test]
fn the_live_board_shows_waits_escalations_seats_and_switched_lines() {
    let (router, now) = plateau();
    let layout = Layout {
        lines: vec!["samu".into(), "sas".into()],
        queues: vec!["arm".into(), "amu".into()],
        thresholds: Thresholds::default(),
    };
    let mut tally = Tally::new(now.wall);
    let board = draw(&router, &mut tally, &layout, now);
    assert_eq!(board.now, now.wall);
    let samu = &board.lines[0];
    // The 15: c1 waits for its first answer (50 s, amber); c2, the P0, for AMU.
    assert_eq!(
        (samu.name.as_str(), samu.waiting, samu.p0_waiting),
        ("samu", 1, 1)
    );
    assert_eq!(samu.oldest_since, Some(T0 + 20 * S));
    assert_eq!(samu.longest_wait_ms, 50 * S);
    assert_eq!((samu.wait_level, samu.level), (Level::Amber, Level::Amber));
    // c2 was answered by arm1 in 2 s (in progress, counted).
    assert_eq!(samu.today.answered_30s, 1);
    // The 116 117 is switched: red, with who and why.
    let sas = &board.lines[1];
    assert_eq!(sas.level, Level::Red);
    assert_eq!(sas.switched.as_ref().unwrap().reason, "panne");
    // Queues: c1 in the ARM's, c2 in AMU's for 30 s (red at AMU's default 60 s? amber at 30).
    let amu = board.queues.iter().find(|q| q.name == "amu").unwrap();
    assert_eq!(
        (amu.waiting, amu.p0_waiting, amu.longest_wait_ms),
        (1, 1, 30 * S)
    );
    assert_eq!(amu.level, Level::Amber);
    // The escalation as it is: waiting for AMU, P0, arm1 with the caller.
    assert_eq!(
        board.escalations,
        vec![Escalation {
            call: "c2".into(),
            line: "samu".into(),
            queue: "amu".into(),
            urgency: Some(Urgency::P0),
            waiting_since: T0 + 40 * S,
            accompanied_by: vec!["arm1".into()],
        }]
    );
    assert_eq!(board.p0_waiting, 1);
    // The console's board asks call by call: c1 waits for its first answer, no escalation.
    assert_eq!(
        Escalation::of(&router, "c2").as_ref(),
        board.escalations.first()
    );
    assert_eq!(Escalation::of(&router, "c1"), None);
    assert_eq!(Escalation::of(&router, "nope"), None);
    // Seats: arm1 busy accompanying to AMU since it answered; amu1 on a break; arm2
    // ringing for c1.
    let seat = |id: &str| board.seats.iter().find(|s| s.seat == id).unwrap().clone();
    let arm1 = seat("arm1");
    assert_eq!((arm1.state, arm1.since), ("busy", T0 + 12 * S));
    let call = arm1.call.unwrap();
    assert_eq!(call.accompanying_to.as_deref(), Some("amu"));
    assert_eq!(
        (call.line.as_str(), call.urgency),
        ("samu", Some(Urgency::P0))
    );
    let amu1 = seat("amu1");
    assert_eq!(
        (amu1.state, amu1.since, amu1.pause_reason),
        ("paused", T0 + 5 * S, Some(crate::acd::PauseReason::Break))
    );
    let arm2 = seat("arm2");
    assert_eq!(arm2.state, "ringing");
    assert_eq!(arm2.call.unwrap().accompanying_to, None);
    // Serialised for the board, with no caller number.
    let json = serde_json::to_string(&board).unwrap();
    assert!(!json.contains("0612345678"), "{json}");
}
