//! Unit tests of the call journal: what each step writes, how an interrupted call is
//! closed, and recovery at start (records, recordings, nothing twice).

use super::*;
use crate::media::g711::G711Law;
use crate::media::recording::RecordingWriter;
use crate::pii::CallerNumber;
use crate::store::record::{Handler, OfferRecord};

pub(crate) const T0: EpochMillis = 1_795_000_000_000;

/// A call of the 15 that arrived at `T0` (also the store writer's tests' record).
pub(crate) fn live(id: &str) -> CallRecord {
    let caller = CallerNumber::new("0612345678");
    CallRecord::new(
        id.into(),
        "sip".into(),
        "samu".into(),
        "15".into(),
        caller,
        T0,
    )
}

fn temp_store(name: &str) -> (Store, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("sas-journal-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    (Store::open(&dir).unwrap(), dir)
}

/// What a step touched, as [`Journal::changed_calls`] takes it.
fn touched<'a>(
    calls: &[(&'a str, Option<&'a CallRecord>)],
) -> impl Iterator<Item = (&'a str, Option<&'a CallRecord>)> {
    calls.iter().copied()
}

#[test]
fn only_changed_calls_are_written_and_ended_ones_forgotten() {
    let mut journal = Journal::default();
    let (mut a, b) = (live("a"), live("b"));
    let ids = |v: Vec<&CallRecord>| v.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
    let mut first = ids(journal.changed_calls(touched(&[("a", Some(&a)), ("b", Some(&b))])));
    first.sort();
    assert_eq!(first, ["a", "b"]);
    // Touched but not changed (a mutable access that changed nothing): not written again.
    assert!((journal.changed_calls(touched(&[("a", Some(&a)), ("b", Some(&b))]))).is_empty());
    a.event(T0 + 5, EventKind::EnterQueue, None, None);
    assert_eq!(
        ids(journal.changed_calls(touched(&[("a", Some(&a))]))),
        ["a"]
    );
    // b ended: forgotten, so a call with its id would be written afresh.
    assert!(journal.changed_calls(touched(&[("b", None)])).is_empty());
    assert_eq!(journal.calls.len(), 1);
    assert_eq!(
        ids(journal.changed_calls(touched(&[("b", Some(&b))]))),
        ["b"]
    );
}

#[test]
fn seat_standings_are_written_when_they_change() {
    let mut journal = Journal::with_seats([("arm1".to_string(), PauseReason::Break)]);
    let step = |j: &mut Journal, s: &[(&'static str, Option<PauseReason>)]| {
        j.changed_seats(s.iter().copied())
    };
    let same = [("arm1", Some(PauseReason::Break)), ("arm2", None)];
    assert!(step(&mut journal, &same).is_empty());
    let changed = [("arm1", None), ("arm2", Some(PauseReason::LoggedOut))];
    assert_eq!(
        step(&mut journal, &changed),
        [
            ("arm1".to_string(), None),
            ("arm2".to_string(), Some(PauseReason::LoggedOut))
        ]
    );
    assert!(step(&mut journal, &changed).is_empty());
}

#[test]
fn an_interrupted_call_is_closed_where_the_router_stopped() {
    let mut r = live("c");
    r.event(T0 + 1_000, EventKind::EnterQueue, None, None);
    r.answered_at = Some(T0 + 3_000);
    r.offers.push(OfferRecord {
        seat: "arm1".into(),
        at: T0 + 1_000,
        ended_at: Some(T0 + 3_000),
        result: OfferResult::Answered,
        status: None,
    });
    r.offers.push(OfferRecord {
        seat: "arm2".into(),
        at: T0 + 2_000,
        ended_at: None,
        result: OfferResult::Ringing,
        status: None,
    });
    r.handlers.push(Handler {
        seat: "arm1".into(),
        role: "arm".into(),
        from: T0 + 3_000,
        until: None,
        left: None,
    });
    r.event(T0 + 3_000, EventKind::Connect, Some("arm1"), None);
    let entry = JournalEntry {
        record: r,
        journaled_at: T0 + 2_500, // older than the last event: the event wins
    };
    let closed = close_interrupted(entry, T0 + 2_500, None);
    assert_eq!(closed.outcome, Some(Outcome::Interrupted));
    assert_eq!(closed.end_reason, Some(END_REASON));
    assert_eq!(closed.ended_at, Some(T0 + 3_000));
    assert_eq!(closed.talk_ms, Some(0));
    assert_eq!(closed.offers[1].result, OfferResult::Withdrawn);
    assert_eq!(closed.offers[0].result, OfferResult::Answered);
    assert_eq!(
        closed.handlers[0].left.as_deref(),
        Some(END_REASON.as_str())
    );
    let kinds: Vec<&str> = closed.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["ARRIVED", "ENTERQUEUE", "CONNECT", STOPPED_EVENT.as_str()]
    );
    let json = serde_json::to_value(&closed).unwrap();
    assert_eq!(json["outcome"], "interrupted");
}

/// A journaled call with no final record is recovered once, its recording repaired and
/// linked; a journaled call that did finish keeps its own record.
#[test]
fn recovery_closes_unfinished_calls_and_links_their_recording() {
    let (store, dir) = temp_store("recover");
    let root = dir.join("recordings");
    let (mut waiting, mut talking, finished) = (live("w-1"), live("t-1"), live("f-1"));
    waiting.event(T0 + 10, EventKind::EnterQueue, None, None);
    talking.answered_at = Some(T0 + 20);
    talking.event(T0 + 20, EventKind::Connect, Some("arm1"), None);
    store
        .journal(T0 + 30, &[&waiting, &talking, &finished])
        .unwrap();
    let mut done = finished.clone();
    done.outcome = Some(Outcome::Abandoned);
    store.put_call(&done).unwrap();
    assert_eq!(
        store.journaled().unwrap().len(),
        2,
        "put_call leaves the journal"
    );

    let relative = crate::store::recordings::Recordings::relative_path("t-1", T0 + 20);
    let mut writer = RecordingWriter::create(&root, &relative, G711Law::Alaw).unwrap();
    writer.write(&[7; 16_000]).unwrap();
    drop(writer); // as a crash leaves it

    let recovered = store.recover(Some(&root)).unwrap();
    assert_eq!(recovered.len(), 2);
    assert!(store.journaled().unwrap().is_empty());
    let t = store.get_call("t-1").unwrap().unwrap();
    assert_eq!(t.outcome, Some(Outcome::Interrupted));
    let recording = t.recording.expect("recording linked");
    assert_eq!(recording.path, relative);
    assert_eq!(recording.duration_ms, 1_000);
    let w = store.get_call("w-1").unwrap().unwrap();
    assert_eq!(w.outcome, Some(Outcome::Interrupted));
    assert_eq!(w.recording, None);
    assert_eq!(w.events[1].kind, "ENTERQUEUE");
    let f = store.get_call("f-1").unwrap().unwrap();
    assert_eq!(f.outcome, Some(Outcome::Abandoned));
    // Nothing left: a second start recovers nothing.
    assert!(store.recover(Some(&root)).unwrap().is_empty());
    std::fs::remove_dir_all(&dir).ok();
}
