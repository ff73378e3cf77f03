//! Report speed on a year of a busy department: CALLS records (default 300,000, about 820
//! a day) spread over 2026, written to a fresh sled database as the router writes them
//! (timeline, offers, handlers, call file, RTP figures; a quarter escalated), then
//! `Store::report` timed for a month and for the year, by day and by seat.
//!
//!   cargo run --release --example report_year -- [CALLS=300000]
//!
//! Results: README.md ("Reports", speed).

use sas_core::ids::CallId;
use sas_core::report::{GroupBy, Period};
use sas_router::pii::CallerNumber;
use sas_router::store::Store;
use sas_router::store::record::{
    CallRecord, Decision, EventKind, FileEntry, Handler, OfferRecord, OfferResult, Outcome,
    Qualification, RtpCounters,
};
use std::time::Instant;

/// 2026-01-01T00:00:00+01:00.
const YEAR_START: u64 = 1_767_222_000_000;
const YEAR_MS: u64 = 365 * 86_400_000;

/// A small deterministic generator (xorshift).
struct Rng(u64);
impl Rng {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

fn stint(r: &mut CallRecord, seat: &str, role: &str, from: u64, until: u64) {
    r.event(from, EventKind::Offer, Some(seat), None);
    r.offers.push(OfferRecord {
        seat: seat.into(),
        at: from.saturating_sub(3_000),
        ended_at: Some(from),
        result: OfferResult::Answered,
        status: None,
    });
    r.event(from, EventKind::Connect, Some(seat), None);
    r.handlers.push(Handler {
        seat: seat.into(),
        role: role.into(),
        from,
        until: Some(until),
        left: Some("transfer".into()),
    });
}

fn call(n: u64, at: u64, rng: &mut Rng) -> CallRecord {
    let line = if rng.next(3) == 0 { "sas" } else { "samu" };
    let id = format!("{}-{:04}", CallId::stamp(at), n % 10_000);
    let caller = CallerNumber::new(format!("06{:08}", rng.next(100_000_000)));
    let mut r = CallRecord::new(
        id,
        format!("sip-{n}@trunk"),
        line.into(),
        "15".into(),
        caller,
        at,
    );
    r.enter_queue(at + 2_000, "arm", "arm priority 1".into());
    r.queued_at = Some(at + 2_000);
    let wait = 3_000 + rng.next(90_000);
    let end;
    match rng.next(100) {
        0..=7 => {
            r.event(at + wait, EventKind::Abandon, None, None);
            r.outcome = Some(Outcome::Abandoned);
            end = at + wait;
        }
        8..=12 => {
            r.event(at + 4_000, EventKind::Abandon, None, None);
            r.outcome = Some(Outcome::Misdial);
            end = at + 4_000;
        }
        pick => {
            let seat = format!("arm{}", rng.next(8) + 1);
            let talk = 30_000 + rng.next(240_000);
            stint(&mut r, &seat, "arm", at + wait, at + wait + talk);
            r.seat = Some(seat.clone());
            r.answered_at = Some(at + wait);
            let mut t = at + wait + talk;
            if pick >= 75 {
                let queue = ["amu", "liberal", "psy"][rng.next(3) as usize];
                r.event(t, EventKind::Transfer, Some(&seat), None);
                r.enter_queue(t, queue, format!("{queue} priority 0 urgency P1"));
                let l2 = 2_000 + rng.next(120_000);
                stint(
                    &mut r,
                    &format!("{queue}1"),
                    queue,
                    t + l2,
                    t + l2 + 120_000,
                );
                t += l2 + 120_000;
            }
            r.rtp = Some(RtpCounters::default());
            r.outcome = Some(Outcome::Answered);
            r.add_file(FileEntry {
                at: t + 20_000,
                seat,
                data: Qualification {
                    postcode: Some(format!("92{:03}", rng.next(40) * 10)),
                    commune: Some("Antony".into()),
                    decision: Some(Decision::RdvSnp48h),
                    reason: Some("fièvre".into()),
                    ..Qualification::default()
                },
            });
            end = t;
        }
    }
    r.event(end, EventKind::End, None, Some("caller_bye".into()));
    r.ended_at = Some(end);
    r.wait_ms = Some(wait);
    r
}

fn main() {
    let calls: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(300_000);
    let dir = std::env::temp_dir().join(format!("sas-report-year-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let started = Instant::now();
    let mut bytes = 0usize;
    {
        // Written in batches straight into the `calls` tree: the router's per-call flush
        // would make the set-up, not the report, the long part.
        let db = sled::open(dir.join("sled")).expect("sled");
        let tree = db.open_tree("calls").expect("calls tree");
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut batch = sled::Batch::default();
        for n in 0..calls {
            let at = YEAR_START + n * YEAR_MS / calls + rng.next(1_000);
            let r = call(n, at, &mut rng);
            let json = serde_json::to_vec(&r).expect("json");
            bytes += json.len();
            batch.insert(r.id.as_bytes(), json);
            if n % 10_000 == 9_999 {
                tree.apply_batch(std::mem::take(&mut batch)).expect("batch");
            }
        }
        tree.apply_batch(batch).expect("batch");
        db.flush().expect("flush");
    }
    println!(
        "wrote {calls} records ({} bytes each on average) in {:.1} s",
        bytes as u64 / calls.max(1),
        started.elapsed().as_secs_f64()
    );
    let store = Store::open(&dir).expect("store");
    let month = Period::parse("2026-11-01", "2026-11-30").unwrap();
    let year = Period::parse("2026-01-01", "2026-12-31").unwrap();
    for (name, period) in [("month", month), ("year", year)] {
        for by in [GroupBy::Day, GroupBy::Seat] {
            // The first pass reads the disk; the second one sled's cache.
            for pass in ["cold", "warm"] {
                let t = Instant::now();
                let report = store.report(period, by).expect("report");
                println!(
                    "report {name} by {:<4} ({pass}): {:>7} calls, {} rows, {:.2} s",
                    by.label(),
                    report.total.received,
                    report.rows.len(),
                    t.elapsed().as_secs_f64()
                );
            }
        }
    }
    drop(store);
    // What the year costs without the report: reading and decoding the records alone.
    let db = sled::open(dir.join("sled")).expect("sled");
    let tree = db.open_tree("calls").expect("calls tree");
    let t = Instant::now();
    let mut decoded = 0u64;
    for item in tree.iter() {
        let (_, bytes) = item.expect("read");
        let _: CallRecord = serde_json::from_slice(&bytes).expect("decode");
        decoded += 1;
    }
    println!(
        "read and decode alone: {decoded} records, {:.2} s",
        t.elapsed().as_secs_f64()
    );
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
}
