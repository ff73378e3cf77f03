//! Unit tests of the store writer: order (a late journal line never resurrects a stored
//! call), group commit (one flush for a burst), seat writes applied in order, the commit
//! log (sled not flushed per batch; what it held is back after a crash; checkpoints;
//! batches logged at once, synced together once per group-commit window).

use super::*;
use crate::store::record::{EventKind, Outcome};
use crate::store::wal::entry::Entry;

use crate::store::journal::tests::{T0, live as record};

/// A recording already finished at `path`: only its sync is left.
fn file(path: std::path::PathBuf) -> FinishRecording {
    Box::new(move |_| {
        let open = std::fs::File::open(&path).expect("the recording exists");
        Some((path, open))
    })
}

/// A recording at `path` whose sync fails: its descriptor is a pipe's (`fdatasync`: EINVAL),
/// as a disk's IO error would make it fail.
fn unsyncable(path: std::path::PathBuf) -> FinishRecording {
    Box::new(move |_| {
        let (read, _write) = nix::unistd::pipe().expect("a pipe");
        Some((path, std::fs::File::from(read)))
    })
}

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
    // Journal lines reach sled at a checkpoint (the commit log holds them until then).
    assert!(store.journaled_ids().is_empty(), "not before a checkpoint");
    confirmed(writer.checkpoint()).unwrap();
    assert_eq!(store.journaled_ids(), ["b"]);
    let a = store.get_call("a").unwrap().expect("a stored");
    assert_eq!(a.outcome, Some(Outcome::Abandoned));
    std::fs::remove_dir_all(&dir).ok();
}

/// `record_then`'s callback runs on the writer's thread once the record is on disk: no
/// task waits for a call's last write.
#[test]
fn record_then_confirms_on_the_writers_thread() {
    let (store, dir) = temp_store("then");
    let writer = StoreWriter::start(store.clone(), WriterOptions::default());
    let (tx, rx) = std::sync::mpsc::channel();
    let done = move |stored: Result<(), String>| {
        let thread = std::thread::current().name().map(String::from);
        tx.send((stored, thread)).ok();
    };
    writer.record_then(finished("a"), None, Box::new(done));
    let (stored, thread) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(stored, Ok(()));
    assert_eq!(thread.as_deref(), Some("store-writer"));
    assert!(
        store.get_call("a").unwrap().is_some(),
        "stored before confirmed"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_burst_of_records_shares_few_flushes_and_each_is_confirmed() {
    let (store, dir) = temp_store("group");
    let options = WriterOptions {
        group_commit: Duration::from_millis(50),
        max_batch: 1024,
        ..Default::default()
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

/// Records of batches apart, within one group-commit window, share one `fdatasync`: each
/// is in sled and in the commit log (what a `kill -9` leaves) as its batch ends, and
/// confirmed only once the window's sync is done.
#[test]
fn batches_apart_share_one_sync_and_are_logged_before_it() {
    let (store, dir) = temp_store("window");
    let options = WriterOptions {
        batch_window: Duration::from_millis(1),
        group_commit: Duration::from_millis(400),
        checkpoint: Duration::from_secs(3600),
        ..Default::default()
    };
    let writer = StoreWriter::start(store.clone(), options);
    let log = dir.join(crate::store::wal::FILE_NAME);
    let frames = || crate::store::wal::read(&log).unwrap().frames.len();
    let started = Instant::now();
    let mut first = writer.record(finished("a"), None);
    let deadline = Instant::now() + Duration::from_secs(5);
    while frames() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(frames(), 1, "the first batch is logged at its end");
    assert!(store.get_call("a").unwrap().is_some());
    let waited = started.elapsed();
    let unconfirmed = matches!(first.try_recv(), Err(oneshot::error::TryRecvError::Empty));
    // Only meaningful if the machine ran the writer within its window.
    if waited < Duration::from_millis(300) {
        assert!(unconfirmed, "confirmed before the window's sync");
    }
    let second = writer.record(finished("b"), None);
    if unconfirmed {
        confirmed(first).unwrap();
    }
    confirmed(second).unwrap();
    assert!(frames() >= 2, "the second batch has its own frame");
    assert_eq!(writer.metrics().confirmed_writes(), 2);
    if waited < Duration::from_millis(300) {
        assert_eq!(writer.metrics().flushes(), 1, "one sync for both batches");
    }
    drop(writer);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_batch_stops_at_its_size_bound() {
    let (store, dir) = temp_store("bound");
    let options = WriterOptions {
        group_commit: Duration::from_secs(5),
        max_batch: 10,
        ..Default::default()
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
    let a = writer.record(finished("a"), Some(file(wav)));
    let b = writer.record(finished("b"), Some(unsyncable(dir.join("gone/b.wav"))));
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
        ..Default::default()
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
        ..Default::default()
    };
    let writer = StoreWriter::start(store.clone(), options);
    let mut b = record("b");
    writer.journal(T0, vec![record("a"), b.clone()]);
    b.event(T0 + 5, EventKind::EnterQueue, None, None);
    writer.journal(T0 + 5, vec![record("a"), b.clone()]);
    confirmed(writer.record(finished("a"), None)).unwrap();
    assert_eq!(writer.metrics().journal_lines(), 1);
    assert_eq!(writer.metrics().flushes(), 1);
    confirmed(writer.checkpoint()).unwrap();
    let journaled = store.journaled().unwrap();
    assert_eq!(journaled.len(), 1, "{journaled:?}");
    assert_eq!(journaled[0].record, b);
    assert_eq!(journaled[0].journaled_at, T0 + 5);
    assert!(store.get_call("a").unwrap().is_some());
    std::fs::remove_dir_all(&dir).ok();
}

/// What a store's writer confirmed, with sled never flushed (the process killed before a
/// checkpoint: a copy of the data directory taken then stands for the disk after
/// `kill -9`), comes back from the commit log when the store is opened again.
#[test]
fn confirmed_writes_are_in_the_log_and_come_back_without_a_sled_flush() {
    let (store, dir) = temp_store("log");
    let options = WriterOptions {
        checkpoint: Duration::from_secs(3600),
        ..Default::default()
    };
    let writer = StoreWriter::start(store.clone(), options);
    writer.seat_standing("arm1".into(), Some(PauseReason::Break));
    writer.journal(T0, vec![record("live")]);
    confirmed(writer.record(finished("a"), None)).unwrap();
    let entry = crate::store::record::FileEntry {
        at: T0 + 20,
        seat: "arm1".into(),
        data: Default::default(),
    };
    confirmed(writer.file_entry("a".into(), entry)).unwrap();
    assert_eq!(
        writer.metrics().checkpoints(),
        0,
        "sled not flushed since the start"
    );

    // The disk as a kill -9 leaves it: the log and whatever sled wrote out on its own
    // (here: nothing of these writes, the copy of sled is from before them).
    let crashed = dir.with_extension("crashed");
    let _ = std::fs::remove_dir_all(&crashed);
    std::fs::create_dir_all(&crashed).unwrap();
    std::fs::copy(
        dir.join(crate::store::wal::FILE_NAME),
        crashed.join(crate::store::wal::FILE_NAME),
    )
    .unwrap();
    let reopened = Store::open(&crashed).unwrap();
    assert_eq!(reopened.call_count(), 1);
    let a = reopened.get_call("a").unwrap().unwrap();
    assert_eq!(a.file.len(), 1);
    assert_eq!(
        reopened.seat_standings().unwrap(),
        [("arm1".to_string(), PauseReason::Break)]
    );
    assert_eq!(reopened.journaled().unwrap().len(), 1);
    drop(reopened);
    std::fs::remove_dir_all(&crashed).ok();
    drop(writer);
    std::fs::remove_dir_all(&dir).ok();
}

/// sled is flushed at checkpoints, not per batch: many records, a few checkpoints; the
/// log is empty after the last one (at the writer's end).
#[test]
fn sled_is_flushed_at_checkpoints_only() {
    let (store, dir) = temp_store("checkpoint");
    let options = WriterOptions {
        group_commit: Duration::from_millis(1),
        checkpoint: Duration::from_millis(100),
        ..Default::default()
    };
    let writer = StoreWriter::start(store.clone(), options);
    let metrics = writer.metrics().clone();
    let started = Instant::now();
    for i in 0..40 {
        confirmed(writer.record(finished(&format!("call-{i:02}")), None)).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(metrics.flushes(), 40, "one group commit per record");
    let checkpoints = metrics.checkpoints();
    // At most one per interval.
    let most = started.elapsed().as_millis() as u64 / 100 + 2;
    assert!(
        (1..=most).contains(&checkpoints),
        "{checkpoints} checkpoints"
    );
    // Idle: the writer checkpoints on its own once the interval is over. The burst's last
    // batch may itself have checkpointed (nothing left to do), so one more record after a
    // quiet spell opens a fresh interval that only the idle checkpoint can close.
    std::thread::sleep(Duration::from_millis(150));
    let before_idle = metrics.checkpoints();
    confirmed(writer.record(finished("call-idle"), None)).unwrap();
    // Due 100 ms on; a loaded machine may run the writer late, so wait up to 5 s.
    let deadline = Instant::now() + Duration::from_secs(5);
    let frames_left = || {
        let log = dir.join(crate::store::wal::FILE_NAME);
        crate::store::wal::read(&log).unwrap().frames.len()
    };
    while (metrics.checkpoints() == before_idle || frames_left() > 0) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(metrics.checkpoints() > before_idle, "no idle checkpoint");
    assert_eq!(frames_left(), 0, "frames left in the log");
    drop(writer);
    std::fs::remove_dir_all(&dir).ok();
}

/// Every key of every tree of a store.
type Dump = std::collections::BTreeMap<(Vec<u8>, Vec<u8>), Vec<u8>>;

fn dump(store: &Store) -> Dump {
    let mut all = Dump::new();
    for name in store.db.tree_names() {
        for item in store.db.open_tree(&name).unwrap().iter() {
            let (key, value) = item.unwrap();
            all.insert((name.to_vec(), key.to_vec()), value.to_vec());
        }
    }
    all
}

/// One key written (`None`: removed), in its tree.
type KeyWrite = (Vec<u8>, Vec<u8>, Option<Vec<u8>>);

/// The key writes each entry of `frames` makes, in order, found by applying them one by
/// one to a scratch store.
fn key_writes(frames: &[Vec<u8>]) -> Vec<KeyWrite> {
    let scratch = tempfile::tempdir().unwrap();
    let store = Store::open(scratch.path()).unwrap();
    let mut writes = Vec::new();
    for frame in frames {
        let entries: Vec<Entry<'static>> = serde_json::from_slice(frame).unwrap();
        for entry in &entries {
            let before = dump(&store);
            store.apply(entry).unwrap();
            let after = dump(&store);
            for ((tree, key), value) in &after {
                if before.get(&(tree.clone(), key.clone())) != Some(value) {
                    writes.push((tree.clone(), key.clone(), Some(value.clone())));
                }
            }
            for (tree, key) in before.keys().filter(|k| !after.contains_key(*k)) {
                writes.push((tree.clone(), key.clone(), None));
            }
        }
    }
    writes
}

/// The writer applies each entry as plain per-key writes, so a crash can leave any subset
/// of a frame's keys in sled: a record stored and its journal line still there, its outbox
/// row or its late entries' removal missing, a wrap-up entry or seat event absent. Opening
/// the store replays the log, which must bring every such partial state to the full one.
#[test]
fn the_replay_completes_any_subset_of_a_frames_writes_that_reached_sled() {
    let (store, dir) = temp_store("partial");
    let store = store.with_outbox(true);
    let options = WriterOptions {
        checkpoint: Duration::from_secs(3600),
        ..Default::default()
    };
    let writer = StoreWriter::start(store.clone(), options);
    let entry = |note: &str| crate::store::record::FileEntry {
        at: T0 + 20,
        seat: "arm1".into(),
        data: crate::store::record::Qualification {
            note: Some(note.into()),
            ..Default::default()
        },
    };
    writer.seat_standing("arm1".into(), Some(PauseReason::Break));
    writer.journal(T0, vec![record("a"), record("b")]);
    confirmed(writer.file_entry("a".into(), entry("early"))).unwrap();
    writer.seat_event(SeatEvent {
        at: T0 + 1,
        seat: "arm1".into(),
        kind: "STATE".into(),
        from: Some("idle".into()),
        to: Some("busy".into()),
        call: Some("a".into()),
        detail: None,
    });
    // Its recording cannot be synced: a second version says so.
    let gone = dir.join("gone/a.wav");
    confirmed(writer.record(finished("a"), Some(unsyncable(gone)))).unwrap();
    confirmed(writer.file_entry("a".into(), entry("late"))).unwrap();
    writer.journal(T0 + 30, vec![record("b")]);
    confirmed(writer.record(finished("c"), None)).unwrap();
    let frames = crate::store::wal::read(&dir.join(crate::store::wal::FILE_NAME))
        .unwrap()
        .frames;
    assert!(frames.len() >= 3, "{} frames", frames.len());

    let full = {
        let fresh = tempfile::tempdir().unwrap();
        let replayed = Store::open(fresh.path()).unwrap();
        replayed.replay_frames(&frames).unwrap();
        dump(&replayed)
    };
    // What the writer left in sled is that state, once its journal lines are in.
    confirmed(writer.checkpoint()).unwrap();
    assert_eq!(dump(&store), full);
    let a = store.get_call("a").unwrap().unwrap();
    assert_eq!(a.file.len(), 2);
    assert!(
        a.events
            .iter()
            .any(|e| e.kind.as_str() == "RECORDING_FAILED")
    );
    assert_eq!(store.journaled_ids(), ["b"]);

    let writes = key_writes(&frames);
    let n = writes.len();
    assert!(n >= 12, "{n} key writes");
    // Each write missing alone, every prefix and suffix, and pseudo-random subsets.
    let mut subsets: Vec<Vec<bool>> = (0..n).map(|i| (0..n).map(|j| j != i).collect()).collect();
    subsets.extend((0..=n).map(|k| (0..n).map(|j| j < k).collect()));
    subsets.extend((0..=n).map(|k| (0..n).map(|j| j >= k).collect()));
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..32 {
        subsets.push(
            (0..n)
                .map(|_| {
                    seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    seed >> 63 == 1
                })
                .collect(),
        );
    }
    for subset in subsets {
        let crashed = tempfile::tempdir().unwrap();
        let partial = Store::open(crashed.path()).unwrap();
        for ((tree, key, value), _) in writes.iter().zip(&subset).filter(|(_, kept)| **kept) {
            let tree = partial.db.open_tree(tree).unwrap();
            match value {
                Some(value) => tree.insert(key.as_slice(), value.as_slice()).unwrap(),
                None => tree.remove(key.as_slice()).unwrap(),
            };
        }
        partial.replay_frames(&frames).unwrap();
        let kept: String = subset.iter().map(|k| if *k { '1' } else { '0' }).collect();
        assert!(
            dump(&partial) == full,
            "writes kept {kept}: not the full state"
        );
    }
    drop(writer);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_recording_is_finished_into_its_record_on_the_writers_thread() {
    let (store, dir) = temp_store("finish");
    let writer = StoreWriter::start(store.clone(), WriterOptions::default());
    let wav = dir.join("a.wav");
    let path = wav.clone();
    let finish: FinishRecording = Box::new(move |record| {
        // The file's last writes happen here: never on an async worker.
        assert_eq!(std::thread::current().name(), Some("store-writer"));
        std::fs::write(&path, b"RIFF").unwrap();
        record.recording_failed("marked by the finish");
        let open = std::fs::File::open(&path).unwrap();
        Some((path, open))
    });
    confirmed(writer.record(finished("a"), Some(finish))).unwrap();
    assert_eq!(writer.metrics().recordings_synced(), 1);
    let stored = store.get_call("a").unwrap().unwrap();
    assert!(
        stored
            .events
            .iter()
            .any(|e| e.kind == EventKind::RecordingFailed),
        "what the finish wrote into the record is stored: {:?}",
        stored.events
    );
    std::fs::remove_dir_all(&dir).ok();
}
