//! The call driver's side of the CTI: carries out seats' requests on the switchboard and
//! publishes what happens to seats and calls (see [`crate::cti`]).

use std::collections::HashMap;

use serde_json::{Value, json};

use super::calls::{CallDriver, Legs};
use crate::acd::{SeatState, Urgency};
use crate::call::router::{SeatRequest, SeatRequestError};
use crate::call::{CallInput, CallOutput, Party};
use crate::cti::{CtiCommand, CtiError, CtiEvent, CtiRequest, TransferMode};
use crate::store::record::EventKind;
use crate::store::seat_log::SeatEvent;
use crate::time::Now;

impl CallDriver {
    /// One request from a console.
    pub(super) fn on_cti(&mut self, command: CtiCommand, legs: &mut HashMap<String, Legs>) {
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
            CtiRequest::Reset { seat: target } => {
                self.router.reset_seat(now, &target).map_err(refused)?;
                self.seat_log(now, &target, EventKind::Reset, None, Some(seat));
                Ok(self.seat_status(&target))
            }
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

    /// The console takes (or stops taking) the seat's calls with audio in the browser. It
    /// keeps the seat online as a registration would.
    fn console_audio(&mut self, now: Now, seat: &str, enabled: bool) {
        let changed = if enabled {
            self.console_audio.insert(seat.to_string())
        } else {
            self.console_audio.remove(seat)
        };
        if !changed {
            return;
        }
        self.seat_log(
            now,
            seat,
            EventKind::Audio,
            None,
            Some(if enabled { "browser" } else { "phone" }),
        );
        let input = if enabled {
            CallInput::SeatOnline { seat: seat.into() }
        } else if self.seats.contact(seat).is_none() {
            CallInput::SeatOffline { seat: seat.into() }
        } else {
            return;
        };
        self.router.handle_call(now, input);
    }

    fn seat_state(&self, seat: &str) -> Option<&SeatState> {
        self.router.board().acd().seat(seat).map(|s| &s.state)
    }

    /// The call the seat is ringing for or on.
    pub(super) fn current_call(&self, seat: &str) -> Option<String> {
        match self.seat_state(seat)? {
            SeatState::Ringing { call, .. } | SeatState::Busy { call } => Some(call.to_string()),
            _ => None,
        }
    }

    /// The seat, its state and its call as the console shows them.
    pub(super) fn seat_status(&self, seat: &str) -> Value {
        let Some(s) = self.router.board().acd().seat(seat) else {
            return Value::Null;
        };
        let call = self.current_call(seat).and_then(|call| {
            let record = self.router.board().record(&call)?;
            let route = self.router.trace(&call);
            Some(json!({
                "id": record.id,
                "line": record.line,
                "called": record.called,
                // The seat needs the number (call back); it is health data: HTTPS only.
                "caller": record.caller.reveal(),
                "arrived_at": record.arrived_at,
                "waited_ms": record.answered_at.unwrap_or(self.clock.now().wall).saturating_sub(record.arrived_at),
                "queue": record.queue,
                "urgency": self.router.board().urgency(&call),
                // Accompanying a transfer nobody answered yet (leaving leaves the caller alone).
                "accompanying": self.router.board().accompanying(&call),
                "route": route,
                "tags": record.tags,
                "handlers": record.handlers,
                "file": record.file,
            }))
        });
        json!({
            "seat": s.id,
            "role": s.role,
            "state": s.state,
            "skills": s.skills,
            "calls_taken": s.calls_taken,
            "pause_after_call": s.pause_after_call,
            "call": call,
            "wrap_up": self.wrap_up_status(seat),
        })
    }

    /// Queues, waiting calls and seats, for supervisors.
    fn overview(&self) -> Value {
        let acd = self.router.board().acd();
        let seats: Vec<Value> = acd
            .seats()
            .map(|s| json!({"seat": s.id, "role": s.role, "state": s.state}))
            .collect();
        let now = self.clock.now();
        let calls: Vec<Value> = self
            .router
            .board()
            .records()
            .map(|r| {
                // An escalated call waits again (for AMU…) though an ARM answered it once.
                let since = self.router.board().waiting_since(&r.id);
                let ringing: Vec<&str> = acd
                    .seats()
                    .filter(
                        |s| matches!(&s.state, SeatState::Ringing { call, .. } if *call == r.id),
                    )
                    .map(|s| s.id.as_str())
                    .collect();
                json!({
                    "id": r.id,
                    "line": r.line,
                    "queue": r.queue,
                    "seat": r.seat,
                    "seats": self.router.board().seats_on(&r.id),
                    "ringing": ringing,
                    "urgency": self.router.board().urgency(&r.id),
                    "waiting": since.is_some(),
                    "forwarding": self.router.board().forwarding(&r.id),
                    "waiting_since": since,
                    "waiting_ms": since.map_or(0, |s| now.wall.saturating_sub(s)),
                    "answered": r.answered_at.is_some(),
                })
            })
            .collect();
        json!({
            "now": now.wall,
            "waiting": self.router.board().calls_waiting(),
            "calls": calls,
            "seats": seats,
        })
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
        let event = SeatEvent {
            at: now.wall,
            seat: seat.into(),
            kind,
            from: None,
            to: None,
            call: call.map(str::to_string),
            detail: detail.map(str::to_string),
        };
        self.record_seat_event(event);
    }

    /// Stores a seat event and publishes it.
    pub(super) fn record_seat_event(&self, event: SeatEvent) {
        if let Err(e) = self.store.put_seat_event(&event) {
            tracing::warn!(seat = %event.seat, error = %e, "seat history not stored");
        }
        let kind = match event.kind.as_str() {
            "STATE" => "seat_state".to_string(),
            other => other.to_lowercase(),
        };
        self.cti.publish(CtiEvent {
            at: event.at,
            seat: Some(event.seat.clone()),
            call: event.call.clone(),
            kind,
            detail: json!({"from": event.from, "to": event.to, "detail": event.detail}),
        });
    }

    /// Tells consoles and supervisors what a switchboard decision means for them, and
    /// writes it in the seats' history.
    pub(super) fn publish_output(&self, out: &CallOutput) {
        let now = self.clock.now();
        match out {
            CallOutput::SeatChanged { seat, from, to } => self.record_seat_event(SeatEvent {
                at: now.wall,
                seat: seat.to_string(),
                kind: "STATE".into(),
                from: Some((*from).into()),
                to: Some((*to).into()),
                call: None,
                detail: None,
            }),
            CallOutput::RingSeat { call, seat } => {
                let detail = self.router.board().record(call).map(|r| {
                    let urgency = self.router.board().urgency(call).map(|u| u.label());
                    format!(
                        "{} {} {}",
                        r.line,
                        r.queue.as_deref().unwrap_or("-"),
                        urgency.unwrap_or("NR")
                    )
                });
                self.seat_log(now, seat, EventKind::Offer, Some(call), detail.as_deref());
            }
            CallOutput::SeatLeft { call, seat } => {
                self.seat_log(now, seat.name(), EventKind::Left, Some(call), None);
            }
            CallOutput::SeatAutopaused {
                seat,
                reason,
                until,
            } => {
                tracing::warn!(%seat, reason = reason.label(), ?until, "seat autopaused");
                self.metrics
                    .seat_autopauses
                    .with_label_values(&[reason.label()])
                    .inc();
                self.seat_log(now, seat, EventKind::Autopause, None, Some(reason.label()));
                self.cti.publish(CtiEvent {
                    at: now.wall,
                    seat: None,
                    call: None,
                    kind: "seat_autopaused".into(),
                    detail: json!({ "seat": seat, "reason": reason.label(), "until": until }),
                });
            }
            CallOutput::MissBurst { seats } => {
                tracing::error!(
                    seats = seats.len(),
                    "several seats missed offers at once: overload or network trouble, \
                     none paused for it"
                );
                self.metrics.seat_miss_bursts.inc();
                self.cti.publish(CtiEvent {
                    at: now.wall,
                    seat: None,
                    call: None,
                    kind: "seat_miss_burst".into(),
                    detail: json!({ "seats": seats }),
                });
            }
            CallOutput::Bridge {
                call,
                seat: Party::Seat(seat),
            } => {
                self.seat_log(now, seat, EventKind::Connect, Some(call), None);
            }
            CallOutput::Conference { call } => {
                for handler in self.open_handlers(call) {
                    self.seat_log(
                        now,
                        &handler,
                        EventKind::Accompanied,
                        Some(call),
                        Some("three-way"),
                    );
                }
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
                let queue = self
                    .router
                    .board()
                    .record(call)
                    .and_then(|r| r.queue.clone());
                self.cti.publish(CtiEvent {
                    at: now.wall,
                    seat: None,
                    call: Some(call.to_string()),
                    kind: "alert".into(),
                    detail: json!({
                        "reason": "p0_unaccompanied",
                        "seat": seat,
                        "queue": queue,
                        "overflow": !reachable,
                    }),
                });
            }
            CallOutput::Finished(record) => {
                let end = record.ended_at;
                for h in record.handlers.iter().filter(|h| h.until == end) {
                    if h.seat != Party::EXTERNAL_NAME {
                        self.seat_log(
                            now,
                            &h.seat,
                            EventKind::CallEnd,
                            Some(&record.id),
                            h.left.as_deref(),
                        );
                    }
                }
                self.cti.publish(CtiEvent {
                    at: now.wall,
                    seat: None,
                    call: Some(record.id.clone()),
                    kind: "call_end".into(),
                    detail: json!({
                        "line": record.line,
                        "outcome": record.outcome,
                        "seat": record.seat,
                        "urgency": record.urgency,
                    }),
                });
            }
            _ => {}
        }
    }

    /// Seats currently handling the call.
    pub(super) fn open_handlers(&self, call: &str) -> Vec<String> {
        self.router
            .board()
            .record(call)
            .map(|r| {
                r.handlers
                    .iter()
                    .filter(|h| h.until.is_none() && h.seat != Party::EXTERNAL_NAME)
                    .map(|h| h.seat.clone())
                    .collect()
            })
            .unwrap_or_default()
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

/// A seat request the Router refused, as the CTI says it.
fn refused(e: SeatRequestError) -> CtiError {
    match e {
        SeatRequestError::NoCall => CtiError::NoCall,
        SeatRequestError::Conflict(why) => CtiError::Conflict(why),
        SeatRequestError::Invalid(why) => CtiError::Invalid(why),
        SeatRequestError::UnknownTarget(target) => CtiError::UnknownTarget(target),
    }
}
