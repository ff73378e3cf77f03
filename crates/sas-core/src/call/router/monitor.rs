//! Supervisors on calls: listen (silent monitor), whisper (heard by the seat only), barge
//! (three-way), and take over.
//!
//! A monitor is a session of the Router, keyed by call: the supervisor's phone is rung on
//! a new leg ([`RouterOutput::RingMonitor`]) with a ring deadline on the named-timer table
//! ([`TimerName::MonitorRing`]); once it answers ([`RouterInput::MonitorAnswered`]) the
//! driver has the relay mix it in as its mode says ([`RouterOutput::MonitorMedia`]). A
//! new mode is a new `MonitorMedia`. It ends when the supervisor hangs up or the ring
//! fails ([`RouterInput::MonitorGone`]), or when the call stops talking with the seat
//! monitored (it ends, the seat transfers or leaves it, an escalation starts): then the
//! supervisor's leg is hung up ([`RouterOutput::HangUpMonitor`]). Take over turns the
//! supervisor's leg into the call's seat leg ([`RouterOutput::TakenOver`]) and the
//! switchboard hangs up the seat it replaces.
//!
//! The supervisor's seat is taken out of distribution while it monitors (paused
//! `other_task` if it was available or in wrap-up, resumed at the end) so that the ACD
//! never rings a phone that is listening to a call.
//!
//! [`RouterInput::MonitorAnswered`]: super::RouterInput::MonitorAnswered
//! [`RouterInput::MonitorGone`]: super::RouterInput::MonitorGone

use super::{Router, RouterOutput, SeatRequestError, TimerName};
use crate::acd::{PauseReason, SeatId, SeatState};
use crate::call::{CallInput, SuperviseError};
use crate::cti::MonitorMode;
use crate::record::EventKind;
use crate::time::Now;
use serde::Serialize;
use std::collections::HashMap;

/// How long the supervisor's phone rings before the monitor is given up.
pub const MONITOR_RING_MS: u64 = 30_000;

/// A supervisor on a call, as views show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Monitoring {
    /// The supervisor's seat.
    pub supervisor: SeatId,
    /// The seat monitored (talking with the caller).
    pub seat: SeatId,
    /// Listen, whisper, barge.
    pub mode: MonitorMode,
    /// The supervisor's phone answered (false: ringing).
    pub answered: bool,
    /// The supervisor's seat was taken out of distribution for it (resumed at the end).
    #[serde(skip)]
    resume_after: bool,
}

/// Monitor sessions, by call.
pub(super) type Monitors = HashMap<String, Monitoring>;

impl From<SuperviseError> for SeatRequestError {
    fn from(e: SuperviseError) -> Self {
        match e {
            SuperviseError::NoCall => SeatRequestError::UnknownCall,
            e => SeatRequestError::Conflict(e.to_string()),
        }
    }
}

impl Router {
    /// `supervisor` monitors `call` in `mode`: its phone is rung (a first request), or
    /// the mode changes (the same supervisor again). Refused when the call is not talking
    /// with a seat, is monitored by someone else, or the supervisor is on a call.
    pub fn monitor(
        &mut self,
        now: Now,
        call: &str,
        supervisor: &str,
        mode: MonitorMode,
    ) -> Result<(), SeatRequestError> {
        self.last = now;
        if let Some(m) = self.monitors.get_mut(call) {
            if m.supervisor != supervisor {
                let why = format!("already monitored by {}", m.supervisor);
                return Err(SeatRequestError::Conflict(why));
            }
            if m.mode != mode {
                m.mode = mode;
                let answered = m.answered;
                self.note(now, call, format!("{} by {supervisor}", mode.label()));
                if answered {
                    self.outputs.push_back(RouterOutput::MonitorMedia {
                        call: call.into(),
                        mode: Some(mode),
                    });
                }
            }
            return Ok(());
        }
        if self.board.record(call).is_none() {
            return Err(SeatRequestError::UnknownCall);
        }
        let seat = self.board.bridged_seat(call).cloned();
        let seat = seat.ok_or(SuperviseError::NotTalking)?;
        let state = self.board.acd().seat(supervisor).map(|s| s.state.clone());
        let state = state.ok_or_else(|| {
            SeatRequestError::Invalid(format!("unknown supervisor seat {supervisor}"))
        })?;
        let busy = matches!(state, SeatState::Ringing { .. } | SeatState::Busy { .. });
        let elsewhere = self.monitors.values().any(|m| m.supervisor == supervisor);
        if busy || elsewhere {
            return Err(SuperviseError::Busy(supervisor.into()).into());
        }
        let free = matches!(state, SeatState::Available | SeatState::WrapUp { .. });
        let resume_after = free && self.board.pause(now, supervisor, PauseReason::OtherTask);
        self.monitors.insert(
            call.into(),
            Monitoring {
                supervisor: supervisor.into(),
                seat: seat.clone(),
                mode,
                answered: false,
                resume_after,
            },
        );
        let ring_until = now.mono.saturating_add(MONITOR_RING_MS);
        self.timers.arm(call, TimerName::MonitorRing, ring_until);
        let detail = format!("{} by {supervisor} on {seat}", mode.label());
        self.note(now, call, detail);
        self.outputs.push_back(RouterOutput::RingMonitor {
            call: call.into(),
            seat: supervisor.into(),
        });
        self.settle(now);
        Ok(())
    }

    /// `supervisor` stops monitoring `call`: its leg is hung up.
    pub fn monitor_stop(
        &mut self,
        now: Now,
        call: &str,
        supervisor: &str,
    ) -> Result<(), SeatRequestError> {
        self.last = now;
        self.own_monitor(call, supervisor)?;
        self.end_monitor(now, call, true, "stopped");
        self.settle(now);
        Ok(())
    }

    /// `supervisor`, monitoring `call` with its phone answered, takes it over: its leg
    /// becomes the call's seat leg and the seat it replaces is hung up (wrap-up). Returns
    /// that seat.
    pub fn take_over(
        &mut self,
        now: Now,
        call: &str,
        supervisor: &str,
    ) -> Result<SeatId, SeatRequestError> {
        self.last = now;
        if !self.own_monitor(call, supervisor)?.answered {
            let why = "the supervisor's phone has not answered the monitor yet";
            return Err(SeatRequestError::Conflict(why.into()));
        }
        // The session ends first: the switchboard's outputs below no longer concern it.
        let m = self.monitors.remove(call).expect("checked above");
        self.timers.cancel(call, TimerName::MonitorRing);
        let replaced = match self.board.take_over(now, call, supervisor) {
            Ok(seat) => seat,
            Err(e) => {
                self.monitors.insert(call.into(), m);
                return Err(e.into());
            }
        };
        // Before the switchboard's hang-up and bridge (moved out by `settle`): the
        // driver makes the leg a seat's.
        self.outputs.push_back(RouterOutput::TakenOver {
            call: call.into(),
            seat: supervisor.into(),
        });
        self.settle(now);
        Ok(replaced)
    }

    /// The supervisor on `call`, if any.
    pub fn monitoring(&self, call: &str) -> Option<&Monitoring> {
        self.monitors.get(call)
    }

    /// The supervisor's phone answered: it hears the call as its mode says.
    pub(super) fn monitor_answered(&mut self, now: Now, call: &str) {
        let Some(m) = self.monitors.get_mut(call) else {
            // Ended while it rang (the call moved on): the late leg goes.
            return;
        };
        m.answered = true;
        let mode = m.mode;
        self.timers.cancel(call, TimerName::MonitorRing);
        self.note(now, call, format!("{} answered", mode.label()));
        self.outputs.push_back(RouterOutput::MonitorMedia {
            call: call.into(),
            mode: Some(mode),
        });
    }

    /// The supervisor's leg failed or hung up.
    pub(super) fn monitor_gone(&mut self, now: Now, call: &str) {
        self.end_monitor(now, call, false, "supervisor left");
    }

    /// The supervisor's phone rang too long.
    pub(super) fn monitor_ring_expired(&mut self, now: Now, call: &str) {
        self.end_monitor(now, call, true, "no answer");
    }

    /// Ends the monitors of calls no longer talking with the seat monitored (before the
    /// output that says so goes out: a new offer of the call needs the leg).
    pub(super) fn check_monitors(&mut self, now: Now) {
        if self.monitors.is_empty() {
            return;
        }
        let over: Vec<String> = (self.monitors.iter())
            .filter(|(call, m)| self.board.bridged_seat(call) != Some(&m.seat))
            .map(|(call, _)| call.clone())
            .collect();
        for call in over {
            self.end_monitor(now, &call, true, "the call left the seat");
        }
    }

    fn own_monitor(&self, call: &str, supervisor: &str) -> Result<&Monitoring, SeatRequestError> {
        match self.monitors.get(call) {
            Some(m) if m.supervisor == supervisor => Ok(m),
            Some(m) => Err(SeatRequestError::Conflict(format!(
                "monitored by {}, not {supervisor}",
                m.supervisor
            ))),
            None => Err(SeatRequestError::Conflict(
                "the call is not monitored".into(),
            )),
        }
    }

    fn end_monitor(&mut self, now: Now, call: &str, hang_up: bool, why: &str) {
        let Some(m) = self.monitors.remove(call) else {
            return;
        };
        self.timers.cancel(call, TimerName::MonitorRing);
        if m.answered {
            self.outputs.push_back(RouterOutput::MonitorMedia {
                call: call.into(),
                mode: None,
            });
        }
        if hang_up {
            self.outputs.push_back(RouterOutput::HangUpMonitor {
                call: call.into(),
                seat: m.supervisor.to_string(),
            });
        }
        let paused = matches!(
            self.board.acd().seat(&m.supervisor).map(|s| &s.state),
            Some(SeatState::Paused {
                reason: PauseReason::OtherTask,
                ..
            })
        );
        if m.resume_after && paused {
            self.board.unpause(now, &m.supervisor);
        }
        self.note(now, call, format!("ended by {}: {why}", m.supervisor));
    }

    /// A line of the call's timeline about its monitor.
    fn note(&mut self, now: Now, call: &str, detail: String) {
        let note = CallInput::Note {
            call: call.into(),
            kind: EventKind::Monitor,
            detail,
        };
        self.board.handle(now, note);
    }
}
