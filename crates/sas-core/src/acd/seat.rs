//! One seat (an ARM's phone or console) and the states it moves through.

use crate::time::{EpochMillis, Mono};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

use crate::ids::CallId;
pub use crate::ids::SeatId;

/// Where a seat is. Exactly one at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "detail")]
pub enum SeatState {
    /// Not registered: never offered a call.
    Offline,
    /// Registered and waiting for a call.
    Available,
    /// Being offered a call; the offer ends at the deadline (ring-no-answer).
    Ringing {
        /// The call offered.
        call: CallId,
        /// When the offer is withdrawn.
        until: Mono,
    },
    /// On a call.
    Busy {
        /// The call taken.
        call: CallId,
    },
    /// After a call, until the deadline.
    WrapUp {
        /// When the seat becomes available again.
        until: Mono,
    },
    /// Taken out of distribution (by the seat, or by the ACD after a missed offer).
    Paused {
        /// Why.
        reason: PauseReason,
        /// When the ACD puts the seat back by itself (an autopause); `None`: until the
        /// seat or a supervisor resumes it.
        #[serde(skip_serializing_if = "Option::is_none")]
        until: Option<Mono>,
    },
}

/// Why a seat is paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PauseReason {
    /// The seat let an offer ring out.
    RingNoAnswer,
    /// The seat refused an offer.
    Rejected,
    /// The seat could not be reached (transport error, timeout).
    Unreachable,
    /// Asked by the seat or a supervisor.
    Requested,
    /// On a break.
    Break,
    /// Doing something else (training, admin work).
    OtherTask,
    /// Logged out of the console (CTI): out of distribution until the next login.
    LoggedOut,
}

impl PauseReason {
    /// A pause the ACD took for the seat (a missed offer), not one it asked for.
    pub fn is_auto(self) -> bool {
        matches!(
            self,
            PauseReason::RingNoAnswer | PauseReason::Rejected | PauseReason::Unreachable
        )
    }

    /// The label used in the API and the seat history.
    pub fn label(self) -> &'static str {
        match self {
            PauseReason::RingNoAnswer => "ring_no_answer",
            PauseReason::Rejected => "rejected",
            PauseReason::Unreachable => "unreachable",
            PauseReason::Requested => "requested",
            PauseReason::Break => "break",
            PauseReason::OtherTask => "other_task",
            PauseReason::LoggedOut => "logged_out",
        }
    }
}

impl SeatState {
    /// The label used in metrics and listings.
    pub fn label(&self) -> &'static str {
        match self {
            SeatState::Offline => "offline",
            SeatState::Available => "available",
            SeatState::Ringing { .. } => "ringing",
            SeatState::Busy { .. } => "busy",
            SeatState::WrapUp { .. } => "wrap_up",
            SeatState::Paused { .. } => "paused",
        }
    }

    /// All labels, so metrics can show zeros.
    pub const LABELS: [&'static str; 6] = [
        "offline",
        "available",
        "ringing",
        "busy",
        "wrap_up",
        "paused",
    ];
}

impl fmt::Display for SeatState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A seat as the ACD sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Seat {
    /// User name.
    pub id: SeatId,
    /// Role (`arm` takes entry calls).
    pub role: String,
    /// Current state.
    pub state: SeatState,
    /// Since when the seat has been in this state (its label: a new offer while ringing
    /// is not a new state), for the wallboard's time in state.
    pub state_since: Mono,
    /// Since when the seat has been idle (for longest-idle-first).
    pub idle_since: Mono,
    /// Calls answered since start (for fewest-calls).
    pub calls_taken: u64,
    /// Skills (`pédiatrie`, `langue:en`): the seat also serves the queues requiring them.
    pub skills: BTreeSet<String>,
    /// Wrap-up for this seat, overriding the queue's and the ACD's.
    pub wrap_up_ms: Option<EpochMillis>,
    /// Order of the last offer made to the seat, 0 if never (for round-robin).
    pub last_offer: u64,
    /// Wrap-up owed when the current call ends (fixed when it is answered).
    #[serde(skip)]
    pub(crate) wrap_after: EpochMillis,
    /// Asked to pause while on a call: paused (for this reason) when the call ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pause_after_call: Option<PauseReason>,
    /// End of the last wrap-up, kept while the seat is offline so that coming back online
    /// does not skip the rest of it.
    #[serde(skip)]
    pub(crate) wrap_until: Mono,
}
