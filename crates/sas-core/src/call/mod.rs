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
use crate::media::dtmf::DigitEvent;
use crate::pii::CallerNumber;
use crate::record::{CallRecord, EndReason, EventKind, Handler, OfferRecord, OfferResult, Outcome};
use crate::time::{EpochMillis, Mono, Now};
use live::LiveCalls;
use std::collections::VecDeque;

/// Something that happened to a call or a seat.
#[derive(Debug, Clone)]
pub enum CallInput {
    /// A trunk INVITE was admitted for an entry line.
    Arrived {
        /// Router call id (the driver makes it unique).
        call: CallId,
        /// SIP Call-ID of the trunk leg.
        sip_call_id: String,
        /// Line label (from the dial plan entry).
        line: String,
        /// Normalised called number.
        called: String,
        /// Caller.
        caller: CallerNumber,
    },
    /// The router answered the caller (a prompt is about to play).
    CallerAnswered {
        /// The call.
        call: CallId,
    },
    /// The dial plan queues the call.
    Enqueue {
        /// The call.
        call: CallId,
        /// Queue name (for the record).
        queue: String,
        /// Role of the seats that answer it.
        role: String,
        /// Lower is served first.
        priority: u8,
    },
    /// No seat answered within the queue's limit: the call leaves the queue and the dial
    /// plan goes on (overflow).
    Overflow {
        /// The call.
        call: CallId,
    },
    /// Something worth a line on the call's timeline.
    Note {
        /// The call.
        call: CallId,
        /// Event kind.
        kind: EventKind,
        /// Detail.
        detail: String,
    },
    /// The dial plan forwards the call through the trunk to an allowed external number.
    Forward {
        /// The call.
        call: CallId,
        /// The number dialled.
        number: String,
    },
    /// A full queue refused the call and its dial plan step has no overflow: the caller
    /// is refused busy (486, or BYE if answered), the record says `queue_full`.
    QueueFull {
        /// The call.
        call: CallId,
    },
    /// The dial plan ended the call (closed service).
    Released {
        /// The call.
        call: CallId,
        /// Why, for the record.
        reason: String,
    },
    /// The caller pressed a key (RFC 4733, SIP INFO or in-band).
    Digit {
        /// The call.
        call: CallId,
        /// The key, when and how.
        digit: DigitEvent,
    },
    /// The caller sent CANCEL (before answer) or BYE (after).
    CallerGone {
        /// The call.
        call: CallId,
    },
    /// The caller vanished without BYE: silent, and its dialog no longer answers (see
    /// [`liveness`]). The call ends `caller_lost`.
    CallerLost {
        /// The call.
        call: CallId,
        /// What was seen, for the record.
        detail: String,
    },
    /// The seat being offered the call answered 180.
    SeatRinging {
        /// The call.
        call: CallId,
        /// The seat.
        seat: SeatId,
    },
    /// The seat answered 200.
    SeatAnswered {
        /// The call.
        call: CallId,
        /// The seat.
        seat: SeatId,
    },
    /// The offer failed: a final error response, or no response / transport failure.
    SeatFailed {
        /// The call.
        call: CallId,
        /// The seat.
        seat: SeatId,
        /// The SIP status, `None` when the seat could not be reached.
        status: Option<u16>,
    },
    /// The external party of a forwarded call hung up.
    ExternalGone {
        /// The call.
        call: CallId,
    },
    /// The external number dialled for the call ([`CallOutput::Dial`]) answered.
    ExternalAnswered {
        /// The call.
        call: CallId,
    },
    /// Dialling the external number failed (`status` `None`: no answer at all).
    ExternalFailed {
        /// The call.
        call: CallId,
        /// The SIP status.
        status: Option<u16>,
    },
    /// The offer never left the router (no contact to send it to, local transport
    /// error): the call goes back in line and the seat is not blamed.
    OfferNotSent {
        /// The call.
        call: CallId,
        /// The seat.
        seat: SeatId,
    },
    /// The seat sent BYE on a bridged call.
    SeatGone {
        /// The call.
        call: CallId,
        /// The seat.
        seat: SeatId,
    },
    /// The seat's media died mid-call (its browser's WebRTC connection failed): it did not
    /// hang up, so the caller is not hung up either but waits again.
    SeatLost {
        /// The call.
        call: CallId,
        /// The seat.
        seat: SeatId,
    },
    /// The router could not go on with the call (media failure, SIP error).
    Failed {
        /// The call.
        call: CallId,
        /// Why, for the record.
        reason: String,
    },
    /// A seat registered.
    SeatOnline {
        /// The seat.
        seat: SeatId,
    },
    /// A seat's last registration expired or was removed.
    SeatOffline {
        /// The seat.
        seat: SeatId,
    },
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum CallOutput {
    /// Send an INVITE for the call to the seat.
    RingSeat {
        /// The call.
        call: CallId,
        /// The seat.
        seat: SeatId,
    },
    /// Dial the external number through the trunk, on the seat leg; its outcome comes
    /// back as [`CallInput::ExternalAnswered`] or [`CallInput::ExternalFailed`].
    Dial {
        /// The call.
        call: CallId,
        /// The number.
        number: String,
    },
    /// Withdraw the offer (CANCEL the seat's INVITE).
    CancelSeat {
        /// The call.
        call: CallId,
        /// The seat, or the external number being dialled.
        seat: Party,
    },
    /// Connect the caller to the seat that answered (answering the trunk leg if not yet).
    Bridge {
        /// The call.
        call: CallId,
        /// The seat, or the external number that answered.
        seat: Party,
    },
    /// Send BYE to the caller.
    HangUpCaller {
        /// The call.
        call: CallId,
    },
    /// Send BYE to the seat.
    HangUpSeat {
        /// The call.
        call: CallId,
        /// The seat, or the external party.
        seat: Party,
    },
    /// Reject the caller's INVITE (not answered yet) with this status.
    RejectCaller {
        /// The call.
        call: CallId,
        /// SIP status.
        status: u16,
    },
    /// The call is over: persist its record.
    Finished(Box<CallRecord>),
    /// Caller, the seat that transferred and the one that answered talk together (the
    /// accompanied transfer's three-way call).
    Conference {
        /// The call.
        call: CallId,
    },
    /// The caller is waiting again (the seat left an accompanied transfer before the
    /// target answered): play the queue's hold audio.
    Hold {
        /// The call.
        call: CallId,
    },
    /// The seat talking with the caller was lost ([`CallInput::SeatLost`]): queue the call
    /// again where it last waited, with its hold audio.
    Requeue {
        /// The call.
        call: CallId,
    },
    /// The seat that put the caller on hold ([`Switchboard::hold`]) takes it back: the
    /// caller hears the seat again instead of the hold audio (a [`CallOutput::Hold`]).
    Resume {
        /// The call.
        call: CallId,
        /// The seat.
        seat: SeatId,
    },
    /// A seat left a call that goes on without it (three-way, accompanied transfer). For
    /// the consoles and the seat's history; its leg is already being hung up.
    SeatLeft {
        /// The call.
        call: CallId,
        /// The seat (or the external party of a three-way call).
        seat: Party,
    },
    /// A P0 caller lost the seat accompanying it before the target answered (the seat
    /// hung up, or its leg dropped): it waits on hold, and the supervisors must know. With
    /// `reachable` false no seat of the target queue is logged in and in distribution: the
    /// driver applies the dial plan's overflow at once instead of waiting for nobody.
    Unaccompanied {
        /// The call.
        call: CallId,
        /// The seat that left.
        seat: SeatId,
        /// Some seat of the queue could still answer.
        reachable: bool,
    },
    /// A seat changed state.
    SeatChanged {
        /// The seat.
        seat: SeatId,
        /// Old state label.
        from: &'static str,
        /// New state label.
        to: &'static str,
    },
    /// The ACD paused a seat that missed an offer (supervisors are alerted).
    SeatAutopaused {
        /// The seat.
        seat: SeatId,
        /// Why (`ring_no_answer`, `rejected`, `unreachable`).
        reason: PauseReason,
        /// When it is back by itself, if it is (wall time, for display).
        until: Option<EpochMillis>,
    },
    /// Several seats missed offers at once: none was paused for it (supervisors are
    /// alerted: overload or network trouble).
    MissBurst {
        /// The seats.
        seats: Vec<SeatId>,
    },
}

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
            self.event(
                now,
                call,
                EventKind::QueueRefused,
                None,
                Some(e.to_string()),
            );
        }
        self.drain_acd(now);
        !matches!(refused, Some(AcdError::QueueFull { .. }))
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
        let c = self.calls.get(call)?;
        c.phase.seeks_seat().then_some(c.queued_since).flatten()
    }

    /// Live calls waiting for a seat (see [`Switchboard::waiting_since`]).
    pub fn calls_waiting(&self) -> usize {
        self.calls
            .keys()
            .filter(|c| self.waiting_since(c).is_some())
            .count()
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

    fn caller_gone(&mut self, now: Now, call: &str) {
        let Some((phase, arrived)) = self.calls.get(call).map(|c| (c.phase.clone(), c.arrived))
        else {
            return;
        };
        match phase {
            Phase::Waiting | Phase::Forwarding => {
                if phase == Phase::Forwarding {
                    self.outputs.push_back(CallOutput::CancelSeat {
                        call: call.into(),
                        seat: Party::External,
                    });
                }
                self.withdraw_offer(now, call);
                let waited = now.mono.saturating_sub(arrived);
                // A caller a seat already talked with (waiting after a transfer) did not
                // misdial, however short the call.
                let handled = self
                    .calls
                    .get(call)
                    .is_some_and(|c| c.record.answered_at.is_some());
                // A caller a seat answered was answered, whatever became of the call
                // after (requeued after a lost seat, waiting for a regulator).
                let outcome = if handled {
                    Outcome::Answered
                } else if waited < self.settings.misdial_threshold_ms {
                    Outcome::Misdial
                } else {
                    Outcome::Abandoned
                };
                self.event(
                    now,
                    call,
                    EventKind::Abandon,
                    None,
                    Some(format!("waited {waited} ms")),
                );
                // Answered by the router (a prompt, hold audio): the caller sent BYE.
                let how = match self
                    .calls
                    .get(call)
                    .and_then(|c| c.record.caller_answered_at)
                {
                    Some(_) => EndReason::CallerBye,
                    None => EndReason::CallerCancel,
                };
                self.finish(now, call, outcome, how);
            }
            Phase::Bridged { .. } | Phase::Accompanying { .. } | Phase::Conference { .. } => {
                // An accompanied transfer still ringing: the target hears nothing more.
                self.withdraw_offer(now, call);
                if matches!(phase, Phase::Accompanying { .. }) {
                    self.outputs.push_back(CallOutput::CancelSeat {
                        call: call.into(),
                        seat: Party::External,
                    });
                }
                let seats = phase.seats();
                for seat in &seats {
                    self.release_seat(now, call, seat.clone());
                }
                let outcome = match seats.last() {
                    Some(Party::External) => Outcome::Forwarded,
                    _ => Outcome::Answered,
                };
                self.finish(now, call, outcome, EndReason::CallerBye);
            }
        }
    }

    /// The external number answered a forwarded call: bridge it like a seat.
    fn external_answered(&mut self, now: Now, call: &str) {
        let Some(c) = self
            .calls
            .get_mut(call)
            .filter(|c| matches!(c.phase, Phase::Forwarding | Phase::Accompanying { .. }))
        else {
            // Too late (the caller left): hang the external party up.
            self.outputs.push_back(CallOutput::HangUpSeat {
                call: call.into(),
                seat: Party::External,
            });
            return;
        };
        c.dialling = false;
        c.record.answered_at.get_or_insert(now.wall);
        c.answered.get_or_insert(now.mono);
        c.record
            .wait_ms
            .get_or_insert(now.mono.saturating_sub(c.arrived));
        self.connected(now, call, Party::External);
    }

    /// A seat (or the external party) answered a call that sought one: bridge it, or make
    /// it the third party of an accompanied transfer.
    fn connected(&mut self, now: Now, call: &str, party: Party) {
        let role = match &party {
            Party::External => Party::EXTERNAL_NAME.to_string(),
            Party::Seat(seat) => self
                .acd
                .seat(seat)
                .map(|s| s.role.clone())
                .unwrap_or_default(),
        };
        let Some(c) = self.calls.get_mut(call) else {
            return;
        };
        c.record
            .event(now.wall, EventKind::Connect, Some(party.name()), None);
        c.record.handlers.push(Handler {
            seat: party.name().to_string(),
            role,
            from: now.wall,
            until: None,
            left: None,
        });
        c.dialling = false;
        let out = match std::mem::replace(&mut c.phase, Phase::Waiting) {
            Phase::Accompanying { seat: with } => {
                c.phase = Phase::Conference {
                    seat: with,
                    joined: party,
                };
                CallOutput::Conference { call: call.into() }
            }
            _ => {
                c.phase = Phase::Bridged {
                    seat: party.clone(),
                };
                c.held = false;
                CallOutput::Bridge {
                    call: call.into(),
                    seat: party,
                }
            }
        };
        self.outputs.push_back(out);
    }

    /// Ends the caller's leg: BYE once answered (by a seat or the router), else a final
    /// response to its INVITE.
    fn release_caller(&mut self, call: &str, status: u16) {
        let answered = self.calls.get(call).is_some_and(|c| {
            c.record.caller_answered_at.is_some() || c.record.answered_at.is_some()
        });
        let out = if answered {
            CallOutput::HangUpCaller { call: call.into() }
        } else {
            CallOutput::RejectCaller {
                call: call.into(),
                status,
            }
        };
        self.outputs.push_back(out);
    }

    fn seat_answered(&mut self, now: Now, call: &str, seat: &str) {
        let live = matches!(self.calls.get(call), Some(c) if c.phase.seeks_seat());
        if !live || !self.acd.answered(now.mono, seat, call) {
            // A late 200 (the offer was withdrawn or the caller left): hang it up.
            self.outputs.push_back(CallOutput::HangUpSeat {
                call: call.into(),
                seat: seat.into(),
            });
            return;
        }
        self.close_offer(now, call, seat, OfferResult::Answered, None);
        if let Some(c) = self.calls.get_mut(call) {
            // The first answer ends the wait; later ones (transfers) are in `handlers`.
            c.record.answered_at.get_or_insert(now.wall);
            c.answered.get_or_insert(now.mono);
            c.record.seat.get_or_insert_with(|| seat.into());
            c.record
                .wait_ms
                .get_or_insert(now.mono.saturating_sub(c.arrived));
        }
        self.connected(now, call, seat.into());
    }

    fn fail(&mut self, now: Now, call: &str, reason: &str) {
        let Some(phase) = self.calls.get(call).map(|c| c.phase.clone()) else {
            return;
        };
        match phase {
            Phase::Waiting | Phase::Forwarding => {
                if phase == Phase::Forwarding {
                    self.outputs.push_back(CallOutput::CancelSeat {
                        call: call.into(),
                        seat: Party::External,
                    });
                }
                self.withdraw_offer(now, call);
                self.release_caller(call, 500);
            }
            Phase::Bridged { .. } | Phase::Accompanying { .. } | Phase::Conference { .. } => {
                self.withdraw_offer(now, call);
                for seat in phase.seats() {
                    self.release_seat(now, call, seat);
                }
                self.outputs
                    .push_back(CallOutput::HangUpCaller { call: call.into() });
            }
        }
        self.event(now, call, EventKind::Failed, None, Some(reason.into()));
        self.finish(now, call, Outcome::Failed, reason.into());
    }

    /// Withdraws the offer ringing for a waiting call, if any.
    /// Takes the call out of its queue, cancelling its offers: whether any was ringing.
    fn withdraw_offer(&mut self, now: Now, call: &str) -> bool {
        let seats = self.acd.withdraw(now.mono, call);
        let rang = !seats.is_empty();
        for seat in seats {
            self.close_offer(now, call, &seat, OfferResult::Withdrawn, None);
            self.outputs.push_back(CallOutput::CancelSeat {
                call: call.into(),
                seat: seat.into(),
            });
        }
        rang
    }

    /// Hangs up the seat of a bridged call and starts its wrap-up.
    fn release_seat(&mut self, now: Now, call: &str, seat: Party) {
        if let Party::Seat(seat) = &seat {
            self.acd.call_ended(now.mono, seat);
        }
        self.outputs.push_back(CallOutput::HangUpSeat {
            call: call.into(),
            seat,
        });
    }

    /// Belt and braces as `call` ends: a seat still offered it or busy with it would never
    /// be offered another call (seen under overload: all seats busy for minutes). Every
    /// ending path releases its seats first; one that did not is logged and its seats are
    /// freed here. Only the call's own seats are looked at (its handlers and offers).
    fn free_seats_left(&mut self, now: Now, call: &str) {
        let Some(c) = self.calls.get(call) else {
            return;
        };
        let busy_with_it = |acd: &Acd, seat: &str| {
            matches!(acd.seat(seat).map(|s| &s.state),
                Some(SeatState::Busy { call: on }) if on.as_str() == call)
        };
        let left: Vec<String> = (c.record.handlers.iter())
            .map(|h| h.seat.clone())
            .filter(|seat| busy_with_it(&self.acd, seat))
            .collect();
        if self.withdraw_offer(now, call) || !left.is_empty() {
            tracing::error!(%call, seats = ?left, "call ended with seats still held: freed");
        }
        for seat in left {
            self.release_seat(now, call, Party::Seat(seat.into()));
        }
    }

    fn drain_acd(&mut self, now: Now) {
        while let Some(out) = self.acd.poll_output() {
            match out {
                AcdOutput::Offer { call, seat } => {
                    if let Some(c) = self.calls.get_mut(call.as_str()) {
                        c.record.offers.push(OfferRecord {
                            seat: seat.to_string(),
                            at: now.wall,
                            ended_at: None,
                            result: OfferResult::Ringing,
                            status: None,
                        });
                        c.record
                            .event(now.wall, EventKind::Offer, Some(&seat), None);
                    }
                    self.outputs.push_back(CallOutput::RingSeat { call, seat });
                }
                AcdOutput::OfferTimedOut { call, seat } => {
                    self.close_offer(now, &call, &seat, OfferResult::NoAnswer, None);
                    self.event(now, &call, EventKind::RingNoAnswer, Some(&seat), None);
                    self.outputs.push_back(CallOutput::CancelSeat {
                        call,
                        seat: seat.into(),
                    });
                }
                AcdOutput::Cancel { call, seat } => {
                    // Another seat answered first (ring-all).
                    self.close_offer(now, &call, &seat, OfferResult::Withdrawn, None);
                    self.outputs.push_back(CallOutput::CancelSeat {
                        call,
                        seat: seat.into(),
                    });
                }
                AcdOutput::SeatChanged { seat, from, to } => {
                    self.outputs
                        .push_back(CallOutput::SeatChanged { seat, from, to });
                }
                AcdOutput::Autopaused {
                    seat,
                    reason,
                    until,
                } => {
                    self.outputs.push_back(CallOutput::SeatAutopaused {
                        seat,
                        reason,
                        until: until.map(|t| now.wall_at(t)),
                    });
                }
                AcdOutput::MissBurst { seats } => {
                    self.outputs.push_back(CallOutput::MissBurst { seats });
                }
            }
        }
    }

    /// Marks the seat's open offer for the call as ended. False when there was none.
    fn close_offer(
        &mut self,
        now: Now,
        call: &str,
        seat: &str,
        result: OfferResult,
        status: Option<u16>,
    ) -> bool {
        let Some(c) = self.calls.get_mut(call) else {
            return false;
        };
        let open = c
            .record
            .offers
            .iter_mut()
            .rev()
            .find(|o| o.seat == seat && o.result == OfferResult::Ringing);
        match open {
            Some(offer) => {
                offer.result = result;
                offer.ended_at = Some(now.wall);
                offer.status = status;
                true
            }
            None => false,
        }
    }

    fn event(
        &mut self,
        now: Now,
        call: &str,
        kind: EventKind,
        seat: Option<&str>,
        detail: Option<String>,
    ) {
        if let Some(c) = self.calls.get_mut(call) {
            c.record.event(now.wall, kind, seat, detail);
        }
    }

    fn finish(&mut self, now: Now, call: &str, outcome: Outcome, reason: EndReason) {
        self.free_seats_left(now, call);
        let Some(mut c) = self.calls.remove(call) else {
            return;
        };
        let r = &mut c.record;
        r.urgency = (c.urgency != Urgency::Nr).then_some(c.urgency);
        r.ended_at = Some(now.wall);
        r.outcome = Some(outcome);
        match c.answered {
            Some(answered) => r.talk_ms = Some(now.mono.saturating_sub(answered)),
            None => r.wait_ms = Some(now.mono.saturating_sub(c.arrived)),
        }
        for h in r.handlers.iter_mut().filter(|h| h.until.is_none()) {
            h.until = Some(now.wall);
            h.left = Some(reason.to_string());
        }
        let last = r.handlers.last().map(|h| h.seat.clone());
        r.event(
            now.wall,
            EventKind::End,
            last.as_deref(),
            Some(reason.to_string()),
        );
        r.end_reason = Some(reason);
        self.outputs
            .push_back(CallOutput::Finished(Box::new(c.record)));
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
