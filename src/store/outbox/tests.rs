//! Unit tests of the outbox: what enters it with which write, in which order it is read,
//! what an acknowledgement deletes, and that it outlives a reopening.

use super::*;
use crate::pii::CallerNumber;
use crate::store::record::{FileEntry, Outcome, Qualification};

fn record(id: &str) -> CallRecord {
    let caller = CallerNumber::new("0612345678");
    let mut r = CallRecord::new(id.into(), "x".into(), "samu".into(), "15".into(), caller, 1);
    r.outcome = Some(Outcome::Answered);
    r
}

fn wrap_up(note: &str) -> FileEntry {
    FileEntry {
        at: 10,
        seat: "arm1".into(),
        data: Qualification {
            note: Some(note.into()),
            ..Default::default()
        },
    }
}

fn audit_entry(actor: &str) -> AuditEntry {
    AuditEntry {
        at: 5,
        actor: actor.into(),
        action: "recording.read".into(),
        target: "c1".into(),
        detail: None,
    }
}

fn notes(item: &OutboxItem) -> Vec<String> {
    match item {
        OutboxItem::Call { record } => record
            .file
            .iter()
            .filter_map(|e| e.data.note.clone())
            .collect(),
        OutboxItem::Audit { .. } => panic!("a call was expected: {item:?}"),
    }
}

#[test]
fn nothing_is_queued_while_the_outbox_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.put_call(&record("c1")).unwrap();
    store.append_file("c1", &wrap_up("a")).unwrap();
    store.audit(&audit_entry("dr")).unwrap();
    assert_eq!(store.outbox_pending(), 0);
    assert!(store.outbox_batch(10).unwrap().is_empty());
}

/// Records, their later versions and audit entries are queued in write order; each version
/// of a record carries its whole file, and its key (the revision) grows.
#[test]
fn every_write_is_queued_in_order_with_the_whole_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap().with_outbox(true);
    // Written before its record: it ships with the record, not on its own.
    store.append_file("c1", &wrap_up("early")).unwrap();
    assert_eq!(store.outbox_pending(), 0);
    store.put_call(&record("c1")).unwrap();
    store.audit(&audit_entry("dr")).unwrap();
    store.append_file("c1", &wrap_up("late")).unwrap();
    let rows = store.outbox_batch(10).unwrap();
    assert_eq!(store.outbox_pending(), 3);
    assert_eq!(rows.len(), 3);
    assert!(rows.windows(2).all(|w| w[0].0 < w[1].0), "{rows:?}");
    assert_eq!(notes(&rows[0].1), ["early"]);
    match &rows[1].1 {
        OutboxItem::Audit { id, entry } => {
            assert_eq!(*id, rows[1].0);
            assert_eq!(entry, &audit_entry("dr"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(notes(&rows[2].1), ["early", "late"]);
    // The stored record and the last queued version are the same.
    let OutboxItem::Call { record } = &rows[2].1 else {
        unreachable!()
    };
    assert_eq!(&store.get_call("c1").unwrap().unwrap(), record.as_ref());
}

/// An acknowledgement deletes the rows named, not those written meanwhile; batches are
/// bounded and read from the oldest.
#[test]
fn acknowledged_rows_go_and_the_rest_stay() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap().with_outbox(true);
    for i in 0..5 {
        store.put_call(&record(&format!("c{i}"))).unwrap();
    }
    let first = store.outbox_batch(2).unwrap();
    assert_eq!(first.len(), 2);
    store.put_call(&record("c5")).unwrap();
    let keys: Vec<u64> = first.iter().map(|(k, _)| *k).collect();
    store.outbox_ack(&keys).unwrap();
    assert_eq!(store.outbox_pending(), 4);
    let ids: Vec<String> = store
        .outbox_batch(10)
        .unwrap()
        .into_iter()
        .map(|(_, item)| match item {
            OutboxItem::Call { record } => record.id.clone(),
            OutboxItem::Audit { .. } => unreachable!(),
        })
        .collect();
    assert_eq!(ids, ["c2", "c3", "c4", "c5"]);
    // Acknowledging again (a replay after a crash) changes nothing.
    store.outbox_ack(&keys).unwrap();
    assert_eq!(store.outbox_batch(10).unwrap().len(), 4);
}

/// What was queued is still queued after a reopening (counted again), with the outbox off
/// too; new keys keep growing past the old ones.
#[test]
fn the_outbox_outlives_a_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let last = {
        let store = Store::open(dir.path()).unwrap().with_outbox(true);
        store.put_call(&record("c1")).unwrap();
        store.audit(&audit_entry("dr")).unwrap();
        store.outbox_batch(10).unwrap().last().unwrap().0
    };
    let store = Store::open_retrying(dir.path(), std::time::Duration::from_secs(2))
        .unwrap()
        .with_outbox(true);
    assert_eq!(store.outbox_pending(), 2);
    store.put_call(&record("c2")).unwrap();
    let rows = store.outbox_batch(10).unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows[2].0 > last, "{rows:?}");
}

/// A write wakes whoever waits for the outbox, even if it waits only afterwards.
#[tokio::test]
async fn a_write_wakes_the_shipper() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap().with_outbox(true);
    store.put_call(&record("c1")).unwrap();
    let woken = tokio::time::timeout(std::time::Duration::from_secs(5), store.outbox_added());
    assert!(woken.await.is_ok());
}
