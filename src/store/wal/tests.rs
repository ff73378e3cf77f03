//! Unit tests of the commit log: framing, a torn or corrupt tail, generations, and replay
//! into a store (idempotent).

use super::entry::{Entry, StoredRecord, encode};
use super::*;
use crate::store::Store;
use crate::store::journal::tests::{T0, live};
use crate::store::record::{CallRecord, FileEntry, Outcome, Qualification};
use crate::store::seat_log::{SeatEvent, SeatRun};

fn log_in(dir: &Path) -> CommitLog {
    CommitLog::open(&dir.join(FILE_NAME), 1 << 30).unwrap()
}

#[test]
fn frames_read_back_in_order_and_a_reset_hides_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    assert_eq!(read(&path).unwrap(), Replay::default(), "no file: nothing");
    let mut log = log_in(dir.path());
    assert_eq!(log.generation(), 1);
    assert!(log.append(b"one").unwrap());
    assert!(log.append(b"two").unwrap());
    log.sync().unwrap();
    let replay = read(&path).unwrap();
    assert_eq!(replay.generation, 1);
    assert_eq!(replay.frames, [b"one".to_vec(), b"two".to_vec()]);
    assert!(!replay.torn);
    // Preallocated: the file is a whole chunk, its size unchanged by the next frames.
    assert_eq!(std::fs::metadata(&path).unwrap().len(), CHUNK);

    log.reset().unwrap();
    assert!(log.is_empty());
    // The older generation's frames lie after the new one's: never replayed.
    assert!(log.append(b"3").unwrap());
    let replay = read(&path).unwrap();
    assert_eq!((replay.generation, replay.frames), (2, vec![b"3".to_vec()]));
    assert!(!replay.torn);

    // Reopened (a restart): a new generation, nothing of the old one.
    drop(log);
    let log = log_in(dir.path());
    assert_eq!(log.generation(), 3);
    assert_eq!(read(&path).unwrap().frames, Vec::<Vec<u8>>::new());
}

#[test]
fn a_torn_or_corrupt_tail_stops_the_replay_at_the_last_good_frame() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let mut log = log_in(dir.path());
    for payload in [&b"first"[..], b"second", b"third"] {
        log.append(payload).unwrap();
    }
    drop(log);
    let bytes = std::fs::read(&path).unwrap();
    let third_at = HEADER as usize + 2 * FRAME_HEAD + b"first".len() + b"second".len();

    // Torn: the file ends inside the third frame.
    let torn = &bytes[..third_at + FRAME_HEAD + 2];
    let replay = parse(torn);
    assert_eq!(replay.frames, [b"first".to_vec(), b"second".to_vec()]);
    assert!(replay.torn);

    // Corrupt: one payload byte of the second frame flipped.
    let mut corrupt = bytes.clone();
    corrupt[third_at - 1] ^= 0x40;
    let replay = parse(&corrupt);
    assert_eq!(replay.frames, [b"first".to_vec()]);
    assert!(replay.torn);

    // A length past the end of the file.
    let mut long = bytes;
    long[third_at..third_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(parse(&long).torn);

    // No valid header: nothing to replay.
    assert_eq!(parse(b"garbage, not a log"), Replay::default());
}

#[test]
fn a_frame_past_the_size_limit_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = CommitLog::open(&dir.path().join(FILE_NAME), 0).unwrap();
    assert!(log.append(&vec![7u8; 1000]).unwrap());
    let written = log.written();
    assert!(!log.append(&vec![7u8; CHUNK as usize]).unwrap());
    assert_eq!(log.written(), written);
}

fn finished(id: &str) -> CallRecord {
    let mut r = live(id);
    r.outcome = Some(Outcome::Abandoned);
    r.ended_at = Some(T0 + 10);
    r
}

fn wrap_up(note: &str) -> Box<FileEntry> {
    Box::new(FileEntry {
        at: T0 + 20,
        seat: "arm1".into(),
        data: Qualification {
            note: Some(note.into()),
            ..Default::default()
        },
    })
}

/// A batch as the writer logs it: wrap-up entries before and after the record (each
/// write with its values), a seat event, a journal line for a live call, and a record whose
/// recording failed.
fn batch() -> Vec<u8> {
    let b = live("b");
    let mut a = finished("a");
    a.add_file(*wrap_up("early"));
    let mut a_later = a.clone();
    a_later.add_file(*wrap_up("late"));
    let mut c = finished("c");
    c.recording_failed("not synced to disk: gone");
    let entries = [
        Entry::Late {
            call: "a".into(),
            entries: vec![*wrap_up("early")],
        },
        Entry::Stored {
            record: StoredRecord::new(Box::new(a)),
            outbox: Some(7),
        },
        Entry::Stored {
            record: StoredRecord::new(Box::new(a_later)),
            outbox: Some(8),
        },
        Entry::Stored {
            record: StoredRecord::new(Box::new(c)),
            outbox: None,
        },
        Entry::Seats {
            runs: vec![(
                42,
                SeatRun(vec![SeatEvent {
                    at: T0,
                    seat: "arm1".into(),
                    kind: "LOGIN".into(),
                    from: None,
                    to: None,
                    call: None,
                    detail: None,
                }]),
            )],
        },
        Entry::Journal {
            lines: vec![(T0, std::borrow::Cow::Borrowed(&b))],
        },
    ];
    encode(&entries).unwrap()
}

/// Replayed twice (sled had part of it, or a replay was cut short), a batch is stored
/// once: one record each, each wrap-up entry once, one outbox row per shipped write, one
/// seat event, one journal line.
#[test]
fn replay_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let frames = vec![batch()];
    // The record (with its early entry), then its late entry: two rows.
    assert_eq!(store.replay_frames(&frames).unwrap(), 2);
    store.replay_frames(&frames).unwrap();
    assert_eq!(store.call_count(), 2);
    let a = store.get_call("a").unwrap().unwrap();
    let notes: Vec<_> = a.file.iter().filter_map(|e| e.data.note.clone()).collect();
    assert_eq!(notes, ["early", "late"]);
    assert_eq!(store.late_file.len(), 0);
    let c = store.get_call("c").unwrap().unwrap();
    assert_eq!(c.events.last().unwrap().kind.as_str(), "RECORDING_FAILED");
    let rows: Vec<u64> = (store.outbox_batch(100).unwrap().into_iter())
        .map(|(key, _)| key)
        .collect();
    assert_eq!(rows, [7, 8]);
    assert_eq!(store.seat_history("arm1", 10).unwrap().len(), 1);
    assert_eq!(store.journaled_ids(), ["b"]);
}

/// A frame written by the commit log's first format (logical writes) is skipped, loudly,
/// and the frames after it are replayed.
#[test]
fn a_frame_of_another_format_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let old = br#"[{"w":"record","record":{},"ship":false}]"#.to_vec();
    store.replay_frames(&[old, batch()]).unwrap();
    assert_eq!(store.call_count(), 2);
}

/// A frame written before seat history runs (`events`, one event each) replays: an
/// upgrade after a `kill -9` loses no seat history.
#[test]
fn a_frame_from_before_seat_runs_replays_its_events() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let event = r#"{"at":5,"seat":"arm1","kind":"LOGIN"}"#;
    let old = format!(r#"[{{"w":"seats","events":[[3,{event}],[4,{event}]]}}]"#);
    store.replay_frames(&[old.into_bytes()]).unwrap();
    let kinds: Vec<_> = (store.seat_history("arm1", 10).unwrap().into_iter())
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["LOGIN", "LOGIN"]);
}

/// Frames left in the log (sled never flushed them: `kill -9`) are in the store once it
/// is opened again, and the log starts a new generation.
#[test]
fn opening_the_store_replays_the_log_and_starts_a_new_generation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    {
        let mut log = log_in(dir.path());
        log.append(&batch()).unwrap();
        // A torn frame after it: the replay stops there.
        log.append(b"[{\"w\":\"record\"").unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        let end = HEADER as usize + log.written() as usize;
        bytes[end - 3] ^= 1;
        std::fs::write(&path, bytes).unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.call_count(), 2);
    assert_eq!(store.outbox_pending(), 2);
    let replay = read(&path).unwrap();
    assert_eq!((replay.generation, replay.frames.len()), (2, 0));
}
