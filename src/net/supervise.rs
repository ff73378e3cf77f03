//! The call driver's side of supervisors' actions on calls and seats (listen, whisper,
//! barge, take over, unpause, log out, move a waiting call): the Router decides, this
//! writes the audit log (who, what, when, on what) and the seats' history, counts it
//! ([`metrics`]), and tells the consoles.

pub mod metrics;

use super::calls::CallDriver;
use super::cti::refused;
use crate::call::router::{SeatRequest, SeatRequestError};
use crate::cti::{CtiError, CtiEvent, SupervisorAction};
use crate::store::audit::AuditEntry;
use crate::store::record::EventKind;
use crate::time::Now;
use serde_json::{Value, json};

impl CallDriver {
    /// Carries out a supervisor's action for `by`; audited once done.
    pub(super) fn supervise(
        &mut self,
        now: Now,
        by: &str,
        action: SupervisorAction,
    ) -> Result<Value, CtiError> {
        let (name, target) = action.audited();
        let target = target.to_string();
        let (answer, detail) = self.act(now, by, action)?;
        self.audit_supervisor(now, by, &name, &target, detail);
        self.cti.publish(CtiEvent {
            at: now.wall,
            seat: None,
            call: None,
            kind: "supervisor_action".into(),
            detail: json!({ "action": name, "target": target, "by": by, "result": answer }),
        });
        Ok(answer)
    }

    /// The action itself: its answer and the audit entry's detail.
    fn act(
        &mut self,
        now: Now,
        by: &str,
        action: SupervisorAction,
    ) -> Result<(Value, Option<String>), CtiError> {
        match action {
            SupervisorAction::Monitor { call, seat, mode } => {
                let changing =
                    (self.router.monitoring(&call)).is_some_and(|m| m.supervisor == seat);
                let known = self.router.board().acd().seat(&seat).is_some();
                if !changing && known && !self.monitor_reachable(&seat) {
                    let why = format!("{seat} has no phone registered nor console audio to ring");
                    return Err(CtiError::Conflict(why));
                }
                self.router
                    .monitor(now, &call, &seat, mode)
                    .map_err(refused)?;
                let m = self.router.monitoring(&call);
                let answered = m.is_some_and(|m| m.answered);
                let on = m.map(|m| m.seat.to_string());
                let answer = json!({
                    "call": call, "seat": seat, "mode": mode, "monitored": on,
                    "state": if answered { "answered" } else { "ringing" },
                });
                Ok((answer, Some(format!("supervisor {seat}"))))
            }
            SupervisorAction::StopMonitor { call, seat } => {
                (self.router)
                    .monitor_stop(now, &call, &seat)
                    .map_err(refused)?;
                let answer = json!({ "call": call, "seat": seat, "state": "stopped" });
                Ok((answer, Some(format!("supervisor {seat}"))))
            }
            SupervisorAction::TakeOver { call, seat } => {
                let replaced = (self.router)
                    .take_over(now, &call, &seat)
                    .map_err(refused)?;
                self.seat_log(
                    now,
                    &seat,
                    EventKind::Takeover,
                    Some(&call),
                    Some(&replaced),
                );
                let answer = json!({ "call": call, "seat": seat, "replaced": replaced });
                Ok((answer, Some(format!("{seat} replaces {replaced}"))))
            }
            SupervisorAction::Unpause { seat } => {
                self.seat_exists(&seat)?;
                (self.router)
                    .seat_request(now, &seat, SeatRequest::Resume)
                    .map_err(refused)?;
                self.seat_log(now, &seat, EventKind::Unpause, None, Some(by));
                Ok((self.seat_status(&seat), None))
            }
            SupervisorAction::Logout { seat } => {
                self.seat_exists(&seat)?;
                self.seat_log(now, &seat, EventKind::Logout, None, Some(by));
                self.console_audio(now, &seat, false);
                (self.router)
                    .seat_request(now, &seat, SeatRequest::Logout)
                    .map_err(refused)?;
                let status = self.seat_status(&seat);
                let detail = status["state"]["state"]
                    .as_str()
                    .filter(|s| *s == "busy")
                    .map(|_| "on a call: logged out at its end".to_string());
                Ok((status, detail))
            }
            SupervisorAction::Move {
                call,
                queue,
                priority,
            } => {
                let queue = (self.router)
                    .move_waiting(now, &call, queue.as_deref(), priority)
                    .map_err(refused)?;
                let urgency = self.router.board().urgency(&call);
                let label = urgency.map_or("NR", |u| u.label());
                let answer = json!({ "call": call, "queue": queue, "priority": urgency });
                Ok((answer, Some(format!("queue {queue} priority {label}"))))
            }
        }
    }

    /// A seat named by a supervisor must be one of the router's.
    fn seat_exists(&self, seat: &str) -> Result<(), CtiError> {
        match self.router.board().acd().seat(seat) {
            Some(_) => Ok(()),
            None => Err(refused(SeatRequestError::Invalid(format!(
                "unknown seat {seat}"
            )))),
        }
    }

    /// Writes a supervisor's action to the audit log and counts it. The action is done: a
    /// failed write is logged as an error, not undone.
    pub(super) fn audit_supervisor(
        &self,
        now: Now,
        by: &str,
        action: &str,
        target: &str,
        detail: Option<String>,
    ) {
        let entry = AuditEntry {
            at: now.wall,
            actor: by.into(),
            action: action.into(),
            target: target.into(),
            detail,
        };
        self.supervisor_actions.count(action);
        if let Err(e) = self.store.audit(&entry) {
            tracing::error!(%by, action, %target, error = %e, "supervisor action not audited");
        }
    }
}
