//! CTI (computer-telephony integration): what seats' consoles and supervisors ask of the
//! router, and the events they hear back.
//!
//! This module is the contract between the HTTP/WebSocket surface (`http::cti`) and the
//! call driver that owns the calls: a request goes to the driver as a [`CtiCommand`] with
//! a reply channel; everything that happens to seats and calls is published as a
//! [`CtiEvent`] on a broadcast channel, which each WebSocket filters for its seat (or not,
//! for supervisors).

pub mod notices;
pub mod views;

use crate::acd::{PauseReason, Urgency};
use crate::routing::plan::PlanSet;
use crate::store::record::Qualification;
use crate::time::EpochMillis;
use serde::Serialize;
use std::sync::Arc;
use thiserror::Error;
use tokio::sync::{broadcast, mpsc, oneshot};

pub use sas_core::cti::{MonitorMode, TransferMode};

/// What a seat (or a supervisor) asks.
#[derive(Debug, Clone, PartialEq)]
pub enum CtiRequest {
    /// The seat's state and its current call (line, caller, wait, route, handlers, file).
    Status,
    /// The console logged in: a seat paused as `logged_out` is back in distribution.
    Login,
    /// The console logged out: the seat leaves distribution (paused `logged_out`).
    Logout,
    /// Out of distribution, for a reason.
    Pause { reason: PauseReason },
    /// Back in distribution.
    Resume,
    /// Hang up the seat's current call (the seat's leg; the caller too if the seat was
    /// the last one with them).
    Hangup,
    /// Transfer the seat's current call to `target`: a queue or internal name of the dial
    /// plan (`amu`, `liberal`, `osnp`, `psy`, `3114`) or an internal number (`2001`).
    Transfer {
        target: String,
        mode: TransferMode,
        /// Hub Santé priority of the escalated call; P0 is always accompanied.
        urgency: Option<Urgency>,
    },
    /// Write qualification data on the seat's current call, or in wrap-up on its last one
    /// (until the seat is offered its next call).
    Qualify(Qualification),
    /// Put the seat's caller on hold (it hears the queue's hold audio) or take it back.
    Hold { held: bool },
    /// The console takes the seat's calls with audio in the browser (WebRTC): the router
    /// rings it with an `offer` event carrying its SDP. Off: calls go to the SIP phone.
    Audio { enabled: bool },
    /// The console answers the offered call with its WebRTC SDP answer.
    Answer { sdp: String },
    /// Supervisors: queues, waiting calls, seat states.
    Overview,
    /// Supervisors: force `seat` back to a clean state when its phone lost track (BYE
    /// lost, phone rebooted mid-call): its offer is withdrawn, its call hung up, its
    /// pause lifted.
    Reset { seat: String },
    /// Supervisors: every line of `plans` and whether it is switched to the backup centre.
    Lines { plans: PlansInForce },
    /// Supervisors: send `line`'s new calls (and, with `move_waiting`, its waiting ones)
    /// to the backup centre; audited as `by`.
    SwitchLine {
        line: String,
        reason: String,
        move_waiting: bool,
        by: String,
        plans: PlansInForce,
    },
    /// Supervisors: `line`'s new calls are queued again; audited as `by`.
    RestoreLine {
        line: String,
        reason: Option<String>,
        by: String,
    },
    /// Supervisors: an action on a call or a seat, audited as `by` (a supervisor's seat, or
    /// `admin`).
    Supervise {
        by: String,
        action: SupervisorAction,
    },
}

/// What a supervisor does to a call or a seat (each written to the audit log).
#[derive(Debug, Clone, PartialEq)]
pub enum SupervisorAction {
    /// Ring `seat`'s phone to listen, whisper or barge in on `call`; the same seat again
    /// changes the mode.
    Monitor {
        call: String,
        seat: String,
        mode: MonitorMode,
    },
    /// `seat` stops monitoring `call` (its phone is hung up).
    StopMonitor { call: String, seat: String },
    /// `seat`, monitoring `call`, takes it over from the seat talking with the caller.
    TakeOver { call: String, seat: String },
    /// Put a paused seat back in distribution.
    Unpause { seat: String },
    /// Log a seat out (after its call, if it is on one).
    Logout { seat: String },
    /// Move a waiting call to another queue of its dial plans and/or another priority.
    Move {
        call: String,
        queue: Option<String>,
        priority: Option<Urgency>,
    },
}

impl SupervisorAction {
    /// The audit log's action name and target.
    pub fn audited(&self) -> (String, &str) {
        match self {
            Self::Monitor { call, mode, .. } => (format!("call.{}", mode.label()), call),
            Self::StopMonitor { call, .. } => ("call.monitor_stop".into(), call),
            Self::TakeOver { call, .. } => ("call.takeover".into(), call),
            Self::Unpause { seat } => ("seat.unpause".into(), seat),
            Self::Logout { seat } => ("seat.logout".into(), seat),
            Self::Move { call, .. } => ("call.move".into(), call),
        }
    }
}

/// The dial plans in force when the HTTP side asked (compared by identity).
#[derive(Debug, Clone)]
pub struct PlansInForce(pub Arc<PlanSet>);

impl PartialEq for PlansInForce {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// A request from an authenticated seat, with where to send the answer.
#[derive(Debug)]
pub struct CtiCommand {
    /// The seat asking (from its session token).
    pub seat: String,
    pub request: CtiRequest,
    /// A JSON body on success.
    pub reply: Reply,
}

/// Where the driver sends a request's answer.
pub type Reply = oneshot::Sender<Result<serde_json::Value, CtiError>>;

/// Why a request was refused.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum CtiError {
    /// The seat has no call to act on.
    #[error("no call in progress on this seat")]
    NoCall,
    /// The action does not fit the call's or the seat's state.
    #[error("not possible now: {0}")]
    Conflict(String),
    /// The transfer target is not in the dial plan.
    #[error("unknown transfer target: {0}")]
    UnknownTarget(String),
    /// No such live call.
    #[error("no such call")]
    UnknownCall,
    /// A bad request body.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The call file could not be written to disk (retry).
    #[error("call file not stored: {0}")]
    Storage(String),
    /// The router is shutting down.
    #[error("router unavailable")]
    Unavailable,
}

/// Something that happened, for consoles and supervisors.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CtiEvent {
    pub at: EpochMillis,
    /// The seat this event is for (`None`: supervisors only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seat: Option<String>,
    /// The call concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call: Option<String>,
    /// `seat_state`, `offer`, `connect`, `transfer`, `call_end`, `queue`…
    pub kind: String,
    /// Kind-specific fields.
    pub detail: serde_json::Value,
}

/// Both ends of the CTI plumbing: the HTTP side sends commands and subscribes to events;
/// the driver receives commands and publishes events.
#[derive(Debug, Clone)]
pub struct CtiChannels {
    pub commands: mpsc::UnboundedSender<CtiCommand>,
    pub events: broadcast::Sender<CtiEvent>,
}

impl CtiChannels {
    /// New channels and the command receiver (for the driver). Events beyond `backlog`
    /// unread by a slow console are dropped for that console only (it is told it lagged).
    pub fn new(backlog: usize) -> (CtiChannels, mpsc::UnboundedReceiver<CtiCommand>) {
        let (commands, receiver) = mpsc::unbounded_channel();
        let (events, _) = broadcast::channel(backlog);
        (CtiChannels { commands, events }, receiver)
    }

    /// Sends `request` for `seat` to the driver and waits for its answer.
    pub async fn ask(
        &self,
        seat: &str,
        request: CtiRequest,
    ) -> Result<serde_json::Value, CtiError> {
        let (reply, answer) = oneshot::channel();
        let command = CtiCommand {
            seat: seat.into(),
            request,
            reply,
        };
        self.commands
            .send(command)
            .map_err(|_| CtiError::Unavailable)?;
        answer.await.unwrap_or(Err(CtiError::Unavailable))
    }

    /// Whether a console or supervisor listens: events nobody hears need not be built
    /// (one per seat history line, a JSON object each).
    pub fn listened(&self) -> bool {
        self.events.receiver_count() > 0
    }

    /// Publishes an event (nobody listening is fine).
    pub fn publish(&self, event: CtiEvent) {
        self.events.send(event).ok();
    }
}

#[cfg(test)]
mod tests {
    use super::CtiChannels;

    #[test]
    fn listened_while_a_console_or_supervisor_subscribes() {
        let (cti, _commands) = CtiChannels::new(8);
        assert!(!cti.listened());
        let console = cti.events.subscribe();
        assert!(cti.listened());
        drop(console);
        assert!(!cti.listened());
    }
}
