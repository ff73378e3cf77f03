//! What seats' phones say mid-call, decided by the Router: a re-INVITE that holds or
//! resumes the caller (its SDP direction, read by the driver), and the hand-over of an
//! attended transfer (RFC 3891 Replaces) once the target's leg answered the re-INVITE.

use super::Router;
use crate::acd::SeatState;
use crate::call::TransferError;
use crate::time::Now;

impl Router {
    /// `seat`'s phone re-INVITEd the caller's dialog: it stops receiving (`held`) or
    /// receives again. A seat that is not the one talking with the caller changes nothing.
    pub fn phone_hold(&mut self, now: Now, call: &str, seat: &str, held: bool) {
        self.last = now;
        self.board.hold(now, call, seat, held);
        self.settle(now);
    }

    /// Whether `seat` may hand `call` over to `target`, whom it consulted on `consult`:
    /// only the seat whose phone placed the consultation call, talking on `call`, with
    /// `target` talking on `consult`.
    pub fn may_hand_over(&self, call: &str, seat: &str, consult: &str, target: &str) -> bool {
        let busy_on = |s: &str, c: &str| {
            let state = self.board.acd().seat(s).map(|s| &s.state);
            matches!(state, Some(SeatState::Busy { call }) if call == c)
        };
        self.dialled_by(consult) == Some(seat) && busy_on(seat, call) && busy_on(target, consult)
    }

    /// Attended transfer: `seat`, talking with the caller of `call`, hands it over to
    /// `target`, whom it consulted on `consult`. Refused when a party left meanwhile.
    pub fn hand_over(
        &mut self,
        now: Now,
        call: &str,
        seat: &str,
        consult: &str,
        target: &str,
    ) -> Result<(), TransferError> {
        self.last = now;
        let done = self.board.replace(now, call, seat, consult, target);
        self.settle(now);
        done
    }
}
