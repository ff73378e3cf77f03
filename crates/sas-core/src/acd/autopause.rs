//! Autopause: what happens to a seat that missed an offer, decided so that a few seconds
//! of overload never empty the plateau.
//!
//! - An explicit refusal (a final error response from the seat) pauses it.
//! - An offer that rang out, or never reached the phone, pauses it too, unless
//!   [`AcdSettings::autopause_burst`](super::AcdSettings::autopause_burst) seats missed
//!   offers within one ring timeout: many seats failing together is the router's or the
//!   network's trouble (overload, a switch down), not theirs. Then nobody is paused for
//!   it, the seats paused in that window come back at once, and supervisors are told
//!   ([`AcdOutput::MissBurst`]).
//! - Every autopause ends by itself after `autopause_resume_ms` (the queue's, else the
//!   ACD's), as Asterisk's queues do; supervisors are told of each one
//!   ([`AcdOutput::Autopaused`]).
//!
//! Offers the router could not send at all ([`Acd::offer_not_sent`]) never pause anyone.

use super::{Acd, AcdOutput, PauseReason, SeatId, SeatState};
use crate::time::{EpochMillis, Mono};
use std::collections::{BTreeSet, VecDeque};

/// Missed offers (not refusals) of the last ring timeout.
#[derive(Debug, Default)]
pub(super) struct Misses {
    recent: VecDeque<(Mono, SeatId)>,
    /// The current burst's alert was sent; no new one until it is over.
    burst_until: Mono,
}

impl Misses {
    /// Records a miss and returns the distinct seats that missed within `window`.
    fn note(&mut self, now: Mono, seat: &str, window: EpochMillis) -> BTreeSet<SeatId> {
        while self
            .recent
            .front()
            .is_some_and(|(at, _)| now.saturating_sub(*at) > window)
        {
            self.recent.pop_front();
        }
        self.recent.push_back((now, SeatId::from(seat)));
        self.recent.iter().map(|(_, s)| s.clone()).collect()
    }
}

impl Acd {
    /// The seat missed the offer of `call` (`why`): paused, resumed later by itself, or
    /// spared when the miss is one of a burst.
    pub(super) fn after_missed_offer(
        &mut self,
        now: Mono,
        seat: &str,
        call: &str,
        why: PauseReason,
    ) {
        // Whatever happens, others are tried before this seat again.
        if let Some(s) = self.seats.get_mut(seat) {
            s.idle_since = now;
        }
        if !self.is_registered(seat) {
            self.set_state(seat, SeatState::Offline, now);
            return;
        }
        if !self.settings.autopause || (why != PauseReason::Rejected && self.in_burst(now, seat)) {
            self.set_state(seat, SeatState::Available, now);
            return;
        }
        let resume_after = self
            .calls
            .get(call)
            .and_then(|q| self.queues.get(&q.queue))
            .and_then(|q| q.settings.autopause_resume_ms)
            .unwrap_or(self.settings.autopause_resume_ms);
        let until = (resume_after > 0).then(|| now.saturating_add(resume_after));
        self.set_state(seat, SeatState::Paused { reason: why, until }, now);
        self.outputs.push_back(AcdOutput::Autopaused {
            seat: SeatId::from(seat),
            reason: why,
            until,
        });
    }

    /// Notes the miss; true when it makes (or belongs to) a burst. The first miss to make
    /// one brings back the seats autopaused within the window and alerts supervisors.
    fn in_burst(&mut self, now: Mono, seat: &str) -> bool {
        let threshold = self.settings.autopause_burst;
        let window = self.settings.ring_timeout_ms;
        let seats = self.misses.note(now, seat, window);
        if threshold == 0 || seats.len() < threshold {
            return false;
        }
        let new_burst = now > self.misses.burst_until;
        self.misses.burst_until = now.saturating_add(window);
        for other in seats.iter().filter(|s| s.as_str() != seat) {
            // A refusal was the seat's own choice: that pause stays.
            let autopaused = matches!(
                self.state(other),
                Some(SeatState::Paused {
                    reason: PauseReason::RingNoAnswer | PauseReason::Unreachable,
                    ..
                })
            );
            if autopaused {
                self.set_state(other, self.ready_state(other), now);
            }
        }
        if new_burst {
            self.outputs.push_back(AcdOutput::MissBurst {
                seats: seats.into_iter().collect(),
            });
        }
        true
    }
}

#[cfg(test)]
mod tests;
