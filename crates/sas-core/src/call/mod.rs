//! B2BUA call logic: the trunk leg, the offers to seats and the bridge, as a sans-IO
//! state machine ([`Switchboard`]).
//!
//! The SIP driver turns what happens on the wire into [`CallInput`]s and carries out the
//! [`CallOutput`]s (ring a seat, bridge, hang up, store the record). The switchboard owns
//! the [`Acd`] and the call records; it never reads the clock: every input comes with `now`.

use crate::acd::{
    Acd, AcdError, AcdOutput, AcdSettings, CallRequest, PauseReason, QueueKey, QueueSettings,
    SeatState, Urgency,
};
use crate::id_map::IdSet;
pub use crate::ids::{CallId, SeatId};
use crate::record::{CallRecord, EndReason, EventKind, Handler, OfferRecord, OfferResult, Outcome};
use crate::time::{EpochMillis, Mono, Now};
use live::LiveCalls;
use std::collections::VecDeque;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// In the dial plan or a queue; the caller hears the router.
    Waiting,
    /// Dialling out through the trunk.
    Forwarding,
    Bridged {
        seat: Party,
    },
    /// Accompanied transfer: `seat` stays with the caller while the call is offered to
    /// the target (queued, or dialled out).
    Accompanying {
        seat: SeatId,
    },
    /// The target answered an accompanied transfer: three-way until one of the two seats
    /// leaves.
    Conference {
        seat: SeatId,
        joined: Party,
    },
}

impl Phase {
    /// The call may be queued (or forwarded) in this phase.
    fn seeks_seat(&self) -> bool {
        matches!(self, Phase::Waiting | Phase::Accompanying { .. })
    }

    /// Seats on the call.
    fn seats(&self) -> Vec<Party> {
        match self {
            Phase::Waiting | Phase::Forwarding => vec![],
            Phase::Bridged { seat } => vec![seat.clone()],
            Phase::Accompanying { seat } => vec![Party::Seat(seat.clone())],
            Phase::Conference { seat, joined } => vec![Party::Seat(seat.clone()), joined.clone()],
        }
    }
}

#[derive(Debug)]
struct Call {
    phase: Phase,
    record: CallRecord,
    /// Hub Santé urgency, from a transfer or the call file; applies to its next queue.
    urgency: Urgency,
    /// The bridged seat put the caller on hold (its phone, its console).
    held: bool,
    /// A forward failed: the call comes back to its queue, whatever its size.
    readmit: bool,
    /// An external number is being dialled for it (a forward, maybe accompanied).
    dialling: bool,
    /// When the call entered its current queue (a transfer queues it again), for display.
    queued_since: Option<EpochMillis>,
    /// When it arrived and was first answered, on the monotonic clock: the record's
    /// durations (wait, talk, misdial) do not change when the wall clock steps.
    arrived: Mono,
    answered: Option<Mono>,
}

impl Call {
    /// See [`Switchboard::waiting_since`].
    fn waiting_since(&self) -> Option<EpochMillis> {
        self.phase
            .seeks_seat()
            .then_some(self.queued_since)
            .flatten()
    }
}

/// Settings of the call logic.
#[derive(Debug, Clone, Copy)]
pub struct SwitchboardSettings {
    /// Queue timing.
    pub acd: AcdSettings,
    /// Abandons shorter than this are misdials.
    pub misdial_threshold_ms: EpochMillis,
}

/// The calls started, changed or ended and the seats whose state or pause due after their
/// call changed, since the driver last asked ([`Switchboard::take_changed`]): what the call
/// journal looks at after an event instead of every call and seat. Every mutable access
/// counts, so it may name things that did not change.
#[derive(Debug, Default)]
pub struct Changed {
    pub calls: IdSet<String>,
    pub seats: IdSet<SeatId>,
}

/// All live calls and the ACD.
#[derive(Debug)]
pub struct Switchboard {
    settings: SwitchboardSettings,
    acd: Acd,
    calls: LiveCalls,
    outputs: VecDeque<CallOutput>,
}

impl Switchboard {
    /// A switchboard with the given seats `(username, role)`, all offline.
    pub fn new(settings: SwitchboardSettings, seats: &[(String, String)], now: Now) -> Self {
        let mut acd = Acd::new(settings.acd);
        for (id, role) in seats {
            acd.add_seat(id, role, now.mono);
        }
        Self {
            settings,
            acd,
            calls: LiveCalls::default(),
            outputs: VecDeque::new(),
        }
    }

    /// Feeds one input.
    pub fn handle(&mut self, now: Now, input: CallInput) {
        match input {
            CallInput::Arrived {
                call,
                sip_call_id,
                line,
                called,
                caller,
            } => {
                let record = CallRecord::new(
                    call.to_string(),
                    sip_call_id,
                    line,
                    called,
                    caller,
                    now.wall,
                );
                self.calls.insert(
                    call.to_string(),
                    Call {
                        phase: Phase::Waiting,
                        record,
                        urgency: Urgency::Nr,
                        held: false,
                        readmit: false,
                        dialling: false,
                        queued_since: None,
                        arrived: now.mono,
                        answered: None,
                    },
                );
            }
            CallInput::CallerAnswered { call } => {
                if let Some(c) = self.calls.get_mut(call.as_str())
                    && c.record.caller_answered_at.is_none()
                {
                    c.record.caller_answered_at = Some(now.wall);
                    c.record.event(now.wall, EventKind::Answer, None, None);
                }
            }
            CallInput::Enqueue {
                call,
                queue,
                role,
                priority,
            } => {
                self.enqueue(now, &call, &queue, &CallRequest::new(&role, priority));
            }
            CallInput::Overflow { call } => {
                if self
                    .calls
                    .get(call.as_str())
                    .is_some_and(|c| c.phase.seeks_seat())
                {
                    self.withdraw_offer(now, &call);
                    self.event(now, &call, EventKind::Overflow, None, None);
                }
            }
            CallInput::Note { call, kind, detail } => {
                self.event(now, &call, kind, None, Some(detail));
            }
            CallInput::Forward { call, number } => {
                if self
                    .calls
                    .get(call.as_str())
                    .is_some_and(|c| c.phase.seeks_seat())
                {
                    self.withdraw_offer(now, &call);
                    self.event(now, &call, EventKind::Forward, None, Some(number.clone()));
                    // Accompanied: the seat stays with the caller while the number rings.
                    if let Some(c) = self.calls.get_mut(call.as_str()) {
                        c.dialling = true;
                        if c.phase == Phase::Waiting {
                            c.phase = Phase::Forwarding;
                        }
                    }
                    self.outputs.push_back(CallOutput::Dial { call, number });
                }
            }
            CallInput::ExternalAnswered { call } => {
                self.external_answered(now, &call);
            }
            CallInput::ExternalFailed { call, status } => {
                if let Some(c) = self.calls.get_mut(call.as_str())
                    && matches!(c.phase, Phase::Forwarding | Phase::Accompanying { .. })
                {
                    if c.phase == Phase::Forwarding {
                        c.phase = Phase::Waiting;
                    }
                    c.readmit = true;
                    c.dialling = false;
                    let detail = status.map_or_else(|| "unreachable".into(), |s| s.to_string());
                    c.record
                        .event(now.wall, EventKind::ForwardFailed, None, Some(detail));
                }
            }
            CallInput::QueueFull { call } => {
                if self
                    .calls
                    .get(call.as_str())
                    .is_some_and(|c| c.phase == Phase::Waiting)
                {
                    self.withdraw_offer(now, &call);
                    self.release_caller(&call, 486);
                    self.finish(now, &call, Outcome::QueueFull, EndReason::QueueFull);
                }
            }
            CallInput::Released { call, reason } => {
                if self
                    .calls
                    .get(call.as_str())
                    .is_some_and(|c| c.phase == Phase::Waiting)
                {
                    self.withdraw_offer(now, &call);
                    // Closed: 480 Temporarily Unavailable if it was never answered.
                    self.release_caller(&call, 480);
                    self.finish(now, &call, Outcome::Closed, reason.into());
                }
            }
            CallInput::Digit { call, digit } => {
                if let Some(c) = self.calls.get_mut(call.as_str()) {
                    let detail = format!("{} {}", digit.digit, digit.source.label());
                    c.record
                        .event(digit.at, EventKind::Dtmf, None, Some(detail));
                    c.record.dtmf.push(digit);
                }
            }
            CallInput::CallerGone { call } => self.caller_gone(now, &call),
            CallInput::CallerLost { call, detail } => self.caller_lost(now, &call, detail),
            CallInput::SeatRinging { call, seat } => {
                self.acd.seat_rang(&seat, &call);
                if let Some(c) = self.calls.get_mut(call.as_str()) {
                    c.record
                        .event(now.wall, EventKind::Ringing, Some(&seat), None);
                }
            }
            CallInput::OfferNotSent { call, seat } => {
                if self.close_offer(now, &call, &seat, OfferResult::Unreachable, None) {
                    let detail = Some("not sent".to_string());
                    self.event(now, &call, EventKind::Unreachable, Some(&seat), detail);
                    self.acd.offer_not_sent(now.mono, &seat, &call);
                }
            }
            CallInput::SeatAnswered { call, seat } => self.seat_answered(now, &call, &seat),
            CallInput::SeatFailed { call, seat, status } => {
                let (result, why) = match status {
                    // A timeout or an overloaded hop answering for the phone: not the
                    // seat's refusal (the burst rule applies, see `acd::autopause`).
                    Some(408 | 503) => (OfferResult::Rejected, PauseReason::Unreachable),
                    Some(_) => (OfferResult::Rejected, PauseReason::Rejected),
                    None => (OfferResult::Unreachable, PauseReason::Unreachable),
                };
                if self.close_offer(now, &call, &seat, result, status) {
                    let kind = if status.is_some() {
                        EventKind::Rejected
                    } else {
                        EventKind::Unreachable
                    };
                    self.event(now, &call, kind, Some(&seat), status.map(|s| s.to_string()));
                    self.acd.offer_failed(now.mono, &seat, &call, why);
                }
            }
            CallInput::SeatGone { call, seat } => self.seat_left(now, &call, &seat.into(), None),
            CallInput::ExternalGone { call } => self.seat_left(now, &call, &Party::External, None),
            CallInput::SeatLost { call, seat } => self.seat_lost(now, &call, &seat),
            CallInput::Failed { call, reason } => self.fail(now, &call, &reason),
            CallInput::SeatOnline { seat } => self.acd.seat_online(now.mono, &seat),
            CallInput::SeatOffline { seat } => {
                if let Some(call) = self.acd.seat_offline(now.mono, &seat) {
                    self.close_offer(now, &call, &seat, OfferResult::Unreachable, None);
                    self.event(
                        now,
                        &call,
                        EventKind::Unreachable,
                        Some(&seat),
                        Some("unregistered".into()),
                    );
                    self.outputs.push_back(CallOutput::CancelSeat {
                        call,
                        seat: seat.into(),
                    });
                }
            }
        }
        self.drain_acd(now);
    }

    /// Puts a waiting call in a queue with a full request (skill, Hub Santé urgency): what
    /// [`CallInput::Enqueue`] does with an unrated request. `queue` names it in the record.
    /// False when the queue refused it (full), which is recorded: the driver must then
    /// follow the dial plan step's overflow at once, or end the call
    /// ([`CallInput::QueueFull`]). A call a seat already answered, or whose forward failed,
    /// is never refused.
    pub fn enqueue(&mut self, now: Now, call: &str, queue: &str, request: &CallRequest) -> bool {
        let Some(c) = self.calls.get_mut(call).filter(|c| c.phase.seeks_seat()) else {
            return true;
        };
        // The more urgent of the plan's and the call's own (transfer, call file).
        let mut request = request.clone().with_urgency(request.urgency.min(c.urgency));
        if c.readmit || c.record.answered_at.is_some() {
            request = request.readmitted();
        }
        let request = &request;
        c.record.queued_at.get_or_insert(now.wall);
        c.queued_since = Some(now.wall);
        c.record.queue = Some(queue.to_string());
        let mut detail = format!("{queue} priority {}", request.line_priority);
        if request.urgency != Urgency::Nr {
            detail.push_str(&format!(" urgency {}", request.urgency.label()));
        }
        c.record.enter_queue(now.wall, queue, detail);
        let refused = self.acd.enqueue(now.mono, call, request).err();
        if let Some(e) = &refused {
            self.queue_refused(now, call, e);
        }
        self.drain_acd(now);
        !matches!(refused, Some(AcdError::QueueFull { .. }))
    }

    /// The ACD refused the call its queue: the timeline says why.
    fn queue_refused(&mut self, now: Now, call: &str, e: &AcdError) {
        self.event(
            now,
            call,
            EventKind::QueueRefused,
            None,
            Some(e.to_string()),
        );
    }

    /// Configures a queue's strategy, wrap-up and size.
    pub fn set_queue(&mut self, key: QueueKey, settings: QueueSettings) {
        self.acd.set_queue(key, settings);
    }

    /// Sets a seat's skills and own wrap-up.
    pub fn configure_seat(
        &mut self,
        now: Now,
        seat: &str,
        skills: &[&str],
        wrap_up_ms: Option<EpochMillis>,
    ) -> Result<(), AcdError> {
        self.acd.set_seat_wrap_up(seat, wrap_up_ms)?;
        self.acd.set_skills(now.mono, seat, skills)?;
        self.drain_acd(now);
        Ok(())
    }

    /// Forces a seat back to a clean state when its signalling was lost (BYE lost, phone
    /// rebooted): a ringing offer is cancelled (the call goes back in line); a call in
    /// progress is hung up on both sides and ended; a pause is lifted.
    pub fn seat_reset(&mut self, now: Now, seat: &str) -> Result<(), AcdError> {
        let was = self.acd.seat(seat).map(|s| s.state.clone());
        let call = self.acd.seat_reset(now.mono, seat)?;
        match (was, call) {
            (Some(SeatState::Ringing { .. }), Some(call)) => {
                self.close_offer(now, &call, seat, OfferResult::Withdrawn, None);
                self.event(now, &call, EventKind::SeatReset, Some(seat), None);
                self.outputs.push_back(CallOutput::CancelSeat {
                    call,
                    seat: seat.into(),
                });
            }
            (Some(SeatState::Busy { .. }), Some(call)) => {
                self.event(now, &call, EventKind::SeatReset, Some(seat), None);
                self.seat_left(now, &call, &seat.into(), Some("seat_reset"));
            }
            _ => {}
        }
        self.drain_acd(now);
        Ok(())
    }

    /// Fires the ACD deadlines due at `now`.
    pub fn handle_timeout(&mut self, now: Now) {
        self.acd.handle_timeout(now.mono);
        self.drain_acd(now);
    }

    /// When [`Switchboard::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Mono> {
        self.acd.poll_timeout()
    }

    /// The next action.
    pub fn poll_output(&mut self) -> Option<CallOutput> {
        self.outputs.pop_front()
    }

    /// The ACD, read-only (metrics, listings).
    pub fn acd(&self) -> &Acd {
        &self.acd
    }

    /// The calls and seats touched since the last call (the call journal's dirty sets).
    pub fn take_changed(&mut self) -> Changed {
        Changed {
            calls: self.calls.take_changed(),
            seats: self.acd.take_touched_seats(),
        }
    }

    /// Live calls.
    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    /// Calls in a queue (waiting, or ringing a seat), by dial plan queue name.
    pub fn queue_depths(&self) -> std::collections::BTreeMap<&str, usize> {
        let mut depths = std::collections::BTreeMap::new();
        for call in self.queued() {
            *depths.entry(call.queue).or_insert(0) += 1;
        }
        depths
    }

    /// A live call's record.
    pub fn record(&self, call: &str) -> Option<&CallRecord> {
        self.calls.get(call).map(|c| &c.record)
    }

    /// Puts back a seat's standing pause after a restart (see [`Acd::restore_pause`]).
    pub fn restore_pause(&mut self, now: Now, seat: &str, reason: PauseReason) {
        self.acd.restore_pause(now.mono, seat, reason);
        self.drain_acd(now);
    }

    /// Since when the call has waited in its current queue, while it waits for a seat
    /// (queued or ringing, a seat accompanying it or not). `None` once a seat (or the
    /// external number) took it, or before it was queued.
    pub fn waiting_since(&self, call: &str) -> Option<EpochMillis> {
        self.calls.get(call)?.waiting_since()
    }

    /// Live calls waiting for a seat (see [`Switchboard::waiting_since`]); asked after every
    /// event, it looks at the calls changed since the last [`Switchboard::take_changed`].
    pub fn calls_waiting(&self) -> usize {
        self.calls.waiting()
    }

    /// The call is being dialled out through the trunk (a dial plan forward).
    pub fn forwarding(&self, call: &str) -> bool {
        self.calls
            .get(call)
            .is_some_and(|c| c.phase == Phase::Forwarding)
    }

    /// Who is on the call now (seats talking or accompanying it; [`Party::External`] for
    /// a forwarded call's far end).
    pub fn seats_on(&self, call: &str) -> Vec<Party> {
        self.calls
            .get(call)
            .map(|c| c.phase.seats())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod clock_step;
mod live;
pub mod liveness;
pub mod router;
#[cfg(test)]
mod sim;
mod supervise;
#[cfg(test)]
mod tests;
#[cfg(any(test, feature = "testutil"))]
pub mod tests_support;
pub use supervise::SuperviseError;
mod transfer;
pub use transfer::TransferError;
mod party;
pub use party::Party;
mod queued;
pub use queued::QueuedCall;
mod io;
pub use io::{CallInput, CallOutput};
mod transitions;
