//! Purge and audited reads on temp directories, with an injected `now`.

use super::*;
use crate::media::recording::RecordingInfo;
use crate::pii::CallerNumber;
use crate::store::record::CallRecord;
use std::time::{Duration, SystemTime};

/// Midnight UTC of a date, in ms.
fn day(y: i32, m: u32, d: u32) -> EpochMillis {
    NaiveDate::from_ymd_opt(y, m, d)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_millis() as u64
}

/// Writes `root/rel` with the given modification time.
fn file(root: &Path, rel: &str, mtime: EpochMillis) -> PathBuf {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"RIFF").unwrap();
    let when = SystemTime::UNIX_EPOCH + Duration::from_millis(mtime);
    File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(when)
        .unwrap();
    path
}

#[test]
fn relative_path_is_dated_in_utc_and_stays_inside() {
    let at = day(2026, 11, 23) + ((7 * 60 + 15) * 60 + 2) * 1000 + 123;
    assert_eq!(
        Recordings::relative_path("20261123T071502.123Z-0001", at),
        "2026/11/23/20261123T071502.123Z-0001.wav"
    );
    let sneaky = Recordings::relative_path("../../etc/passwd", at);
    assert_eq!(sneaky, "2026/11/23/.._.._etc_passwd.wav");
    assert!(resolve(Path::new("/r"), &sneaky).is_ok());
    assert_eq!(Recordings::relative_path("", u64::MAX), "1970/01/01/.wav");
}

#[test]
fn purge_deletes_only_what_is_past_retention_and_audits_each_deletion() {
    let data = tempfile::tempdir().unwrap();
    let store = Store::open(data.path()).unwrap();
    let root = data.path().join(RECORDINGS_DIR);
    let recordings = Recordings::new(root.clone(), 1827);
    let now = day(2031, 12, 1);

    let old = file(&root, "2020/01/01/old.wav", day(2020, 1, 1) + 3_600_000);
    let young = file(&root, "2031/11/30/young.wav", day(2031, 11, 30));
    // Placed in an old directory but written recently: kept.
    let moved = file(&root, "2020/01/02/moved.wav", day(2031, 11, 1));
    // Recent directory, old mtime (copied with its times preserved): kept.
    let copied = file(&root, "2031/11/30/copied.wav", day(2020, 1, 1));
    // A symlinked date directory pointing outside the root is not followed.
    let outside = tempfile::tempdir().unwrap();
    let victim = file(outside.path(), "victim.wav", day(2019, 1, 1));
    std::fs::create_dir_all(root.join("2020/01")).unwrap();
    std::os::unix::fs::symlink(outside.path(), root.join("2020/01/03")).unwrap();
    // Not a recording: left alone.
    let notes = file(&root, "2020/01/04/notes.txt", day(2020, 1, 4));

    let report = recordings.purge(now, &store, "retention").unwrap();
    assert_eq!(report.deleted, 1);
    assert_eq!(report.kept, 3);
    assert_eq!(report.unrecognised, 2);
    assert_eq!(report.bytes_freed, 4);
    assert!(!old.exists());
    assert!(
        !root.join("2020/01/01").exists(),
        "emptied date directory removed"
    );
    for kept in [&young, &moved, &copied, &victim, &notes] {
        assert!(kept.exists(), "{}", kept.display());
    }

    let audit = store.audit_entries(10).unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].actor, "retention");
    assert_eq!(audit[0].action, ACTION_PURGE);
    assert_eq!(audit[0].target, "2020/01/01/old.wav");
    assert_eq!(audit[0].at, now);
    assert!(audit[0].detail.as_deref().unwrap().contains("days"));

    // At exactly the retention nothing goes; one millisecond later it does.
    let moved_limit = day(2031, 11, 1) + 1827 * DAY_MS;
    assert_eq!(
        recordings
            .purge(moved_limit, &store, "retention")
            .unwrap()
            .deleted,
        0
    );
    let report = recordings
        .purge(moved_limit + 1, &store, "retention")
        .unwrap();
    assert_eq!(report.deleted, 1);
    assert!(!moved.exists());
}

#[test]
fn purge_of_a_missing_root_does_nothing() {
    let data = tempfile::tempdir().unwrap();
    let store = Store::open(data.path()).unwrap();
    let recordings = Recordings::new(data.path().join("none"), 1);
    assert_eq!(
        recordings.purge(u64::MAX, &store, "cli").unwrap(),
        PurgeReport::default()
    );
}

fn record_with(store: &Store, id: &str, path: &str) {
    let mut record = CallRecord::new(
        id.into(),
        "sip".into(),
        "samu".into(),
        "15".into(),
        CallerNumber::new("0612345678"),
        1,
    );
    record.recording = Some(RecordingInfo {
        path: path.into(),
        duration_ms: 0,
        bytes: 4,
        sha256: String::new(),
        hashed: Default::default(),
        unplaced_ms: 0,
    });
    store.put_call(&record).unwrap();
}

#[test]
fn reading_writes_the_audit_entry_then_opens_the_file() {
    let data = tempfile::tempdir().unwrap();
    let store = Store::open(data.path()).unwrap();
    let root = data.path().join(RECORDINGS_DIR);
    let recordings = Recordings::new(root.clone(), 1827);
    let id = "20261123T071502.123Z-0001";
    let rel = Recordings::relative_path(id, day(2026, 11, 23));
    file(&root, &rel, day(2026, 11, 23));
    record_with(&store, id, &rel);

    let (path, mut f) = recordings
        .open_for_reading(42, &store, id, "dr.martin", Some("réquisition 2026-118"))
        .unwrap();
    assert_eq!(path, root.join(&rel));
    let mut content = Vec::new();
    std::io::Read::read_to_end(&mut f, &mut content).unwrap();
    assert_eq!(content, b"RIFF");
    assert_eq!(
        store.audit_entries(10).unwrap(),
        vec![AuditEntry {
            at: 42,
            actor: "dr.martin".into(),
            action: ACTION_READ.into(),
            target: id.into(),
            detail: Some("réquisition 2026-118".into()),
        }]
    );
}

#[test]
fn refused_reads_open_nothing_and_escapes_are_refused() {
    let data = tempfile::tempdir().unwrap();
    let store = Store::open(data.path()).unwrap();
    let recordings = Recordings::new(data.path().join(RECORDINGS_DIR), 1827);
    std::fs::write(data.path().join("secret.wav"), b"x").unwrap();
    record_with(&store, "escape", "../secret.wav");
    record_with(&store, "absolute", "/etc/passwd");

    for (id, actor) in [("escape", "a"), ("absolute", "a")] {
        assert!(matches!(
            recordings.open_for_reading(1, &store, id, actor, None),
            Err(RecordingAccessError::UnsafePath(_))
        ));
    }
    assert!(matches!(
        recordings.open_for_reading(1, &store, "nope", "a", None),
        Err(RecordingAccessError::UnknownCall(_))
    ));
    for actor in ["", "  ", "a\nb"] {
        assert!(matches!(
            recordings.open_for_reading(1, &store, "escape", actor, None),
            Err(RecordingAccessError::InvalidActor)
        ));
    }
    assert!(store.audit_entries(10).unwrap().is_empty());
}
