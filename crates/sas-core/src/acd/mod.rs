//! Automatic call distribution: queues, seats, strategies and priorities, as a sans-IO
//! state machine.
//!
//! Each queue serves the seats of one role (and optionally one skill). Calls wait in rank
//! order (see [`priority`]: P0 first, then urgency and line priority with aging); the
//! queue's [`Strategy`] picks the seat. Ring-no-answer and wrap-up are deadlines fired by
//! [`Acd::handle_timeout`]; the driver asks [`Acd::poll_timeout`] when to call it. Seat
//! selection, the next deadline and the next call are index lookups, so a decision costs
//! the same with ten seats or a thousand. Nothing here reads a clock or touches IO.

mod autopause;
mod error;
pub mod priority;
pub mod queue;
pub mod seat;
pub mod strategy;
mod timers;

use crate::id_map::{IdMap, IdSet};
use crate::ids::CallId;
use crate::time::{EpochMillis, Mono};
pub use error::AcdError;
pub use priority::{CallRequest, Urgency};
use queue::WaitQueue;
pub use seat::{PauseReason, Seat, SeatId, SeatState};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use strategy::SeatIndex;
pub use strategy::{QueueKey, QueueSettings, Strategy};
use timers::Deadlines;

/// Timing rules.
#[derive(Debug, Clone, Copy)]
pub struct AcdSettings {
    /// How long an offer rings before it is withdrawn.
    pub ring_timeout_ms: EpochMillis,
    /// Wrap-up after each call (queues and seats may override it).
    pub wrap_up_ms: EpochMillis,
    /// Pause a seat that misses or refuses an offer (see [`autopause`]).
    pub autopause: bool,
    /// An autopaused seat is put back in distribution after this long (0: only the seat
    /// or a supervisor resumes it). Queues may override it.
    pub autopause_resume_ms: EpochMillis,
    /// This many seats missing offers within one ring timeout is the router's or the
    /// network's trouble, not theirs: none of them is paused (0: no such rule).
    pub autopause_burst: usize,
    /// Waiting this long is worth one priority level (0: no aging). See [`priority`].
    pub aging_step_ms: EpochMillis,
}

/// What the ACD asks the driver to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcdOutput {
    /// Ring this seat with this call.
    Offer {
        /// The call.
        call: CallId,
        /// The seat.
        seat: SeatId,
    },
    /// The seat did not answer in time: stop ringing it. The call is already back in line
    /// (unless other seats still ring for it).
    OfferTimedOut {
        /// The call.
        call: CallId,
        /// The seat.
        seat: SeatId,
    },
    /// Stop ringing this seat: another seat answered the call (ring-all).
    Cancel {
        /// The call.
        call: CallId,
        /// The seat.
        seat: SeatId,
    },
    /// The ACD paused a seat that missed an offer: supervisors are told.
    Autopaused {
        /// The seat.
        seat: SeatId,
        /// Why.
        reason: PauseReason,
        /// When it comes back by itself, if it does.
        until: Option<Mono>,
    },
    /// Several seats missed offers at once ([`AcdSettings::autopause_burst`]): nobody was
    /// paused for it, the seats paused in that window are back. Supervisors are told once
    /// per burst: the plateau or the router is in trouble.
    MissBurst {
        /// The seats that missed offers within the window.
        seats: Vec<SeatId>,
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

/// A waiting (or offered) call: its queue and its place in line.
#[derive(Debug, Clone)]
struct Queued {
    queue: QueueKey,
    rank: priority::Rank,
}

/// One queue: its settings, its waiting calls, its available seats.
#[derive(Debug, Default)]
struct Queue {
    settings: QueueSettings,
    waiting: WaitQueue,
    available: SeatIndex,
}

/// The queues and the seats.
#[derive(Debug)]
pub struct Acd {
    settings: AcdSettings,
    seats: BTreeMap<SeatId, Seat>,
    registered: IdMap<SeatId, bool>,
    queues: BTreeMap<QueueKey, Queue>,
    calls: IdMap<String, Queued>,
    /// Seats ringing for each offered call (several with ring-all).
    ringing: IdMap<String, BTreeSet<SeatId>>,
    deadlines: Deadlines,
    offers_made: u64,
    outputs: VecDeque<AcdOutput>,
    /// Seats whose phone said it rings (180) for their current offer.
    rang: BTreeSet<SeatId>,
    /// Recent missed offers that were not refusals, for the burst rule.
    misses: autopause::Misses,
    /// Seats whose state or pause due after their call changed since
    /// [`Acd::take_touched_seats`] (the journal's dirty set for standings).
    touched: IdSet<SeatId>,
}

impl Acd {
    /// An empty ACD.
    pub fn new(settings: AcdSettings) -> Self {
        Self {
            settings,
            seats: BTreeMap::new(),
            registered: IdMap::default(),
            queues: BTreeMap::new(),
            calls: IdMap::default(),
            ringing: IdMap::default(),
            deadlines: Deadlines::default(),
            offers_made: 0,
            outputs: VecDeque::new(),
            rang: BTreeSet::new(),
            misses: autopause::Misses::default(),
            touched: IdSet::default(),
        }
    }

    /// Declares a seat (from the configuration); it starts offline.
    pub fn add_seat(&mut self, id: &str, role: &str, now: Mono) {
        self.seats.entry(SeatId::from(id)).or_insert_with(|| Seat {
            id: SeatId::from(id),
            role: role.to_string(),
            state: SeatState::Offline,
            state_since: now,
            idle_since: now,
            calls_taken: 0,
            skills: BTreeSet::new(),
            wrap_up_ms: None,
            last_offer: 0,
            wrap_after: 0,
            pause_after_call: None,
            wrap_until: Mono::ZERO,
        });
    }

    /// Sets a seat's skills; it then also serves the queues requiring them.
    pub fn set_skills(&mut self, now: Mono, id: &str, skills: &[&str]) -> Result<(), AcdError> {
        let seat = self
            .seats
            .get_mut(id)
            .ok_or_else(|| AcdError::UnknownSeat(id.into()))?;
        let available = seat.state == SeatState::Available;
        if available {
            self.unindex(id);
        }
        if let Some(seat) = self.seats.get_mut(id) {
            seat.skills = skills.iter().map(|s| s.to_string()).collect();
        }
        if available {
            self.index(id);
            self.dispatch(now);
        }
        Ok(())
    }

    /// Sets a seat's own wrap-up (`None`: the queue's).
    pub fn set_seat_wrap_up(
        &mut self,
        id: &str,
        wrap_up_ms: Option<EpochMillis>,
    ) -> Result<(), AcdError> {
        let seat = self
            .seats
            .get_mut(id)
            .ok_or_else(|| AcdError::UnknownSeat(id.into()))?;
        seat.wrap_up_ms = wrap_up_ms;
        Ok(())
    }

    /// Configures a queue (created if new). A new strategy applies to seats as they next
    /// become available.
    pub fn set_queue(&mut self, key: QueueKey, settings: QueueSettings) {
        // Re-key the seats already available for the (maybe new) strategy.
        let mut available = SeatIndex::default();
        for seat in self.seats.values() {
            if seat.state == SeatState::Available && key.serves(seat) {
                available.insert(settings.strategy, seat);
            }
        }
        let queue = self.queue_mut(&key);
        queue.settings = settings;
        queue.available = available;
    }

    /// The seat registered: an offline seat becomes available, or finishes the wrap-up it
    /// owed when it went offline.
    pub fn seat_online(&mut self, now: Mono, id: &str) {
        self.registered.insert(SeatId::from(id), true);
        let Some(seat) = self.seats.get(id).filter(|s| s.state == SeatState::Offline) else {
            return;
        };
        let next = if let Some(reason) = seat.pause_after_call {
            // Paused while offline (restored after a restart): it stays paused.
            SeatState::Paused {
                reason,
                until: None,
            }
        } else if seat.wrap_until > now {
            SeatState::WrapUp {
                until: seat.wrap_until,
            }
        } else {
            SeatState::Available
        };
        if let Some(s) = self.seats.get_mut(id) {
            s.pause_after_call = None;
            self.touched.insert(SeatId::from(id));
        }
        self.set_state(id, next, now);
        self.dispatch(now);
    }

    /// The seat's last registration is gone. A ringing offer is withdrawn (the call goes
    /// back in line) and returned; a call in progress continues and the seat goes offline
    /// when it ends.
    pub fn seat_offline(&mut self, now: Mono, id: &str) -> Option<CallId> {
        self.registered.insert(SeatId::from(id), false);
        let withdrawn = match self.state(id)? {
            SeatState::Ringing { call, .. } => {
                let call = call.clone();
                self.stop_ringing(&call, id);
                Some(call)
            }
            SeatState::Busy { .. } => return None,
            _ => None,
        };
        self.set_state(id, SeatState::Offline, now);
        self.dispatch(now);
        withdrawn
    }

    /// Forces a seat out of whatever it was doing (lost BYE, seat rebooted): an offer is
    /// withdrawn (the call goes back in line), a call is deemed ended without wrap-up, a
    /// pause is lifted. The seat ends available, or offline if unregistered. Returns the
    /// call it was ringing for or on, so the driver can tear that leg down.
    pub fn seat_reset(&mut self, now: Mono, id: &str) -> Result<Option<CallId>, AcdError> {
        let state = self
            .state(id)
            .ok_or_else(|| AcdError::UnknownSeat(id.into()))?
            .clone();
        let call = match state {
            SeatState::Ringing { call, .. } => {
                self.stop_ringing(&call, id);
                Some(call)
            }
            SeatState::Busy { call } => Some(call),
            _ => None,
        };
        if let Some(s) = self.seats.get_mut(id) {
            s.pause_after_call = None;
            self.touched.insert(SeatId::from(id));
            s.wrap_until = Mono::ZERO;
        }
        self.set_state(id, self.ready_state(id), now);
        self.dispatch(now);
        Ok(call)
    }

    /// A call enters a queue. Refused when the call is already queued, or the queue is
    /// full and the call is a new arrival (not [`CallRequest::readmitted`]).
    pub fn enqueue(
        &mut self,
        now: Mono,
        call: &str,
        request: &CallRequest,
    ) -> Result<(), AcdError> {
        self.enqueue_since(now, call, request, now)
    }

    /// When the call entered its queue (its place in line counts from then), while queued.
    pub fn queued_since(&self, call: &str) -> Option<Mono> {
        self.calls.get(call).map(|q| Mono::from_millis(q.rank.2))
    }

    /// [`Acd::enqueue`], ranked as if the call had entered at `since`: a call a
    /// supervisor moves to another queue keeps the time it waited.
    pub fn enqueue_since(
        &mut self,
        now: Mono,
        call: &str,
        request: &CallRequest,
        since: Mono,
    ) -> Result<(), AcdError> {
        if self.calls.contains_key(call) {
            return Err(AcdError::AlreadyQueued(call.into()));
        }
        let key = QueueKey {
            role: request.role.clone(),
            skill: request.skill.clone(),
        };
        let rank = priority::rank(request, since.as_millis(), self.settings.aging_step_ms);
        let queue = self.queue_mut(&key);
        if let Some(max) = queue.settings.max_waiting
            && queue.waiting.len() >= max
            && !request.readmitted
        {
            return Err(AcdError::QueueFull { queue: key, max });
        }
        queue.waiting.push(call, rank);
        self.calls
            .insert(call.to_string(), Queued { queue: key, rank });
        self.dispatch(now);
        Ok(())
    }

    /// The call left (caller hung up, overflow, forward). Returns the seats that were
    /// ringing for it, now available again.
    pub fn withdraw(&mut self, now: Mono, call: &str) -> Vec<SeatId> {
        if let Some(q) = self.calls.remove(call)
            && let Some(queue) = self.queues.get_mut(&q.queue)
        {
            queue.waiting.remove(call);
        }
        let seats: Vec<SeatId> = self.ringing.remove(call).into_iter().flatten().collect();
        for seat in &seats {
            self.set_state(seat, SeatState::Available, now);
        }
        self.dispatch(now);
        seats
    }

    /// The seat answered the call it was offered. Other seats ringing for it (ring-all)
    /// are cancelled. False if the seat was not ringing for it (a late answer).
    pub fn answered(&mut self, now: Mono, seat: &str, call: &str) -> bool {
        if !self.ringing.get(call).is_some_and(|s| s.contains(seat)) {
            return false;
        }
        let others = self.ringing.remove(call).unwrap_or_default();
        let queued = self.calls.remove(call);
        let queue_wrap = queued
            .and_then(|q| self.queues.get(&q.queue))
            .and_then(|q| q.settings.wrap_up_ms);
        let default_wrap = self.settings.wrap_up_ms;
        if let Some(s) = self.seats.get_mut(seat) {
            s.calls_taken += 1;
            s.wrap_after = s.wrap_up_ms.or(queue_wrap).unwrap_or(default_wrap);
        }
        self.set_state(seat, SeatState::Busy { call: call.into() }, now);
        for other in others.into_iter().filter(|o| o != seat) {
            self.set_state(&other, SeatState::Available, now);
            self.outputs.push_back(AcdOutput::Cancel {
                call: call.into(),
                seat: other,
            });
        }
        self.dispatch(now);
        true
    }

    /// The offer failed (refused, unreachable). The call goes back to its place in line
    /// unless other seats still ring for it.
    pub fn offer_failed(&mut self, now: Mono, seat: &str, call: &str, why: PauseReason) {
        if !self.ringing.get(call).is_some_and(|s| s.contains(seat)) {
            return;
        }
        self.stop_ringing(call, seat);
        self.after_missed_offer(now, seat, call, why);
        self.dispatch(now);
    }

    /// The offer never left the router (no contact to send it to, local transport error):
    /// the call goes back in line. The seat is not blamed (no autopause, no alert, not a
    /// miss of a burst) but is held out for one ring timeout, so that the call is not
    /// offered to it again and again in the same instant.
    pub fn offer_not_sent(&mut self, now: Mono, seat: &str, call: &str) {
        if !self.ringing.get(call).is_some_and(|s| s.contains(seat)) {
            return;
        }
        self.stop_ringing(call, seat);
        let until = Some(now.saturating_add(self.settings.ring_timeout_ms));
        let next = match self.ready_state(seat) {
            SeatState::Available => SeatState::Paused {
                reason: PauseReason::Unreachable,
                until,
            },
            offline => offline,
        };
        self.set_state(seat, next, now);
        self.dispatch(now);
    }

    /// The seat's phone rings for the call (180): it was reached, so letting the offer ring
    /// out is its own doing.
    pub fn seat_rang(&mut self, seat: &str, call: &str) {
        if self.ringing.get(call).is_some_and(|s| s.contains(seat)) {
            self.rang.insert(SeatId::from(seat));
        }
    }

    /// The seat, busy on `from`, now talks on `to` (an attended transfer moved it onto the
    /// caller's call). Its state stays busy; false if it was not busy on `from`.
    pub fn move_call(&mut self, now: Mono, seat: &str, from: &str, to: &str) -> bool {
        let busy_on_from = self
            .seats
            .get(seat)
            .is_some_and(|s| matches!(&s.state, SeatState::Busy { call } if call == from));
        if busy_on_from {
            self.set_state(seat, SeatState::Busy { call: to.into() }, now);
        }
        busy_on_from
    }

    /// A supervisor takes over `call`: the seat is busy on it from now on, whatever its
    /// state, unless it is ringing for or busy on another call (false).
    pub fn engage(&mut self, now: Mono, seat: &str, call: &str) -> bool {
        let Some(s) = self.seats.get_mut(seat) else {
            return false;
        };
        if matches!(s.state, SeatState::Ringing { .. } | SeatState::Busy { .. }) {
            return false;
        }
        s.pause_after_call = None;
        self.touched.insert(SeatId::from(seat));
        self.set_state(seat, SeatState::Busy { call: call.into() }, now);
        true
    }

    /// The seat's call ended: wrap-up, then available (or offline if it unregistered, still
    /// owing the wrap-up should it come back before its end).
    pub fn call_ended(&mut self, now: Mono, seat: &str) {
        let Some(s) = self.seats.get(seat) else {
            return;
        };
        if !matches!(s.state, SeatState::Busy { .. }) {
            return;
        }
        let until = now.saturating_add(s.wrap_after);
        let next = if !self.is_registered(seat) {
            SeatState::Offline
        } else if let Some(reason) = s.pause_after_call {
            SeatState::Paused {
                reason,
                until: None,
            }
        } else if s.wrap_after == 0 {
            SeatState::Available
        } else {
            SeatState::WrapUp { until }
        };
        if let Some(s) = self.seats.get_mut(seat) {
            // Offline, a pause asked during the call waits for the seat to come back.
            if next != SeatState::Offline {
                s.pause_after_call = None;
                self.touched.insert(SeatId::from(seat));
            }
            s.wrap_until = until;
        }
        self.set_state(seat, next, now);
        self.dispatch(now);
    }

    /// The pause a seat stands in, as the seat or a supervisor set it (kept across a
    /// restart): paused without an end, or due when its call ends or it comes back
    /// online. Autopauses end by themselves and do not count.
    pub fn standing(&self, seat: &str) -> Option<PauseReason> {
        let s = self.seats.get(seat)?;
        let paused = match s.state {
            SeatState::Paused {
                reason,
                until: None,
            } => Some(reason),
            _ => s.pause_after_call,
        };
        paused.filter(|r| !r.is_auto())
    }

    /// The seats whose state or pause due after their call changed since the last call:
    /// only theirs [`Acd::standing`] can have changed.
    pub fn take_touched_seats(&mut self) -> IdSet<SeatId> {
        std::mem::take(&mut self.touched)
    }

    /// Puts back a standing pause kept across a restart: at once, or when the seat comes
    /// online if it is not yet.
    pub fn restore_pause(&mut self, now: Mono, seat: &str, reason: PauseReason) {
        match self.state(seat) {
            Some(SeatState::Offline) => {
                if let Some(s) = self.seats.get_mut(seat) {
                    s.pause_after_call = Some(reason);
                    self.touched.insert(SeatId::from(seat));
                }
            }
            Some(_) => {
                self.pause(now, seat, reason);
            }
            None => {}
        }
    }

    /// Pauses a seat; one on a call is paused when the call ends (instead of its wrap-up).
    /// False when it cannot be paused (offline, or ringing: answer or decline first).
    pub fn pause(&mut self, now: Mono, seat: &str, reason: PauseReason) -> bool {
        match self.state(seat) {
            Some(SeatState::Available | SeatState::WrapUp { .. } | SeatState::Paused { .. }) => {
                self.set_state(
                    seat,
                    SeatState::Paused {
                        reason,
                        until: None,
                    },
                    now,
                );
                true
            }
            Some(SeatState::Busy { .. }) => {
                if let Some(s) = self.seats.get_mut(seat) {
                    s.pause_after_call = Some(reason);
                    self.touched.insert(SeatId::from(seat));
                }
                true
            }
            _ => false,
        }
    }

    /// Puts a paused seat back in distribution (or cancels a pause due after its call).
    pub fn unpause(&mut self, now: Mono, seat: &str) -> bool {
        if let Some(s) = self.seats.get_mut(seat)
            && s.pause_after_call.take().is_some()
        {
            return true;
        }
        if !matches!(self.state(seat), Some(SeatState::Paused { .. })) {
            return false;
        }
        self.set_state(seat, self.ready_state(seat), now);
        self.dispatch(now);
        true
    }

    /// Fires every deadline at or before `now`.
    pub fn handle_timeout(&mut self, now: Mono) {
        while let Some((_, seat)) = self.deadlines.pop_due(now) {
            match self.state(&seat).cloned() {
                Some(SeatState::Ringing { call, until }) if until <= now => {
                    let ring_all = self.strategy_of(&call) == Some(Strategy::RingAll);
                    self.stop_ringing(&call, &seat);
                    self.outputs.push_back(AcdOutput::OfferTimedOut {
                        call: call.clone(),
                        seat: seat.clone(),
                    });
                    if ring_all {
                        // Nobody in particular missed it: no autopause, keep idle order.
                        self.set_state(&seat, self.ready_state(&seat), now);
                    } else {
                        // A phone that never said it rang was not reached.
                        let why = if self.rang.contains(&seat) {
                            PauseReason::RingNoAnswer
                        } else {
                            PauseReason::Unreachable
                        };
                        self.after_missed_offer(now, &seat, &call, why);
                    }
                }
                Some(SeatState::Paused {
                    until: Some(until), ..
                }) if until <= now => {
                    self.set_state(&seat, self.ready_state(&seat), now);
                }
                Some(SeatState::WrapUp { until }) if until <= now => {
                    self.set_state(&seat, SeatState::Available, now);
                }
                _ => {}
            }
        }
        self.dispatch(now);
    }

    /// The next deadline, if any.
    pub fn poll_timeout(&self) -> Option<Mono> {
        self.deadlines.next()
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

    /// Whether the call is in a queue (waiting, or being offered).
    pub fn holds(&self, call: &str) -> bool {
        self.calls.contains_key(call)
    }

    /// Whether a seat could take the queued `call`, now or after its current call: one of
    /// its queue's role (and skill) that is neither offline nor paused. `None`: not queued.
    pub fn reachable(&self, call: &str) -> Option<bool> {
        Some(self.staffed(&self.calls.get(call)?.queue))
    }

    /// Whether a seat could take a call of queue `key`, now or after its current call: one
    /// of its role (and skill) that is neither offline nor paused (for any reason).
    pub fn staffed(&self, key: &QueueKey) -> bool {
        self.seats.values().any(|s| {
            s.role == key.role
                && key.skill.as_ref().is_none_or(|k| s.skills.contains(k))
                && !matches!(s.state, SeatState::Offline | SeatState::Paused { .. })
        })
    }

    /// Calls waiting (not being offered), all queues.
    pub fn waiting(&self) -> usize {
        self.queues.values().map(|q| q.waiting.len()).sum()
    }

    fn state(&self, id: &str) -> Option<&SeatState> {
        self.seats.get(id).map(|s| &s.state)
    }

    fn is_registered(&self, id: &str) -> bool {
        self.registered.get(id).copied().unwrap_or(false)
    }

    /// Where a seat goes when nothing holds it: available, or offline if unregistered.
    fn ready_state(&self, id: &str) -> SeatState {
        if self.is_registered(id) {
            SeatState::Available
        } else {
            SeatState::Offline
        }
    }

    fn strategy_of(&self, call: &str) -> Option<Strategy> {
        let q = self.calls.get(call)?;
        self.queues.get(&q.queue).map(|q| q.settings.strategy)
    }

    /// The queue, created on first use with the seats already available that serve it.
    fn queue_mut(&mut self, key: &QueueKey) -> &mut Queue {
        if !self.queues.contains_key(key) {
            let mut queue = Queue::default();
            for seat in self.seats.values() {
                if seat.state == SeatState::Available && key.serves(seat) {
                    queue.available.insert(queue.settings.strategy, seat);
                }
            }
            self.queues.insert(key.clone(), queue);
        }
        self.queues.entry(key.clone()).or_default()
    }

    /// The seat no longer rings for the call; the last seat to stop puts it back in line.
    fn stop_ringing(&mut self, call: &str, seat: &str) {
        let Some(seats) = self.ringing.get_mut(call) else {
            return;
        };
        seats.remove(seat);
        if !seats.is_empty() {
            return;
        }
        self.ringing.remove(call);
        if let Some(q) = self.calls.get(call)
            && let Some(queue) = self.queues.get_mut(&q.queue)
        {
            queue.waiting.push(call, q.rank);
        }
    }

    /// The one place a seat changes state: keeps the deadline table and the queues'
    /// available-seat indexes in step with it.
    fn set_state(&mut self, id: &str, state: SeatState, now: Mono) {
        let Some(seat) = self.seats.get_mut(id) else {
            return;
        };
        let old = std::mem::replace(&mut seat.state, state.clone());
        self.touched.insert(SeatId::from(id));
        let (from, to) = (old.label(), state.label());
        if from != to {
            seat.state_since = now;
        }
        if state == SeatState::Available && !matches!(old, SeatState::Ringing { .. }) {
            seat.idle_since = now;
        }
        if matches!(old, SeatState::Ringing { .. }) {
            self.rang.remove(id);
        }
        if let Some(at) = deadline(&old) {
            self.deadlines.remove(at, id);
        }
        if let Some(at) = deadline(&state) {
            self.deadlines.insert(at, id);
        }
        if old == SeatState::Available {
            self.unindex(id);
        }
        if state == SeatState::Available {
            self.index(id);
        }
        if from != to {
            self.outputs.push_back(AcdOutput::SeatChanged {
                seat: SeatId::from(id),
                from,
                to,
            });
        }
    }

    fn index(&mut self, id: &str) {
        let Some(seat) = self.seats.get(id) else {
            return;
        };
        for (key, queue) in self.queues.iter_mut() {
            if key.serves(seat) {
                queue.available.insert(queue.settings.strategy, seat);
            }
        }
    }

    fn unindex(&mut self, id: &str) {
        for queue in self.queues.values_mut() {
            queue.available.remove(id);
        }
    }

    /// Offers waiting calls while some queue has both a call and a free seat. Among such
    /// queues the best-ranked head call goes first, so a seat shared by a role queue and a
    /// skill queue takes the most urgent call of the two.
    fn dispatch(&mut self, now: Mono) {
        loop {
            let best = self
                .queues
                .iter()
                .filter(|(_, q)| !q.available.is_empty())
                .filter_map(|(key, q)| q.waiting.peek().map(|rank| (rank, key)))
                .min()
                .map(|(_, key)| key.clone());
            let Some(key) = best else {
                return;
            };
            self.offer_next(now, &key);
        }
    }

    fn offer_next(&mut self, now: Mono, key: &QueueKey) {
        let Some(queue) = self.queues.get_mut(key) else {
            return;
        };
        let seats = match queue.settings.strategy {
            Strategy::RingAll => queue.available.all(),
            _ => queue.available.first().cloned().into_iter().collect(),
        };
        if seats.is_empty() {
            return;
        }
        let Some(call) = queue.waiting.pop() else {
            return;
        };
        let until = now.saturating_add(self.settings.ring_timeout_ms);
        for seat in seats {
            self.offers_made += 1;
            if let Some(s) = self.seats.get_mut(&seat) {
                s.last_offer = self.offers_made;
            }
            let state = SeatState::Ringing {
                call: CallId::from(call.clone()),
                until,
            };
            self.set_state(&seat, state, now);
            self.ringing
                .entry(call.clone())
                .or_default()
                .insert(seat.clone());
            self.outputs.push_back(AcdOutput::Offer {
                call: CallId::from(call.clone()),
                seat,
            });
        }
    }
}

fn deadline(state: &SeatState) -> Option<Mono> {
    match state {
        SeatState::Ringing { until, .. } | SeatState::WrapUp { until } => Some(*until),
        SeatState::Paused { until, .. } => *until,
        _ => None,
    }
}

#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;
