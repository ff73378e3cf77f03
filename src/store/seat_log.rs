//! Per-seat history: every state change of a seat (login, pause and its reason, offers,
//! calls, wrap-up) in a sled tree keyed by seat then time, so one seat's day reads as one
//! range scan. Consecutive events go under one key ([`SeatRun`]): a call's offer and the
//! state changes after it.
//!
//! The store writer puts a run in the commit log with each batch that changes it, and in
//! sled only at the next checkpoint ([`StagedRuns`]): a run grows over several batches (a
//! call's offer, answer, end and wrap-up), and sled would take each version whole. Until
//! then [`Store::seat_history`] reads the staged runs beside sled's.

use super::record::EventKind;
use super::{Store, StoreError};
use crate::time::EpochMillis;
use sas_core::id_map::IdMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

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
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
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

/// Runs logged but not yet in sled, by their sled key (their latest version): the store
/// writer stages them as it logs them and writes them to sled at its checkpoints; history
/// reads see them meanwhile.
#[derive(Clone, Default)]
pub(super) struct StagedRuns(Arc<Mutex<BTreeMap<Vec<u8>, SeatRun>>>);

impl StagedRuns {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Vec<u8>, SeatRun>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A seat's staged runs, newest key first.
    fn of_seat(&self, prefix: &[u8]) -> Vec<(Vec<u8>, SeatRun)> {
        let staged = self.lock();
        let after = staged.range(prefix.to_vec()..);
        let mine = after.take_while(|(key, _)| key.starts_with(prefix));
        let mut runs: Vec<_> = mine.map(|(k, r)| (k.clone(), r.clone())).collect();
        runs.reverse();
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

    /// Stages runs just logged (see [`StagedRuns`]): sled takes them at the next checkpoint
    /// ([`Store::write_staged_runs`]), history reads see them at once.
    pub(super) fn stage_seat_runs(&self, runs: &[(u64, SeatRun)]) {
        let mut staged = self.staged_runs.lock();
        for (seq, run) in runs {
            if let Some(first) = run.0.first() {
                staged.insert(key(&first.seat, first.at, *seq), run.clone());
            }
        }
    }

    /// Writes the staged runs to sled (not flushed: the checkpoint flushes next); they stay
    /// staged if sled fails, for the next checkpoint.
    pub(super) fn write_staged_runs(&self) -> Result<(), StoreError> {
        let mut staged = self.staged_runs.lock();
        for (key, run) in staged.iter() {
            self.seat_log
                .insert(key.as_slice(), serde_json::to_vec(run)?)?;
        }
        staged.clear();
        Ok(())
    }

    /// A seat's most recent events, newest first: sled's runs and the staged ones (a staged
    /// run is a later version of sled's under its key).
    pub fn seat_history(&self, seat: &str, limit: usize) -> Result<Vec<SeatEvent>, StoreError> {
        let mut prefix = seat.as_bytes().to_vec();
        prefix.push(0);
        let mut staged = self.staged_runs.of_seat(&prefix).into_iter();
        let mut stored = self.seat_log.scan_prefix(&prefix).rev();
        let (mut next_staged, mut next_stored) = (staged.next(), stored.next().transpose()?);
        let mut events = Vec::new();
        while events.len() < limit {
            // The newer key of the two heads; a key in both is the staged version's.
            let stored_first = match (&next_staged, &next_stored) {
                (None, None) => break,
                (Some((staged_key, _)), Some((stored_key, _))) => {
                    stored_key.as_ref() > staged_key.as_slice()
                }
                (staged_head, _) => staged_head.is_none(),
            };
            let run = if stored_first {
                let bytes = next_stored.take().map(|(_, v)| v).unwrap_or_default();
                next_stored = stored.next().transpose()?;
                serde_json::from_slice(&bytes)?
            } else {
                let (key, run) = next_staged.take().unwrap_or_default();
                if next_stored
                    .as_ref()
                    .is_some_and(|(k, _)| k.as_ref() == key.as_slice())
                {
                    next_stored = stored.next().transpose()?;
                }
                next_staged = staged.next();
                run
            };
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
    fn staged_runs_read_beside_sled_s_and_reach_it_at_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut runs = Runs::default();
        runs.add(about("arm1", 1, "OFFER", Some("c1")));
        runs.add(event("arm1", 2, "STATE"));
        store.put_seat_runs(&runs.take_unwritten()).unwrap();
        // c1's run grows (a later version of a stored key), c2's begins; a neighbour's too.
        runs.add(event("arm1", 3, "STATE"));
        runs.add(about("arm1", 4, "OFFER", Some("c2")));
        runs.add(about("arm10", 5, "OFFER", Some("c3")));
        store.stage_seat_runs(&runs.take_unwritten());
        assert_eq!(
            times(&store, "arm1", 10),
            [4, 3, 2, 1],
            "each event once, newest first"
        );
        assert_eq!(times(&store, "arm1", 2), [4, 3]);
        assert_eq!(times(&store, "arm10", 10), [5]);
        assert_eq!(store.seat_log.len(), 1, "staged: not in sled yet");
        store.write_staged_runs().unwrap();
        assert_eq!(store.seat_log.len(), 3);
        assert!(store.staged_runs.lock().is_empty());
        assert_eq!(times(&store, "arm1", 10), [4, 3, 2, 1]);
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
