//! What a supervisor does to a live call on the switchboard: take it over from the seat
//! talking with the caller, or move a waiting call to another queue or priority. Who may
//! is the app's business; the Router keeps the monitor sessions (`router/monitor.rs`).

use super::transfer::end_handler;
use super::{Party, Phase, Switchboard};
use crate::acd::{CallRequest, SeatId, Urgency};
use crate::record::EventKind;
use crate::time::Now;
use thiserror::Error;

/// Why a supervisor's action on a call was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SuperviseError {
    /// No such live call.
    #[error("no such call")]
    NoCall,
    /// Only a call talking with one seat can be monitored or taken over.
    #[error("the call is not talking with a seat (waiting, in escalation or three-way)")]
    NotTalking,
    /// Only a call waiting in a queue can be moved.
    #[error("the call is not waiting in a queue")]
    NotWaiting,
    /// The supervisor's seat is ringing or on another call.
    #[error("{0} is on another call")]
    Busy(SeatId),
}

impl Switchboard {
    /// The seat talking alone with the caller, if one is (not a forward's far end, not
    /// an escalation or a three-way call).
    pub fn bridged_seat(&self, call: &str) -> Option<&SeatId> {
        match &self.calls.get(call)?.phase {
            Phase::Bridged {
                seat: Party::Seat(seat),
            } => Some(seat),
            _ => None,
        }
    }

    /// `supervisor` takes `call` over from the seat talking with the caller: that seat
    /// is hung up (wrap-up), the supervisor's seat is busy on the call and bridged to the
    /// caller (its leg is the monitor's, already answered). Returns the seat replaced.
    pub fn take_over(
        &mut self,
        now: Now,
        call: &str,
        supervisor: &str,
    ) -> Result<SeatId, SuperviseError> {
        let from = self.bridged_seat(call).ok_or(SuperviseError::NotTalking)?;
        let from = from.clone();
        if !self.acd.engage(now.mono, supervisor, call) {
            return Err(SuperviseError::Busy(supervisor.into()));
        }
        if let Some(c) = self.calls.get_mut(call) {
            let detail = Some(from.to_string());
            c.record
                .event(now.wall, EventKind::Takeover, Some(supervisor), detail);
            end_handler(&mut c.record, &from, now, "takeover");
            c.phase = Phase::Waiting;
        }
        self.release_seat(now, call, Party::Seat(from.clone()));
        self.connected(now, call, Party::Seat(supervisor.into()));
        self.drain_acd(now);
        Ok(from)
    }

    /// Moves a waiting call to `queue` (its `request`: role and line priority), with a
    /// new urgency if given. Its place in line still counts from when it entered its
    /// queue: a supervisor's move never sends a caller to the back. A seat ringing for it
    /// is cancelled; the new queue may offer it at once.
    pub fn move_waiting(
        &mut self,
        now: Now,
        call: &str,
        queue: &str,
        request: &CallRequest,
        urgency: Option<Urgency>,
    ) -> Result<(), SuperviseError> {
        let c = self.calls.get_mut(call).ok_or(SuperviseError::NoCall)?;
        let since = self.acd.queued_since(call);
        let Some(since) = since.filter(|_| c.phase.seeks_seat()) else {
            return Err(SuperviseError::NotWaiting);
        };
        if let Some(u) = urgency {
            c.urgency = u;
        }
        // Never refused for a full queue: the call is already the plateau's.
        let request = request.clone().with_urgency(c.urgency).readmitted();
        c.record.queue = Some(queue.to_string());
        let detail = format!(
            "{queue} priority {} urgency {} moved",
            request.line_priority,
            c.urgency.label()
        );
        c.record.enter_queue(now.wall, queue, detail);
        self.withdraw_offer(now, call);
        if let Err(e) = self.acd.enqueue_since(now.mono, call, &request, since) {
            // Only a call already queued is refused, and it was just withdrawn.
            self.queue_refused(now, call, &e);
        }
        self.drain_acd(now);
        Ok(())
    }
}
