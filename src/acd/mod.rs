//! Automatic call distribution: the ARM queue and the seats, as a sans-IO state machine.
//!
//! Calls wait in line-priority order (the 15 before the 116 117), oldest first; the
//! longest-idle available seat is offered the next call. Ring-no-answer, wrap-up and
//! pauses are deadlines checked by [`Acd::handle_timeout`]; the driver asks
//! [`Acd::poll_timeout`] when to call it. Nothing here reads a clock or touches IO.

pub mod queue;
pub mod seat;

use crate::time::EpochMillis;
use queue::WaitQueue;
pub use seat::{PauseReason, Seat, SeatId, SeatState};
use std::collections::{BTreeMap, HashMap, VecDeque};

/// Timing rules.
#[derive(Debug, Clone, Copy)]
pub struct AcdSettings {
    /// How long an offer rings before it is withdrawn.
    pub ring_timeout_ms: EpochMillis,
    /// Wrap-up after each call.
    pub wrap_up_ms: EpochMillis,
    /// Pause a seat that misses or refuses an offer.
    pub autopause: bool,
}

/// What the ACD asks the driver to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcdOutput {
    /// Ring this seat with this call.
    Offer {
        /// The call.
        call: String,
        /// The seat.
        seat: SeatId,
    },
    /// The seat did not answer in time: stop ringing it. The call is already back in line.
    OfferTimedOut {
        /// The call.
        call: String,
        /// The seat.
        seat: SeatId,
    },
    /// A seat changed state (for the timeline and metrics).
    SeatChanged {
        /// The seat.
        seat: SeatId,
        /// State left.
        from: &'static str,
        /// State entered.
        to: &'static str,
    },
}

/// The role whose seats take entry calls.
pub const ARM_ROLE: &str = "arm";

/// A waiting (or offered) call: the role that answers it, its priority, when it queued.
#[derive(Debug, Clone)]
struct Queued {
    role: String,
    priority: u8,
    since: EpochMillis,
}

/// The queues (one per seat role) and the seats.
#[derive(Debug)]
pub struct Acd {
    settings: AcdSettings,
    seats: BTreeMap<SeatId, Seat>,
    registered: HashMap<SeatId, bool>,
    queues: BTreeMap<String, WaitQueue>,
    calls: HashMap<String, Queued>,
    outputs: VecDeque<AcdOutput>,
}

impl Acd {
    /// An empty ACD.
    pub fn new(settings: AcdSettings) -> Self {
        Self {
            settings,
            seats: BTreeMap::new(),
            registered: HashMap::new(),
            queues: BTreeMap::new(),
            calls: HashMap::new(),
            outputs: VecDeque::new(),
        }
    }

    /// Declares a seat (from the configuration); it starts offline.
    pub fn add_seat(&mut self, id: &str, role: &str, now: EpochMillis) {
        self.seats.entry(id.to_string()).or_insert_with(|| Seat {
            id: id.to_string(),
            role: role.to_string(),
            state: SeatState::Offline,
            idle_since: now,
            calls_taken: 0,
        });
    }

    /// The seat registered: an offline seat becomes available.
    pub fn seat_online(&mut self, now: EpochMillis, id: &str) {
        self.registered.insert(id.to_string(), true);
        if matches!(self.state(id), Some(SeatState::Offline)) {
            self.set_state(id, SeatState::Available, now);
            self.dispatch(now);
        }
    }

    /// The seat's last registration is gone. A ringing offer is withdrawn and the call goes
    /// back in line; a call in progress continues and the seat goes offline when it ends.
    pub fn seat_offline(&mut self, now: EpochMillis, id: &str) -> Option<String> {
        self.registered.insert(id.to_string(), false);
        let withdrawn = match self.state(id)? {
            SeatState::Ringing { call, .. } => {
                let call = call.clone();
                self.requeue(&call);
                Some(call)
            }
            SeatState::Busy { .. } => return None,
            _ => None,
        };
        self.set_state(id, SeatState::Offline, now);
        self.dispatch(now);
        withdrawn
    }

    /// A call enters the queue answered by seats of `role`.
    pub fn enqueue(&mut self, now: EpochMillis, call: &str, role: &str, priority: u8) {
        let queued = Queued {
            role: role.to_string(),
            priority,
            since: now,
        };
        self.calls.insert(call.to_string(), queued);
        self.requeue(call);
        self.dispatch(now);
    }

    /// The call left (caller hung up, or it ended). Returns the seat that was ringing for
    /// it, now available again.
    pub fn withdraw(&mut self, now: EpochMillis, call: &str) -> Option<SeatId> {
        if let Some(q) = self.calls.remove(call) {
            self.queues.entry(q.role).or_default().remove(call);
        }
        let ringing = self.ringing_seat(call)?;
        self.set_state(&ringing, SeatState::Available, now);
        self.dispatch(now);
        Some(ringing)
    }

    /// The seat answered the call it was offered.
    pub fn answered(&mut self, now: EpochMillis, seat: &str, call: &str) -> bool {
        if self.ringing_seat(call).as_deref() != Some(seat) {
            return false;
        }
        self.calls.remove(call);
        if let Some(s) = self.seats.get_mut(seat) {
            s.calls_taken += 1;
        }
        self.set_state(seat, SeatState::Busy { call: call.into() }, now);
        true
    }

    /// The offer failed (refused, unreachable). The call goes back to its place in line.
    pub fn offer_failed(&mut self, now: EpochMillis, seat: &str, call: &str, why: PauseReason) {
        if self.ringing_seat(call).as_deref() != Some(seat) {
            return;
        }
        self.requeue(call);
        self.after_missed_offer(now, seat, why);
        self.dispatch(now);
    }

    /// The seat's call ended: wrap-up, then available (or offline if it unregistered).
    pub fn call_ended(&mut self, now: EpochMillis, seat: &str) {
        if !matches!(self.state(seat), Some(SeatState::Busy { .. })) {
            return;
        }
        let next = if !self.is_registered(seat) {
            SeatState::Offline
        } else if self.settings.wrap_up_ms == 0 {
            SeatState::Available
        } else {
            SeatState::WrapUp {
                until: now + self.settings.wrap_up_ms,
            }
        };
        self.set_state(seat, next, now);
        self.dispatch(now);
    }

    /// Pauses a seat that is not on a call. Returns false when it cannot be paused now.
    pub fn pause(&mut self, now: EpochMillis, seat: &str, reason: PauseReason) -> bool {
        match self.state(seat) {
            Some(SeatState::Available | SeatState::WrapUp { .. } | SeatState::Paused { .. }) => {
                self.set_state(seat, SeatState::Paused { reason }, now);
                true
            }
            _ => false,
        }
    }

    /// Puts a paused seat back in distribution.
    pub fn unpause(&mut self, now: EpochMillis, seat: &str) -> bool {
        if !matches!(self.state(seat), Some(SeatState::Paused { .. })) {
            return false;
        }
        let next = if self.is_registered(seat) {
            SeatState::Available
        } else {
            SeatState::Offline
        };
        self.set_state(seat, next, now);
        self.dispatch(now);
        true
    }

    /// Fires every deadline at or before `now`.
    pub fn handle_timeout(&mut self, now: EpochMillis) {
        let due: Vec<(SeatId, SeatState)> = self
            .seats
            .values()
            .filter(|s| matches!(deadline(&s.state), Some(t) if t <= now))
            .map(|s| (s.id.clone(), s.state.clone()))
            .collect();
        for (seat, state) in due {
            match state {
                SeatState::Ringing { call, .. } => {
                    self.requeue(&call);
                    self.outputs.push_back(AcdOutput::OfferTimedOut {
                        call,
                        seat: seat.clone(),
                    });
                    self.after_missed_offer(now, &seat, PauseReason::RingNoAnswer);
                }
                SeatState::WrapUp { .. } => self.set_state(&seat, SeatState::Available, now),
                _ => {}
            }
        }
        self.dispatch(now);
    }

    /// The next deadline, if any.
    pub fn poll_timeout(&self) -> Option<EpochMillis> {
        self.seats.values().filter_map(|s| deadline(&s.state)).min()
    }

    /// The next action for the driver.
    pub fn poll_output(&mut self) -> Option<AcdOutput> {
        self.outputs.pop_front()
    }

    /// A seat, by id.
    pub fn seat(&self, id: &str) -> Option<&Seat> {
        self.seats.get(id)
    }

    /// All seats.
    pub fn seats(&self) -> impl Iterator<Item = &Seat> {
        self.seats.values()
    }

    /// Calls waiting (not being offered).
    pub fn waiting(&self) -> usize {
        self.queues.values().map(WaitQueue::len).sum()
    }

    fn state(&self, id: &str) -> Option<&SeatState> {
        self.seats.get(id).map(|s| &s.state)
    }

    fn is_registered(&self, id: &str) -> bool {
        self.registered.get(id).copied().unwrap_or(false)
    }

    fn ringing_seat(&self, call: &str) -> Option<SeatId> {
        self.seats
            .values()
            .find(|s| matches!(&s.state, SeatState::Ringing { call: c, .. } if c == call))
            .map(|s| s.id.clone())
    }

    fn requeue(&mut self, call: &str) {
        if let Some(q) = self.calls.get(call) {
            self.queues
                .entry(q.role.clone())
                .or_default()
                .push(call, q.priority, q.since);
        }
    }

    fn after_missed_offer(&mut self, now: EpochMillis, seat: &str, why: PauseReason) {
        let next = if !self.is_registered(seat) {
            SeatState::Offline
        } else if self.settings.autopause {
            SeatState::Paused { reason: why }
        } else {
            SeatState::Available
        };
        self.set_state(seat, next, now);
        // Without autopause the seat goes to the back so others are tried first.
        if let Some(s) = self.seats.get_mut(seat) {
            s.idle_since = now;
        }
    }

    fn set_state(&mut self, id: &str, state: SeatState, now: EpochMillis) {
        let Some(seat) = self.seats.get_mut(id) else {
            return;
        };
        let from = seat.state.label();
        let to = state.label();
        if state == SeatState::Available && from != "ringing" {
            seat.idle_since = now;
        }
        seat.state = state;
        if from != to {
            self.outputs.push_back(AcdOutput::SeatChanged {
                seat: id.to_string(),
                from,
                to,
            });
        }
    }

    fn longest_idle_available(&self, role: &str) -> Option<SeatId> {
        self.seats
            .values()
            .filter(|s| s.role == role && s.state == SeatState::Available)
            .min_by_key(|s| (s.idle_since, s.id.clone()))
            .map(|s| s.id.clone())
    }

    /// Offers waiting calls to available seats, queue by queue.
    fn dispatch(&mut self, now: EpochMillis) {
        let roles: Vec<String> = self.queues.keys().cloned().collect();
        for role in roles {
            self.dispatch_role(now, &role);
        }
    }

    fn dispatch_role(&mut self, now: EpochMillis, role: &str) {
        while self.queues.get(role).is_some_and(|q| !q.is_empty()) {
            let Some(seat) = self.longest_idle_available(role) else {
                return;
            };
            let Some(call) = self.queues.get_mut(role).and_then(WaitQueue::pop) else {
                return;
            };
            let until = now + self.settings.ring_timeout_ms;
            self.set_state(
                &seat,
                SeatState::Ringing {
                    call: call.clone(),
                    until,
                },
                now,
            );
            self.outputs.push_back(AcdOutput::Offer { call, seat });
        }
    }
}

fn deadline(state: &SeatState) -> Option<EpochMillis> {
    match state {
        SeatState::Ringing { until, .. } | SeatState::WrapUp { until } => Some(*until),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_queue_is_served_by_seats_of_its_role_only() {
        let mut acd = Acd::new(AcdSettings {
            ring_timeout_ms: 15_000,
            wrap_up_ms: 0,
            autopause: true,
        });
        acd.add_seat("arm1", "arm", 0);
        acd.add_seat("psy1", "psy", 0);
        acd.seat_online(1, "arm1");
        acd.enqueue(2, "c-psy", "psy", 1);
        acd.enqueue(3, "c-arm", "arm", 1);
        assert_eq!(offers(&mut acd), vec![("c-arm".into(), "arm1".into())]);
        assert_eq!(acd.waiting(), 1, "the psy call waits for a psy seat");
        acd.seat_online(4, "psy1");
        assert_eq!(offers(&mut acd), vec![("c-psy".into(), "psy1".into())]);
    }

    fn offers(acd: &mut Acd) -> Vec<(String, String)> {
        std::iter::from_fn(|| acd.poll_output())
            .filter_map(|o| match o {
                AcdOutput::Offer { call, seat } => Some((call, seat)),
                _ => None,
            })
            .collect()
    }
}
