//! The Router: the one sans-IO state machine the call driver feeds. It owns the
//! [`Switchboard`] (calls, the ACD), each call's dial plan [`Flow`] and route state, and one
//! table of named timers on the monotonic clock ([`TimerName`]); the ACD's own deadlines
//! (ring-no-answer, wrap-up, autopause resume) are bridged into the same
//! [`Router::poll_timeout`].
//!
//! Run loop, as in str0m or quinn-proto: `handle(now, input)` or `handle_timeout(now)`,
//! then `poll_output()` until `None`, then sleep until `poll_timeout()`. The driver carries
//! out [`RouterOutput`]s (SIP, media, store) and decides nothing about the dial plan.
//!
//! It also decides who is still there (see [`liveness`]) from the packet counts the driver
//! samples every second, and which of a seat's requests about its own state fit it
//! ([`SeatRequest`]). Left with the driver for now (moved in later stages): transfer and
//! call-file requests, admission, per-leg SDP state.

use super::{CallInput, CallOutput, Switchboard};
use crate::cti::MonitorMode;
use crate::id_map::IdMap;
use crate::ids::CallId;
use crate::routing::flow::Flow;
use crate::routing::plan::{InternalNumber, PlanSet};
use crate::time::{Mono, Now};
use std::collections::VecDeque;
use std::sync::Arc;

pub mod admission;
mod lines;
mod liveness;
mod monitor;
mod phones;
mod presence;
mod route;
mod sdp;
mod seat_requests;
mod timers;
mod wrap_up;

pub use lines::{LineSwitch, LineSwitchError};
use liveness::Watches;
pub use liveness::{LivenessSettings, MediaSample, SeatSample};
pub use monitor::{MONITOR_RING_MS, Monitoring};
use route::Route;
pub use sdp::{ReofferError, Reoffered};
pub use seat_requests::{SeatRequest, SeatRequestError};
pub use timers::TimerName;
use timers::Timers;
pub use wrap_up::{Qualified, WrapUpCall};

/// A call was dialled by a seat's phone to an internal number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialled {
    /// The authenticated seat.
    pub seat: String,
    /// The internal number's step.
    pub step: String,
}

/// Something that happened, for the Router.
#[derive(Debug, Clone)]
pub enum RouterInput {
    /// A call was admitted (`arrived` is a [`CallInput::Arrived`]): its dial plan starts
    /// at `entry` in `plans` (the set in force; the call keeps it to its end).
    Admitted {
        /// The arrival.
        arrived: CallInput,
        /// The dial plans.
        plans: Arc<PlanSet>,
        /// The plan entry.
        entry: String,
        /// Dialled by a seat, not a trunk caller.
        dialled: Option<Dialled>,
        /// Admitted by overload control only to go to the entry's `on_overload` step.
        overloaded: bool,
    },
    /// Anything else about a call or a seat (keys, answers, failures…).
    Call(CallInput),
    /// The prompt of play number `play` ended (or could not be played).
    PromptEnded {
        /// The call.
        call: CallId,
        /// The play it belongs to.
        play: u64,
    },
    /// The driver's periodic reading of the call's packet counters.
    Media {
        /// The call.
        call: CallId,
        /// The counts.
        sample: MediaSample,
    },
    /// The outcome of a [`RouterOutput::ProbeCaller`]: the dialog answered (not 408/481).
    CallerProbed {
        /// The call.
        call: CallId,
        /// It answered.
        answered: bool,
    },
    /// A seat's registered contacts after a REGISTER (or as restored at start), each with
    /// the time it has left in ms; they replace what it had (none: unregistered).
    Registration {
        /// The seat.
        seat: String,
        /// Contact URIs and their time left.
        contacts: Vec<(String, u64)>,
    },
    /// The supervisor's phone answered its monitor of the call ([`RouterOutput::RingMonitor`]).
    MonitorAnswered {
        /// The call.
        call: CallId,
    },
    /// The supervisor's monitor leg failed or hung up.
    MonitorGone {
        /// The call.
        call: CallId,
    },
    /// A seat transferred the call to an internal number: its dial plan goes on there.
    Transfer {
        /// The call.
        call: CallId,
        /// The target.
        target: InternalNumber,
        /// The seat.
        by: String,
    },
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum RouterOutput {
    /// What the switchboard asks (ring, bridge, hang up, store the record…).
    Call(CallOutput),
    /// The caller has been silent too long: probe its dialog (in-dialog OPTIONS) and say
    /// how it went ([`RouterInput::CallerProbed`]).
    ProbeCaller {
        /// The call.
        call: CallId,
    },
    /// A seat's registration expired: remove its binding from the registrar.
    BindingExpired {
        /// The seat.
        seat: String,
        /// The contact URI.
        contact: String,
    },
    /// The seat's phone is taken for dead: hang its leg up (the caller waits again).
    HangUpDeadSeat {
        /// The call.
        call: CallId,
        /// The seat.
        seat: String,
    },
    /// Ring the supervisor's phone on the call's free seat leg for a monitor; its outcome
    /// comes back as [`RouterInput::MonitorAnswered`] or [`RouterInput::MonitorGone`].
    RingMonitor {
        /// The call.
        call: CallId,
        /// The supervisor's seat.
        seat: String,
    },
    /// The supervisor's answered leg hears the call as `mode` says (`None`: not at all,
    /// the relay relays caller and seat again).
    MonitorMedia {
        /// The call.
        call: CallId,
        /// Listen, whisper, barge.
        mode: Option<MonitorMode>,
    },
    /// Hang up (or cancel) the supervisor's monitor leg.
    HangUpMonitor {
        /// The call.
        call: CallId,
        /// The supervisor's seat.
        seat: String,
    },
    /// The supervisor took the call over: its monitor leg is the call's leg of `seat` from
    /// now on (the switchboard's `HangUpSeat` and `Bridge` follow).
    TakenOver {
        /// The call.
        call: CallId,
        /// The supervisor's seat.
        seat: String,
    },
    /// Play to the caller, numbered `play` (prompt names, resolved by the driver against
    /// the call's prompt set). With `answer`, answer the caller first (feeding
    /// [`CallInput::CallerAnswered`], or [`CallInput::Failed`] when it cannot). With
    /// `ends`, the plan waits for the greeting's end: one that cannot be played ends at
    /// once ([`RouterInput::PromptEnded`]).
    Play {
        /// The call.
        call: CallId,
        /// Its number.
        play: u64,
        /// Answer the caller first.
        answer: bool,
        /// The plan waits for the greeting's end.
        ends: bool,
        /// Played once.
        greeting: Option<String>,
        /// Looped after the greeting.
        hold: Option<String>,
        /// Played over the hold audio every `reassurance_every_ms`.
        reassurance: Option<String>,
        /// Reassurance period.
        reassurance_every_ms: u64,
    },
}

/// The call logic of the router.
#[derive(Debug)]
pub struct Router {
    board: Switchboard,
    routes: IdMap<String, Route>,
    timers: Timers,
    liveness: LivenessSettings,
    outputs: VecDeque<RouterOutput>,
    /// Prompts that could not be played (the seat is talking): ended once `handle` is done,
    /// as if played, so the plan never waits on them and never recurses through them.
    skipped: VecDeque<(String, u64)>,
    /// The time of the last input, for reacting to what the switchboard answers later.
    last: Now,
    /// The last call each seat talked on (its wrap-up call file).
    last_calls: IdMap<String, wrap_up::LastCall>,
    /// Registrations and console audio: who keeps each seat online.
    presence: presence::Presence,
    /// Each call's SDP negotiation, per media side.
    sdp: IdMap<String, sdp::Negotiation>,
    /// Lines switched to the backup centre.
    switched: lines::Switched,
    /// Supervisors listening, whispering or barging in, by call.
    monitors: monitor::Monitors,
}

impl Router {
    /// A router over `board`.
    pub fn new(board: Switchboard, now: Now) -> Router {
        Router {
            board,
            routes: IdMap::default(),
            timers: Timers::default(),
            liveness: LivenessSettings::default(),
            outputs: VecDeque::new(),
            skipped: VecDeque::new(),
            last: now,
            last_calls: IdMap::default(),
            presence: presence::Presence::default(),
            sdp: IdMap::default(),
            switched: lines::Switched::new(),
            monitors: monitor::Monitors::new(),
        }
    }

    /// Feeds one input.
    pub fn handle(&mut self, now: Now, input: RouterInput) {
        self.last = now;
        match input {
            RouterInput::Admitted {
                arrived,
                plans,
                entry,
                dialled,
                overloaded,
            } => {
                let CallInput::Arrived { call, .. } = &arrived else {
                    return;
                };
                let call = call.clone();
                self.board.handle(now, arrived);
                self.start(now, &call, (plans, entry), dialled, overloaded);
            }
            RouterInput::Call(input) => self.call_input(now, input),
            RouterInput::PromptEnded { call, play } => self.prompt_ended(now, &call, play),
            RouterInput::Media { call, sample } => self.sampled(now, &call, sample),
            RouterInput::CallerProbed { call, answered } => self.probed(now, &call, answered),
            RouterInput::Transfer { call, target, by } => self.transfer(now, &call, &target, &by),
            RouterInput::Registration { seat, contacts } => self.registered(now, &seat, contacts),
            RouterInput::MonitorAnswered { call } => self.monitor_answered(now, &call),
            RouterInput::MonitorGone { call } => self.monitor_gone(now, &call),
        }
        self.settle(now);
    }

    /// Shorthand for `handle(now, RouterInput::Call(input))`.
    pub fn handle_call(&mut self, now: Now, input: CallInput) {
        self.handle(now, RouterInput::Call(input));
    }

    /// Fires every deadline due at `now`: the switchboard's, then the dial plans'.
    pub fn handle_timeout(&mut self, now: Now) {
        self.last = now;
        self.board.handle_timeout(now);
        while let Some((call, name)) = self.timers.pop_due(now.mono) {
            self.timer_fired(now, &call, name);
        }
        self.settle(now);
    }

    /// The next deadline, if any.
    pub fn poll_timeout(&self) -> Option<Mono> {
        match (self.board.poll_timeout(), self.timers.next()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next thing to do.
    pub fn poll_output(&mut self) -> Option<RouterOutput> {
        if self.outputs.is_empty() {
            self.settle(self.last);
        }
        self.outputs.pop_front()
    }

    /// The switchboard, to read.
    pub fn board(&self) -> &Switchboard {
        &self.board
    }

    /// The calls and seats touched since the last call (see [`Switchboard::take_changed`]).
    pub fn take_changed(&mut self) -> super::Changed {
        self.board.take_changed()
    }

    /// A new number for a play the driver starts itself (silence after a blind transfer).
    pub fn next_play(&mut self, call: &str) -> u64 {
        self.routes.get_mut(call).map_or(0, Route::next_play)
    }

    /// The dial plan decisions so far.
    pub fn trace(&self, call: &str) -> Vec<String> {
        self.routes.get(call).map(Route::trace).unwrap_or_default()
    }

    /// The seat whose phone dialled the call, if one did.
    pub fn dialled_by(&self, call: &str) -> Option<&str> {
        self.routes
            .get(call)?
            .dialled
            .as_ref()
            .map(|d| d.seat.as_str())
    }

    /// What a transfer to `target` means in this call's dial plans: an internal name
    /// (`amu`, `3114`) or number (`2001`).
    pub fn transfer_target(&self, call: &str, target: &str) -> Option<InternalNumber> {
        let plans = &self.routes.get(call)?.plans;
        plans
            .internal
            .get(target)
            .or_else(|| plans.internal.values().find(|i| i.number == target))
            .cloned()
    }

    /// Entries of the Router's tables, by name: those keyed by call go back to 0 when no
    /// call is live (`last_calls` and `timers` keep one per seat at most), or memory grows
    /// with the calls handled (the `sas_live_entries` metric).
    pub fn table_sizes(&self) -> [(&'static str, usize); 6] {
        [
            ("router_calls", self.board.active_calls()),
            ("router_routes", self.routes.len()),
            ("router_sdp", self.sdp.len()),
            ("router_timers", self.timers.len()),
            ("router_last_calls", self.last_calls.len()),
            ("router_monitors", self.monitors.len()),
        ]
    }

    /// Timers armed for calls the router no longer knows (must be none).
    pub fn orphan_timers(&self) -> usize {
        self.timers
            .calls()
            .filter(|c| !self.routes.contains_key(*c))
            .count()
    }

    /// Live calls nobody is doing anything for: not with a seat or an external party, not
    /// being dialled out, not in a queue, not waiting for a prompt's end, and with no timer
    /// armed. Must be none (the simulator checks it after every step).
    pub fn stranded(&self) -> Vec<String> {
        self.board
            .records()
            .map(|r| r.id.as_str())
            .filter(|call| {
                self.board.seats_on(call).is_empty()
                    && !self.board.forwarding(call)
                    && self.board.waiting_since(call).is_none()
                    && !self.routes.get(*call).is_some_and(Route::awaits_prompt)
                    && !self.timers.calls().any(|c| c == *call)
            })
            .map(str::to_string)
            .collect()
    }

    fn start(
        &mut self,
        now: Now,
        call: &str,
        (plans, entry): (Arc<PlanSet>, String),
        dialled: Option<Dialled>,
        overloaded: bool,
    ) {
        let calendar = Arc::clone(&plans);
        let switched = plans
            .entries
            .get(&entry)
            .is_some_and(|e| self.is_switched(&e.line));
        let started = match &dialled {
            // The plans may have been reloaded since: then the entry's start.
            None if switched => {
                Flow::switched(Arc::clone(&plans), &entry, now.wall, calendar.as_ref()).or_else(
                    || Flow::start(Arc::clone(&plans), &entry, now.wall, calendar.as_ref()),
                )
            }
            None if overloaded => {
                Flow::overloaded(Arc::clone(&plans), &entry, now.wall, calendar.as_ref()).or_else(
                    || Flow::start(Arc::clone(&plans), &entry, now.wall, calendar.as_ref()),
                )
            }
            Some(d) => Flow::dialled(
                Arc::clone(&plans),
                &entry,
                &d.step,
                &d.seat,
                now.wall,
                calendar.as_ref(),
            ),
            None => Flow::start(Arc::clone(&plans), &entry, now.wall, calendar.as_ref()),
        };
        match started {
            Some((flow, first)) => {
                let mut route = Route::new(plans, dialled, Watches::new(self.liveness));
                route.flow = Some(flow);
                // Started at the backup step: a failed forward waits in the line's queue.
                route.backed_up = switched && route.dialled.is_none();
                self.routes.insert(call.into(), route);
                self.follow(now, call, first);
            }
            None => {
                let reason = format!("dial_plan_entry_missing: {entry}");
                let failed = CallInput::Failed {
                    call: call.into(),
                    reason,
                };
                self.board.handle(now, failed);
            }
        }
    }

    fn call_input(&mut self, now: Now, input: CallInput) {
        match input {
            CallInput::Digit { call, digit } => {
                let key = digit.digit;
                self.board.handle(
                    now,
                    CallInput::Digit {
                        call: call.clone(),
                        digit,
                    },
                );
                let next = self
                    .routes
                    .get_mut(call.as_str())
                    .and_then(|r| r.with_flow(|f, p| f.on_digit(key, now.wall, p)).flatten());
                if let Some(next) = next {
                    self.follow(now, &call, next);
                }
            }
            CallInput::ExternalFailed { call, status } => {
                let failed = CallInput::ExternalFailed {
                    call: call.clone(),
                    status,
                };
                self.board.handle(now, failed);
                // The forward could not be made: the call must not be lost. The plan's
                // `failed` step, else it waits again.
                let next = self.routes.get_mut(call.as_str()).and_then(|r| {
                    r.with_flow(|f, p| f.on_forward_failed(now.wall, p))
                        .flatten()
                });
                match next {
                    Some(next) => self.follow(now, &call, next),
                    None => self.wait_again(now, &call, "forward_failed"),
                }
            }
            input => self.board.handle(now, input),
        }
    }

    fn timer_fired(&mut self, now: Now, call: &str, name: TimerName) {
        match name {
            TimerName::KeyWait => {
                let next = self
                    .routes
                    .get_mut(call)
                    .and_then(|r| r.with_flow(|f, p| f.on_key_timeout(now.wall, p)).flatten());
                if let Some(next) = next {
                    self.follow(now, call, next);
                }
            }
            TimerName::QueueMaxWait => {
                self.overflow_now(now, call, false);
            }
            TimerName::RegistrationExpiry => self.registration_expired(now, call),
            TimerName::MonitorRing => self.monitor_ring_expired(now, call),
        }
    }

    /// Reacts to what the switchboard asked, in order, then ends skipped prompts; until
    /// both are quiet.
    fn settle(&mut self, now: Now) {
        loop {
            if let Some(out) = self.board.poll_output() {
                self.react(now, out);
            } else if let Some((call, play)) = self.skipped.pop_front() {
                self.prompt_ended(now, &call, play);
            } else {
                return;
            }
        }
    }

    /// The dial plan's part of a switchboard output; the output then goes to the driver.
    fn react(&mut self, now: Now, out: CallOutput) {
        self.follow_last_calls(&out);
        // A monitor whose call left its seat ends before the output that moves the call.
        self.check_monitors(now);
        match out {
            CallOutput::Bridge { ref call, .. } | CallOutput::Conference { ref call } => {
                // A seat took the call: pending prompts and timers no longer matter.
                if let Some(r) = self.routes.get_mut(call.as_str()) {
                    r.settled();
                }
                self.timers.cancel_all(call);
                self.outputs.push_back(RouterOutput::Call(out));
            }
            CallOutput::Hold { ref call } => {
                let call = call.clone();
                self.outputs.push_back(RouterOutput::Call(out));
                self.hold_again(&call);
            }
            CallOutput::Requeue { ref call } => {
                let call = call.clone();
                self.outputs.push_back(RouterOutput::Call(out));
                self.wait_again(now, &call, "seat_lost");
            }
            CallOutput::Unaccompanied {
                ref call,
                reachable,
                ..
            } => {
                let call = call.clone();
                self.outputs.push_back(RouterOutput::Call(out));
                if !reachable && !self.overflow_now(now, &call, true) {
                    // Nobody can answer and the plan has nowhere to send it: it waits on
                    // hold, the supervisors alerted (their event, this log).
                    tracing::error!(%call, "P0 caller alone with no seat and no overflow");
                }
            }
            CallOutput::Finished(mut record) => {
                self.timers.cancel_all(&record.id);
                self.sdp.remove(&record.id);
                if let Some(route) = self.routes.remove(&record.id) {
                    route.describe(&mut record);
                }
                self.outputs
                    .push_back(RouterOutput::Call(CallOutput::Finished(record)));
            }
            out => self.outputs.push_back(RouterOutput::Call(out)),
        }
    }
}

#[cfg(test)]
mod forward_tests;
#[cfg(test)]
mod lines_tests;
#[cfg(test)]
mod monitor_tests;
#[cfg(test)]
mod overflow_tests;
#[cfg(test)]
mod tests;
