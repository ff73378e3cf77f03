//! Per-seat history: every state change of a seat (login, pause and its reason, offers,
//! calls, wrap-up) in a sled tree keyed by seat then time, so one seat's day reads as one
//! range scan.

use super::record::EventKind;
use super::{Store, StoreError};
use crate::time::EpochMillis;
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

/// Tells apart events of one seat within one millisecond (keys stay unique and ordered).
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// A seat event's sequence number (part of its key).
pub(super) fn next_sequence() -> u64 {
    SEQUENCE.fetch_add(1, Ordering::Relaxed)
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
    /// Appends to a seat's history (not flushed: sled flushes within its interval; a
    /// seat's history is worth less than a call record's fsync on every state change).
    pub fn put_seat_event(&self, event: &SeatEvent) -> Result<(), StoreError> {
        self.put_seat_events(std::slice::from_ref(event))
    }

    /// Appends several events (the [`super::writer`] gathers a group commit's), one plain
    /// insert each.
    pub fn put_seat_events(&self, events: &[SeatEvent]) -> Result<(), StoreError> {
        let keyed: Vec<(u64, SeatEvent)> = (events.iter().cloned())
            .map(|e| (next_sequence(), e))
            .collect();
        self.put_seat_events_keyed(&keyed)
    }

    /// Appends events under the sequence numbers given (from [`next_sequence`]): written
    /// twice (a commit-log replay), an event keeps its one key.
    pub(super) fn put_seat_events_keyed(
        &self,
        events: &[(u64, SeatEvent)],
    ) -> Result<(), StoreError> {
        for (seq, event) in events {
            let key = key(&event.seat, event.at, *seq);
            self.seat_log.insert(key, serde_json::to_vec(event)?)?;
        }
        Ok(())
    }

    /// A seat's most recent events, newest first.
    pub fn seat_history(&self, seat: &str, limit: usize) -> Result<Vec<SeatEvent>, StoreError> {
        let mut prefix = seat.as_bytes().to_vec();
        prefix.push(0);
        super::newest(self.seat_log.scan_prefix(prefix), limit)
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
