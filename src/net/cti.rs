//! The call driver's side of the CTI: carries out seats' requests on the switchboard and
//! publishes what happens to seats and calls (see [`crate::cti`]).

use serde_json::{Value, json};

use super::calls::{CallDriver, LegMap};
use crate::acd::{SeatState, Urgency};
use crate::call::CallOutput;
use crate::call::router::{SeatRequest, SeatRequestError};
use crate::cti::notices::{self, Notice};
use crate::cti::{CtiCommand, CtiError, CtiEvent, CtiRequest, TransferMode, views};
use crate::store::record::EventKind;
use crate::store::seat_log::SeatEvent;
use crate::time::Now;

impl CallDriver {
    /// One request from a console.
    pub(super) fn on_cti(&mut self, command: CtiCommand, legs: &mut LegMap) {
        let now = self.clock.now();
        let CtiCommand {
            seat,
            request,
            reply,
        } = command;
        if let CtiRequest::Answer { sdp } = request {
            // Answered once the browser's SDP is applied (off the event loop).
            return self.console_answer(&seat, sdp, reply, legs);
        }
        let request = match request {
            CtiRequest::Qualify(data) if self.router.board().acd().seat(&seat).is_some() => {
                // A call over is completed in the store (off the event loop).
                return self.cti_qualify(now, &seat, data, reply);
            }
            other => other,
        };
        let answer = match self.router.board().acd().seat(&seat) {
            None => Err(CtiError::Invalid(format!("unknown seat {seat}"))),
            Some(_) => self.cti_request(now, &seat, request),
        };
        reply.send(answer).ok();
    }

    fn cti_request(
        &mut self,
        now: Now,
        seat: &str,
        request: CtiRequest,
    ) -> Result<Value, CtiError> {
        match request {
            CtiRequest::Status => Ok(self.seat_status(seat)),
            CtiRequest::Overview => Ok(self.overview()),
            CtiRequest::Lines { plans } => Ok(self.lines(&plans.0)),
            CtiRequest::SwitchLine {
                line,
                reason,
                move_waiting,
                by,
                plans,
            } => self.switch_line(now, &plans.0, (line, reason, by), move_waiting),
            CtiRequest::RestoreLine { line, reason, by } => {
                self.restore_line(now, line, reason, by)
            }
            CtiRequest::Reset { seat: target } => {
                self.router.reset_seat(now, &target).map_err(refused)?;
                self.seat_log(now, &target, EventKind::Reset, None, Some(seat));
                self.audit_supervisor(now, seat, "seat.reset", &target, None);
                Ok(self.seat_status(&target))
            }
            CtiRequest::Supervise { by, action } => self.supervise(now, &by, action),
            CtiRequest::Login => {
                self.seat_log(now, seat, EventKind::Login, None, None);
                self.router
                    .seat_request(now, seat, SeatRequest::Login)
                    .map_err(refused)?;
                Ok(self.seat_status(seat))
            }
            CtiRequest::Logout => {
                self.seat_log(now, seat, EventKind::Logout, None, None);
                self.console_audio(now, seat, false);
                self.router
                    .seat_request(now, seat, SeatRequest::Logout)
                    .map_err(refused)?;
                Ok(self.seat_status(seat))
            }
            CtiRequest::Pause { reason } => {
                let pause = SeatRequest::Pause(reason);
                self.router
                    .seat_request(now, seat, pause)
                    .map_err(refused)?;
                self.seat_log(now, seat, EventKind::Pause, None, Some(reason.label()));
                Ok(self.seat_status(seat))
            }
            CtiRequest::Resume => {
                self.router
                    .seat_request(now, seat, SeatRequest::Resume)
                    .map_err(refused)?;
                self.seat_log(now, seat, EventKind::Unpause, None, None);
                Ok(self.seat_status(seat))
            }
            CtiRequest::Hangup => {
                self.router
                    .seat_request(now, seat, SeatRequest::Hangup)
                    .map_err(refused)?;
                Ok(self.seat_status(seat))
            }
            CtiRequest::Hold { held } => {
                let hold = SeatRequest::Hold(held);
                self.router.seat_request(now, seat, hold).map_err(refused)?;
                Ok(self.seat_status(seat))
            }
            CtiRequest::Audio { enabled } => {
                self.console_audio(now, seat, enabled);
                Ok(self.seat_status(seat))
            }
            CtiRequest::Answer { .. } => Err(CtiError::Invalid("answered above".into())),
            CtiRequest::Transfer {
                target,
                mode,
                urgency,
            } => self.cti_transfer(now, seat, &target, mode, urgency),
            CtiRequest::Qualify(_) => Err(CtiError::Invalid("qualified above".into())),
        }
    }

    /// The console takes (or stops taking) the seat's calls with audio in the browser (the
    /// Router keeps the seat online as a registration would).
    pub(super) fn console_audio(&mut self, now: Now, seat: &str, enabled: bool) {
        if self.router.console_audio(now, seat, enabled) {
            let detail = if enabled { "browser" } else { "phone" };
            self.seat_log(now, seat, EventKind::Audio, None, Some(detail));
        }
    }

    fn seat_state(&self, seat: &str) -> Option<&SeatState> {
        self.router.board().acd().seat(seat).map(|s| &s.state)
    }

    /// The seat, its state and its call as the console shows them.
    pub(super) fn seat_status(&self, seat: &str) -> Value {
        views::seat_status(&self.router, seat, self.clock.now())
    }

    /// Queues, waiting calls and seats, for supervisors.
    fn overview(&self) -> Value {
        views::overview(&self.router, self.clock.now())
    }

    /// Writes a line of the seat's history and tells its console and the supervisors.
    pub(super) fn seat_log(
        &self,
        now: Now,
        seat: &str,
        kind: EventKind,
        call: Option<&str>,
        detail: Option<&str>,
    ) {
        self.record_seat_event(notices::seat_line(now, seat, kind, call, detail));
    }

    /// Stores a seat event and publishes it.
    pub(super) fn record_seat_event(&self, event: SeatEvent) {
        if self.cti.listened() {
            self.cti.publish(cti_event_of(&event));
        }
        // Stored by the writer thread, in order, off this loop.
        self.writer.seat_event(event);
    }

    /// Tells consoles and supervisors what a switchboard decision means for them
    /// (`cti/notices.rs`), writes it in the seats' history, and counts and logs alerts.
    pub(super) fn publish_output(&self, out: &CallOutput) {
        match out {
            CallOutput::SeatAutopaused {
                seat,
                reason,
                until,
            } => {
                tracing::warn!(%seat, reason = reason.label(), ?until, "seat autopaused");
                let autopauses = &self.metrics.seat_autopauses;
                autopauses.with_label_values(&[reason.label()]).inc();
            }
            CallOutput::MissBurst { seats } => {
                tracing::error!(
                    seats = seats.len(),
                    "several seats missed offers at once: overload or network trouble, \
                     none paused for it"
                );
                self.metrics.seat_miss_bursts.inc();
            }
            CallOutput::Unaccompanied {
                call,
                seat,
                reachable,
            } => {
                self.metrics.p0_unaccompanied.inc();
                tracing::warn!(
                    %call, %seat, reachable,
                    "P0 caller left alone before the regulator answered"
                );
            }
            _ => {}
        }
        for notice in notices::notices(&self.router, self.clock.now(), out) {
            match notice {
                Notice::SeatLog(line) => self.record_seat_event(line),
                Notice::Cti(event) => self.cti.publish(event),
            }
        }
    }

    /// Supervisors: the number of waiting calls, when it changes.
    pub(super) fn publish_queue(&mut self) {
        let waiting = self.router.board().calls_waiting();
        if self.last_waiting.replace(waiting) != Some(waiting) {
            self.cti.publish(CtiEvent {
                at: self.clock.now().wall,
                seat: None,
                call: None,
                kind: "queue".into(),
                detail: json!({ "waiting": waiting }),
            });
        }
    }
}

impl CallDriver {
    /// The console transfers its seat's call.
    fn cti_transfer(
        &mut self,
        now: Now,
        seat: &str,
        target: &str,
        mode: TransferMode,
        urgency: Option<Urgency>,
    ) -> Result<Value, CtiError> {
        let call = match self.seat_state(seat) {
            Some(SeatState::Busy { call }) => call.clone(),
            _ => return Err(CtiError::NoCall),
        };
        let mode = self.transfer(now, &call, seat, target, mode, urgency)?;
        let urgency = self.router.board().urgency(&call);
        Ok(json!({"call": call, "target": target, "mode": mode, "urgency": urgency}))
    }

    /// Hands `seat`'s call to `target` (CTI or REFER): the Router checks the seat may, and
    /// the call's dial plan goes on at the target.
    pub(super) fn transfer(
        &mut self,
        now: Now,
        call: &str,
        seat: &str,
        target: &str,
        mode: TransferMode,
        urgency: Option<Urgency>,
    ) -> Result<TransferMode, CtiError> {
        let (mode, step) = self
            .router
            .transfer_request(now, call, seat, target, mode, urgency)
            .map_err(refused)?;
        let detail = format!("{step} {}", serde_json::json!(mode).as_str().unwrap_or(""));
        self.seat_log(now, seat, EventKind::Transfer, Some(call), Some(&detail));
        Ok(mode)
    }
}

/// A seat history line as consoles and supervisors hear it.
fn cti_event_of(event: &SeatEvent) -> CtiEvent {
    let kind = match event.kind.as_str() {
        "STATE" => "seat_state".to_string(),
        other => other.to_lowercase(),
    };
    CtiEvent {
        at: event.at,
        seat: Some(event.seat.clone()),
        call: event.call.clone(),
        kind,
        detail: json!({"from": event.from, "to": event.to, "detail": event.detail}),
    }
}

/// A seat request the Router refused, as the CTI says it.
pub(super) fn refused(e: SeatRequestError) -> CtiError {
    match e {
        SeatRequestError::NoCall => CtiError::NoCall,
        SeatRequestError::Conflict(why) => CtiError::Conflict(why),
        SeatRequestError::Invalid(why) => CtiError::Invalid(why),
        SeatRequestError::UnknownTarget(target) => CtiError::UnknownTarget(target),
        SeatRequestError::UnknownCall => CtiError::UnknownCall,
    }
}
