//! Unit tests of the store writer: order (a late journal line never resurrects a stored
//! call), group commit (one flush for a burst), seat writes applied in order.

use super::*;
use crate::store::record::Outcome;

use crate::store::journal::tests::{T0, live as record};

fn finished(id: &str) -> CallRecord {
    let mut r = record(id);
    r.outcome = Some(Outcome::Abandoned);
    r.ended_at = Some(T0 + 10);
    r
}

fn temp_store(name: &str) -> (Store, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("sas-writer-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    (Store::open(&dir).unwrap(), dir)
}

fn confirmed(c: Confirmation) -> Result<(), String> {
    c.blocking_recv().expect("the writer answers")
}

#[test]
fn a_late_journal_line_never_resurrects_a_stored_call() {
    let (store, dir) = temp_store("order");
    let writer = StoreWriter::start(store.clone(), WriterOptions::default());
    writer.journal(T0, vec![record("a"), record("b")]);
    let done = writer.record(finished("a"));
    // Sent after the record: dropped for `a`, kept for `b`.
    writer.journal(T0 + 20, vec![record("a"), record("b")]);
    confirmed(done).unwrap();
    let last = writer.record(finished("c"));
    confirmed(last).unwrap();
    let journaled: Vec<String> = store
        .journaled()
        .unwrap()
        .into_iter()
        .map(|e| e.record.id)
        .collect();
    assert_eq!(journaled, ["b"]);
    let a = store.get_call("a").unwrap().expect("a stored");
    assert_eq!(a.outcome, Some(Outcome::Abandoned));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_burst_of_records_shares_few_flushes_and_each_is_confirmed() {
    let (store, dir) = temp_store("group");
    let options = WriterOptions {
        group_commit: Duration::from_millis(50),
        max_batch: 1024,
    };
    let writer = StoreWriter::start(store.clone(), options);
    let ids: Vec<String> = (0..200).map(|i| format!("call-{i:03}")).collect();
    let pending: Vec<Confirmation> = ids.iter().map(|id| writer.record(finished(id))).collect();
    for c in pending {
        confirmed(c).unwrap();
    }
    let flushes = writer.stats().flushes.load(Ordering::Relaxed);
    assert!(
        (1..=4).contains(&flushes),
        "{flushes} flushes for 200 records"
    );
    assert_eq!(writer.stats().records.load(Ordering::Relaxed), 200);
    assert_eq!(store.call_count(), 200);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_batch_stops_at_its_size_bound() {
    let (store, dir) = temp_store("bound");
    let options = WriterOptions {
        group_commit: Duration::from_secs(5),
        max_batch: 10,
    };
    let writer = StoreWriter::start(store.clone(), options);
    let started = Instant::now();
    let pending: Vec<Confirmation> = (0..30)
        .map(|i| writer.record(finished(&format!("call-{i:02}"))))
        .collect();
    for c in pending.into_iter().take(20) {
        confirmed(c).unwrap();
    }
    // Two full batches confirmed without waiting out the 5 s window.
    assert!(started.elapsed() < Duration::from_secs(4));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn seat_writes_apply_in_order_and_the_last_flush_runs_at_drop() {
    let (store, dir) = temp_store("seats");
    let writer = StoreWriter::start(store.clone(), WriterOptions::default());
    writer.seat_standing("arm1".into(), Some(PauseReason::Requested));
    writer.seat_standing("arm2".into(), Some(PauseReason::Requested));
    writer.seat_standing("arm1".into(), None);
    for (at, kind) in [(T0, "LOGIN"), (T0 + 1, "PAUSE")] {
        writer.seat_event(SeatEvent {
            at,
            seat: "arm1".into(),
            kind: kind.into(),
            from: None,
            to: None,
            call: None,
            detail: None,
        });
    }
    confirmed(writer.record(finished("x"))).unwrap();
    let standings = store.seat_standings().unwrap();
    assert_eq!(standings, [("arm2".to_string(), PauseReason::Requested)]);
    let kinds: Vec<String> = (store.seat_history("arm1", 10).unwrap())
        .into_iter()
        .map(|e| e.kind.as_str().to_string())
        .collect();
    assert_eq!(kinds, ["PAUSE", "LOGIN"]);
    std::fs::remove_dir_all(&dir).ok();
}
