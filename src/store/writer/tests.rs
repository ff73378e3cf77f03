//! Unit tests of the store writer: order (a late journal line never resurrects a stored
//! call), group commit (one flush for a burst), seat writes applied in order.

use super::*;
use crate::store::record::{EventKind, Outcome};

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
    let done = writer.record(finished("a"), None);
    // Sent after the record: dropped for `a`, kept for `b`.
    writer.journal(T0 + 20, vec![record("a"), record("b")]);
    confirmed(done).unwrap();
    let last = writer.record(finished("c"), None);
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
    let pending: Vec<Confirmation> = ids
        .iter()
        .map(|id| writer.record(finished(id), None))
        .collect();
    for c in pending {
        confirmed(c).unwrap();
    }
    let flushes = writer.metrics().flushes();
    assert!(
        (1..=4).contains(&flushes),
        "{flushes} flushes for 200 records"
    );
    assert_eq!(writer.metrics().confirmed_writes(), 200);
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
        .map(|i| writer.record(finished(&format!("call-{i:02}")), None))
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
    confirmed(writer.record(finished("x"), None)).unwrap();
    let standings = store.seat_standings().unwrap();
    assert_eq!(standings, [("arm2".to_string(), PauseReason::Requested)]);
    let kinds: Vec<String> = (store.seat_history("arm1", 10).unwrap())
        .into_iter()
        .map(|e| e.kind.as_str().to_string())
        .collect();
    assert_eq!(kinds, ["PAUSE", "LOGIN"]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn recordings_are_synced_with_their_records_and_a_failed_sync_is_on_the_timeline() {
    let (store, dir) = temp_store("recordings");
    let writer = StoreWriter::start(store.clone(), WriterOptions::default());
    let wav = dir.join("2026/12/03/a.wav");
    std::fs::create_dir_all(wav.parent().unwrap()).unwrap();
    std::fs::write(&wav, b"RIFF").unwrap();
    let a = writer.record(finished("a"), Some(wav));
    let b = writer.record(finished("b"), Some(dir.join("gone/b.wav")));
    confirmed(a).unwrap();
    confirmed(b).unwrap();
    assert_eq!(writer.metrics().recordings_synced(), 1);
    let kinds = |id: &str| -> Vec<String> {
        let r = store.get_call(id).unwrap().unwrap();
        r.events
            .iter()
            .map(|e| e.kind.as_str().to_string())
            .collect()
    };
    assert!(!kinds("a").contains(&"RECORDING_FAILED".to_string()));
    let b = store.get_call("b").unwrap().unwrap();
    let failed = b.events.last().unwrap();
    assert_eq!(failed.kind.as_str(), "RECORDING_FAILED");
    assert!(
        failed.detail.as_deref().unwrap().contains("not synced"),
        "{failed:?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn wrap_up_entries_share_the_records_flush_before_or_after_them() {
    use crate::store::record::{FileEntry, Qualification};
    let entry = |note: &str| FileEntry {
        at: T0 + 20,
        seat: "arm1".into(),
        data: Qualification {
            note: Some(note.into()),
            ..Default::default()
        },
    };
    let (store, dir) = temp_store("entries");
    let options = WriterOptions {
        group_commit: Duration::from_millis(50),
        max_batch: 1024,
    };
    let writer = StoreWriter::start(store.clone(), options);
    // Before its record (the recording still closing), then after it.
    let early = writer.file_entry("a".into(), entry("early"));
    let record = writer.record(finished("a"), None);
    let late = writer.file_entry("a".into(), entry("late"));
    for c in [early, record, late] {
        confirmed(c).unwrap();
    }
    assert_eq!(writer.metrics().flushes(), 1);
    assert_eq!(writer.metrics().confirmed_writes(), 3);
    let notes: Vec<String> = (store.get_call("a").unwrap().unwrap().file)
        .into_iter()
        .filter_map(|e| e.data.note)
        .collect();
    assert_eq!(notes, ["early", "late"]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn registrations_are_written_in_order_off_the_caller() {
    let (store, dir) = temp_store("bindings");
    let writer = StoreWriter::start(store.clone(), WriterOptions::default());
    let binding = crate::store::presence::StoredBinding {
        contact: "sip:arm1@127.0.0.1:5070".into(),
        source: "127.0.0.1:5070".parse().unwrap(),
        transport: "UDP".into(),
        expires_at: T0 + 3_600_000,
        call_id: "reg-1".into(),
        cseq: 1,
        registered_at: T0,
        path: Vec::new(),
    }
    .binding()
    .expect("a valid binding");
    writer.bindings("arm1".into(), vec![binding.clone()]);
    writer.bindings("arm2".into(), vec![binding]);
    writer.bindings("arm1".into(), Vec::new());
    confirmed(writer.record(finished("x"), None)).unwrap();
    let users: Vec<String> = store
        .bindings()
        .unwrap()
        .into_iter()
        .map(|(u, _)| u)
        .collect();
    assert_eq!(users, ["arm2"]);
    std::fs::remove_dir_all(&dir).ok();
}

/// Within one batch a call's journal lines coalesce into its latest version, and a call
/// whose record is in the batch gets none: its record supersedes them.
#[test]
fn a_batch_writes_one_journal_line_per_live_call_and_none_for_a_finished_one() {
    let (store, dir) = temp_store("coalesce");
    let options = WriterOptions {
        group_commit: Duration::from_millis(200),
        max_batch: 1024,
    };
    let writer = StoreWriter::start(store.clone(), options);
    let mut b = record("b");
    writer.journal(T0, vec![record("a"), b.clone()]);
    b.event(T0 + 5, EventKind::EnterQueue, None, None);
    writer.journal(T0 + 5, vec![record("a"), b.clone()]);
    confirmed(writer.record(finished("a"), None)).unwrap();
    assert_eq!(writer.metrics().journal_lines(), 1);
    assert_eq!(writer.metrics().flushes(), 1);
    let journaled = store.journaled().unwrap();
    assert_eq!(journaled.len(), 1, "{journaled:?}");
    assert_eq!(journaled[0].record, b);
    assert_eq!(journaled[0].journaled_at, T0 + 5);
    assert!(store.get_call("a").unwrap().is_some());
    std::fs::remove_dir_all(&dir).ok();
}
