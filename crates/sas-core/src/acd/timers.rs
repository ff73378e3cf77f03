//! The ACD's deadlines (ring-no-answer, wrap-up) in one ordered table, so the next one is
//! the first entry rather than a scan over the seats.

use super::seat::SeatId;
use crate::time::Mono;
use std::collections::BTreeSet;

/// Pending deadlines, one per seat at most.
#[derive(Debug, Default)]
pub(crate) struct Deadlines {
    set: BTreeSet<(Mono, SeatId)>,
}

impl Deadlines {
    pub(crate) fn insert(&mut self, at: Mono, seat: &str) {
        self.set.insert((at, SeatId::from(seat)));
    }

    pub(crate) fn remove(&mut self, at: Mono, seat: &str) {
        self.set.remove(&(at, SeatId::from(seat)));
    }

    pub(crate) fn next(&self) -> Option<Mono> {
        self.set.first().map(|(at, _)| *at)
    }

    /// Removes and returns the earliest deadline if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Mono) -> Option<(Mono, SeatId)> {
        if self.next()? <= now {
            self.set.pop_first()
        } else {
            None
        }
    }
}
