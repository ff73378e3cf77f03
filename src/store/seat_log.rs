//! Per-seat history: every state change of a seat (login, pause and its reason, offers,
//! calls, wrap-up) in a sled tree keyed by seat then time, so one seat's day reads as one
//! range scan. Consecutive events go under one key ([`SeatRun`]): a call's offer and the
//! state changes after it.

use super::record::EventKind;
use super::{Store, StoreError};
use crate::time::EpochMillis;
use sas_core::id_map::IdMap;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};

/// One line of a seat's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatEvent {
    pub at: EpochMillis,
    pub seat: String,
    /// `STATE`, `PAUSE`, `UNPAUSE`, `LOGIN`, `LOGOUT`, `TRANSFER`, `ACCOMPANIED`…
    pub kind: EventKind,
    /// The state left and entered, for `STATE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The call concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Tells apart runs of one seat begun within one millisecond (keys stay unique and
/// ordered).
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

fn next_sequence() -> u64 {
    SEQUENCE.fetch_add(1, Ordering::Relaxed)
}

/// Most events under one key: a run's every new event rewrites it whole.
const RUN_MAX: usize = 16;

/// Consecutive events of one seat stored under one key (its first event's seat and time,
/// and a sequence number): sled keeps ~140 bytes of index per 8 keys however small their
/// values, for as long as they are stored, so a call's half-dozen seat changes under one key
/// keep the index ~6× smaller. Stored as a JSON array; a value stored before runs (one
/// event, an object) reads as a run of one.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "StoredRun")]
pub struct SeatRun(pub Vec<SeatEvent>);

#[derive(Deserialize)]
#[serde(untagged)]
enum StoredRun {
    Run(Vec<SeatEvent>),
    Event(SeatEvent),
}

impl From<StoredRun> for SeatRun {
    fn from(stored: StoredRun) -> Self {
        match stored {
            StoredRun::Run(events) => Self(events),
            StoredRun::Event(event) => Self(vec![event]),
        }
    }
}

impl Serialize for SeatRun {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// How the [`super::writer`] groups each seat's history into runs: a run begins with an
/// event about another call than the run's (an offer, mostly) and takes every event after
/// it, about that call or about none (state changes, pauses), up to [`RUN_MAX`]. A seat's
/// runs follow each other in time, so reading its keys in order reads its history in order.
#[derive(Default)]
pub(super) struct Runs {
    open: IdMap<String, OpenRun>,
    /// Runs ended (a new one begun) with events not yet written.
    ended: Vec<(u64, SeatRun)>,
}

struct OpenRun {
    seq: u64,
    call: Option<String>,
    run: SeatRun,
    unwritten: bool,
}

impl Runs {
    /// Adds an event to its seat's run, or begins a new one with it.
    pub(super) fn add(&mut self, event: SeatEvent) {
        let open = self.open.get_mut(&event.seat);
        let joins = open.as_ref().is_some_and(|o| {
            o.run.0.len() < RUN_MAX && (event.call.is_none() || event.call == o.call)
        });
        match open {
            Some(o) if joins => {
                o.run.0.push(event);
                o.unwritten = true;
            }
            _ => {
                let seat = event.seat.clone();
                let begun = OpenRun {
                    seq: next_sequence(),
                    call: event.call.clone(),
                    run: SeatRun(vec![event]),
                    unwritten: true,
                };
                if let Some(ended) = self.open.insert(seat, begun)
                    && ended.unwritten
                {
                    self.ended.push((ended.seq, ended.run));
                }
            }
        }
    }

    /// Each run with events not yet written, as it stands now, with its key's sequence
    /// number; from now on they count as written.
    pub(super) fn take_unwritten(&mut self) -> Vec<(u64, SeatRun)> {
        let mut runs = std::mem::take(&mut self.ended);
        for open in self.open.values_mut().filter(|o| o.unwritten) {
            open.unwritten = false;
            runs.push((open.seq, open.run.clone()));
        }
        runs
    }
}

fn key(seat: &str, at: EpochMillis, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(seat.len() + 17);
    key.extend_from_slice(seat.as_bytes());
    key.push(0);
    key.extend_from_slice(&at.to_be_bytes());
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

impl Store {
    /// Appends one event to a seat's history, as a run of its own (not flushed).
    pub fn put_seat_event(&self, event: &SeatEvent) -> Result<(), StoreError> {
        self.put_seat_runs(&[(next_sequence(), SeatRun(vec![event.clone()]))])
    }

    /// Writes runs under their first event and the sequence numbers given: written twice (a
    /// commit-log replay), a run keeps its one key, and its longer version wins.
    pub(super) fn put_seat_runs(&self, runs: &[(u64, SeatRun)]) -> Result<(), StoreError> {
        for (seq, run) in runs {
            let Some(first) = run.0.first() else {
                continue;
            };
            let key = key(&first.seat, first.at, *seq);
            self.seat_log.insert(key, serde_json::to_vec(run)?)?;
        }
        Ok(())
    }

    /// A seat's most recent events, newest first.
    pub fn seat_history(&self, seat: &str, limit: usize) -> Result<Vec<SeatEvent>, StoreError> {
        let mut prefix = seat.as_bytes().to_vec();
        prefix.push(0);
        let mut events = Vec::new();
        for item in self.seat_log.scan_prefix(prefix).rev() {
            if events.len() >= limit {
                break;
            }
            let (_, bytes) = item?;
            let run: SeatRun = serde_json::from_slice(&bytes)?;
            events.extend(run.0.into_iter().rev().take(limit - events.len()));
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seat: &str, at: EpochMillis, kind: &str) -> SeatEvent {
        SeatEvent {
            at,
            seat: seat.into(),
            kind: kind.into(),
            from: None,
            to: None,
            call: None,
            detail: None,
        }
    }

    fn about(seat: &str, at: EpochMillis, kind: &str, call: Option<&str>) -> SeatEvent {
        SeatEvent {
            call: call.map(str::to_string),
            ..event(seat, at, kind)
        }
    }

    fn times(store: &Store, seat: &str, limit: usize) -> Vec<EpochMillis> {
        let history = store.seat_history(seat, limit).unwrap();
        history.into_iter().map(|e| e.at).collect()
    }

    /// A call's offer and what follows it, until the next call's offer, take one key,
    /// written as it grows over several batches; the history still reads event by event.
    #[test]
    fn a_call_s_offer_and_the_changes_after_it_share_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut runs = Runs::default();
        let arm1 = [
            (1, "LOGIN", None),
            (2, "OFFER", Some("c1")),
            (3, "STATE", None),
            (4, "LEFT", Some("c1")),
            (5, "STATE", None),
            (6, "OFFER", Some("c2")),
            (7, "STATE", None),
        ];
        for (at, kind, call) in arm1 {
            runs.add(about("arm1", at, kind, call));
            if at == 3 {
                // A batch ends mid-run: the run is written, then rewritten longer.
                store.put_seat_runs(&runs.take_unwritten()).unwrap();
            }
        }
        runs.add(event("arm2", 8, "LOGIN"));
        store.put_seat_runs(&runs.take_unwritten()).unwrap();
        assert!(runs.take_unwritten().is_empty(), "all written");
        // arm1: [LOGIN] [OFFER c1 … STATE] [OFFER c2, STATE]; arm2: [LOGIN].
        assert_eq!(store.seat_log.len(), 4);
        assert_eq!(times(&store, "arm1", 10), [7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(times(&store, "arm1", 3), [7, 6, 5]);
        assert_eq!(times(&store, "arm2", 10), [8]);
    }

    /// A seat with no call for long (pauses, logins) still rewrites at most RUN_MAX events
    /// under a key.
    #[test]
    fn a_run_stops_at_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut runs = Runs::default();
        for at in 0..40 {
            runs.add(event("arm1", at, "PAUSE"));
            store.put_seat_runs(&runs.take_unwritten()).unwrap();
        }
        assert_eq!(store.seat_log.len(), 40_usize.div_ceil(RUN_MAX));
        assert_eq!(
            times(&store, "arm1", 100),
            (0..40).rev().collect::<Vec<_>>()
        );
    }

    /// History stored before runs (one event a key, as an object) reads as before.
    #[test]
    fn an_event_stored_before_runs_reads_as_a_run_of_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let old = serde_json::to_vec(&event("arm1", 1, "LOGIN")).unwrap();
        store.seat_log.insert(key("arm1", 1, 0), old).unwrap();
        store.put_seat_event(&event("arm1", 2, "PAUSE")).unwrap();
        assert_eq!(times(&store, "arm1", 10), [2, 1]);
    }

    #[test]
    fn history_is_per_seat_and_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.put_seat_event(&event("arm1", 10, "LOGIN")).unwrap();
        store.put_seat_event(&event("arm10", 11, "LOGIN")).unwrap();
        store.put_seat_event(&event("arm1", 20, "PAUSE")).unwrap();
        store.put_seat_event(&event("arm1", 20, "UNPAUSE")).unwrap();
        let kinds: Vec<EventKind> = store
            .seat_history("arm1", 10)
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, ["UNPAUSE", "PAUSE", "LOGIN"]);
        assert_eq!(store.seat_history("arm1", 1).unwrap().len(), 1);
    }
}
