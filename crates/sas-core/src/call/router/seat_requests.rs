//! What a seat's console asks about its own state (log in and out, pause, resume, hold,
//! hang up, a supervisor's reset), decided by the Router: which requests fit the seat's
//! state, and what they do. The driver checks who asks (sessions), logs the seat history
//! and answers the console.

use super::{Router, RouterOutput};
use crate::acd::{PauseReason, SeatState, Urgency};
use crate::call::TransferError;
use crate::cti::TransferMode;
use crate::time::Now;
use thiserror::Error;

/// A seat's request about its own state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeatRequest {
    /// Logged in: a seat logged out is back in distribution.
    Login,
    /// Logged out: out of distribution (after its call, if it is on one).
    Logout,
    /// Pause (after its call, if it is on one).
    Pause(PauseReason),
    /// Back in distribution.
    Resume,
    /// Put its caller on hold, or take it back.
    Hold(bool),
    /// Hang up its call.
    Hangup,
}

/// Why a seat request was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SeatRequestError {
    /// The seat has no call to act on.
    #[error("no call in progress on this seat")]
    NoCall,
    /// The request does not fit the seat's or its call's state.
    #[error("not possible now: {0}")]
    Conflict(String),
    /// The seat (or the supervisor's target) is unknown.
    #[error("{0}")]
    Invalid(String),
    /// The transfer target is not in the call's dial plans.
    #[error("unknown transfer target: {0}")]
    UnknownTarget(String),
    /// No such live call (a supervisor's target).
    #[error("no such call")]
    UnknownCall,
}

impl From<TransferError> for SeatRequestError {
    fn from(e: TransferError) -> Self {
        SeatRequestError::Conflict(e.to_string())
    }
}

impl Router {
    /// Carries out `seat`'s request, or says why not. What the seats and calls do next
    /// comes out of [`Router::poll_output`].
    pub fn seat_request(
        &mut self,
        now: Now,
        seat: &str,
        request: SeatRequest,
    ) -> Result<(), SeatRequestError> {
        let state = self.board.acd().seat(seat).map(|s| s.state.clone());
        let Some(state) = state else {
            return Err(SeatRequestError::Invalid(format!("unknown seat {seat}")));
        };
        self.last = now;
        match request {
            SeatRequest::Login => {
                let logged_out = matches!(
                    state,
                    SeatState::Paused {
                        reason: PauseReason::LoggedOut,
                        ..
                    }
                );
                if logged_out {
                    self.board.unpause(now, seat);
                }
            }
            // On a call: it goes on; the seat leaves distribution when it ends.
            SeatRequest::Logout => {
                self.board.pause(now, seat, PauseReason::LoggedOut);
            }
            // On a call, the pause starts when the call ends (`pause_after_call`).
            SeatRequest::Pause(reason) if !self.board.pause(now, seat, reason) => {
                let why = format!("cannot pause while {}", state.label());
                return Err(SeatRequestError::Conflict(why));
            }
            SeatRequest::Pause(_) => {}
            SeatRequest::Resume if !self.board.unpause(now, seat) => {
                return Err(SeatRequestError::Conflict("the seat is not paused".into()));
            }
            SeatRequest::Resume => {}
            SeatRequest::Hold(held) => {
                let call = match state {
                    SeatState::Ringing { call, .. } | SeatState::Busy { call } => call,
                    _ => return Err(SeatRequestError::NoCall),
                };
                if !self.board.hold(now, &call, seat, held) {
                    let why = "only the seat talking with the caller alone may hold it";
                    return Err(SeatRequestError::Conflict(why.into()));
                }
            }
            SeatRequest::Hangup => match state {
                SeatState::Busy { call } => self.board.hang_up_seat(now, &call, seat),
                _ => return Err(SeatRequestError::NoCall),
            },
        }
        self.settle(now);
        Ok(())
    }

    /// `seat` hands `call` to `target` (an internal name or number of the call's plans),
    /// blind or accompanied (the switchboard makes a P0 accompanied): the call's dial plan
    /// goes on at the target's step. Returns the mode used and that step.
    pub fn transfer_request(
        &mut self,
        now: Now,
        call: &str,
        seat: &str,
        target: &str,
        mode: TransferMode,
        urgency: Option<Urgency>,
    ) -> Result<(TransferMode, String), SeatRequestError> {
        let internal = self
            .transfer_target(call, target)
            .ok_or_else(|| SeatRequestError::UnknownTarget(target.into()))?;
        self.last = now;
        let mode = self
            .board
            .transfer(now, call, seat, &internal.step, mode, urgency)?;
        if mode == TransferMode::Blind {
            // The seat is gone: silence until the target's hold audio (if any) starts.
            let play = self.next_play(call);
            self.outputs.push_back(RouterOutput::Play {
                call: call.into(),
                play,
                answer: false,
                ends: false,
                greeting: None,
                hold: None,
                reassurance: None,
                reassurance_every_ms: 0,
            });
        }
        let step = internal.step.clone();
        self.transfer(now, call, &internal, seat);
        self.settle(now);
        Ok((mode, step))
    }

    /// A supervisor puts `seat` back to a clean state (its call, if any, is withdrawn).
    pub fn reset_seat(&mut self, now: Now, seat: &str) -> Result<(), SeatRequestError> {
        self.last = now;
        self.board
            .seat_reset(now, seat)
            .map_err(|e| SeatRequestError::Invalid(e.to_string()))?;
        self.settle(now);
        Ok(())
    }
}

impl Router {
    /// A supervisor moves a waiting `call` to `queue` (a queue of the call's dial plans)
    /// and/or to `urgency`. It keeps its place in line by the time it has waited; its max
    /// wait and hold audio stay those of the step that queued it. Returns the queue.
    pub fn move_waiting(
        &mut self,
        now: Now,
        call: &str,
        queue: Option<&str>,
        urgency: Option<Urgency>,
    ) -> Result<String, SeatRequestError> {
        use crate::routing::flow::Instruction;
        let r = self.routes.get(call).ok_or(SeatRequestError::UnknownCall)?;
        let Some(Instruction::Queue {
            queue: current,
            priority,
            ..
        }) = &r.last_queue
        else {
            return Err(crate::call::SuperviseError::NotWaiting.into());
        };
        let name = queue.unwrap_or(current).to_string();
        let Some(def) = r.plans.queues.get(&name) else {
            let known: Vec<&str> = r.plans.queues.keys().map(String::as_str).collect();
            return Err(SeatRequestError::Invalid(format!(
                "unknown queue {name} (the call's dial plans have: {})",
                known.join(", ")
            )));
        };
        let request = crate::acd::CallRequest::new(&def.role, *priority);
        self.last = now;
        self.board
            .move_waiting(now, call, &name, &request, urgency)?;
        if let Some(Some(Instruction::Queue { queue, .. })) =
            self.routes.get_mut(call).map(|r| r.last_queue.as_mut())
        {
            // Waiting again after a lost seat means waiting in the queue it was moved to.
            *queue = name.clone();
        }
        self.settle(now);
        Ok(name)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{admit, outputs, router};
    use super::*;
    use crate::call::CallInput;
    use crate::call::tests_support::{T0, answered_by};

    #[test]
    fn pause_resume_logout_login_follow_the_seat_state() {
        let mut r = router();
        let t = Now::at(T0);
        assert!(matches!(
            r.seat_request(t, "nobody", SeatRequest::Login),
            Err(SeatRequestError::Invalid(_))
        ));
        r.handle_call(
            t,
            CallInput::SeatOnline {
                seat: "arm1".into(),
            },
        );
        assert_eq!(
            r.seat_request(t, "arm1", SeatRequest::Resume),
            Err(SeatRequestError::Conflict("the seat is not paused".into()))
        );
        assert_eq!(
            r.seat_request(t, "arm1", SeatRequest::Hangup),
            Err(SeatRequestError::NoCall)
        );
        r.seat_request(t, "arm1", SeatRequest::Logout).unwrap();
        let state = |r: &Router| r.board().acd().seat("arm1").unwrap().state.clone();
        assert!(matches!(
            state(&r),
            SeatState::Paused {
                reason: PauseReason::LoggedOut,
                ..
            }
        ));
        // Logging in again resumes a logged-out seat, not one on a break.
        r.seat_request(t, "arm1", SeatRequest::Login).unwrap();
        assert_eq!(state(&r), SeatState::Available);
        r.seat_request(t, "arm1", SeatRequest::Pause(PauseReason::Break))
            .unwrap();
        r.seat_request(t, "arm1", SeatRequest::Login).unwrap();
        assert!(matches!(
            state(&r),
            SeatState::Paused {
                reason: PauseReason::Break,
                ..
            }
        ));
        r.seat_request(t, "arm1", SeatRequest::Resume).unwrap();
        // A call: hold needs it answered, hang-up ends the seat's part.
        admit(&mut r, t, "c1");
        r.handle(
            t,
            super::super::RouterInput::PromptEnded {
                call: "c1".into(),
                play: 1,
            },
        );
        r.handle_timeout(t.plus(4_000));
        outputs(&mut r);
        assert!(matches!(state(&r), SeatState::Ringing { .. }));
        r.handle_call(t.plus(5_000), answered_by("c1", "arm1"));
        r.seat_request(t.plus(6_000), "arm1", SeatRequest::Hold(true))
            .unwrap();
        r.seat_request(t.plus(7_000), "arm1", SeatRequest::Hangup)
            .unwrap();
        assert!(matches!(state(&r), SeatState::WrapUp { .. }));
    }
}
