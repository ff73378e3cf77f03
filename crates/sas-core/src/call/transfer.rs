//! Escalation: a seat hands its call on (blind or accompanied), leaves it, pauses, writes
//! the call file. The dial plan decides where a transfer goes (the driver moves the call's
//! route to the target step, which queues or forwards it); this part keeps the seats, the
//! phases and the record right.

use super::{CallOutput, Party, Phase, Switchboard};
use crate::acd::{PauseReason, SeatId, Urgency};
use crate::cti::TransferMode;
use crate::record::{CallRecord, EndReason, EventKind, FileEntry, Outcome, Qualification};
use crate::time::Now;
use thiserror::Error;

/// Why a transfer was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TransferError {
    /// No such live call.
    #[error("no such call")]
    NoCall,
    /// The seat is not the one talking with the caller.
    #[error("{0} is not talking with the caller")]
    NotOnCall(SeatId),
}

impl Switchboard {
    /// `seat`, talking with the caller, hands the call on. Blind: the seat leaves (wrap-up)
    /// and the caller waits for the target. Accompanied (always for P0): the seat stays
    /// with the caller until the target answers. The driver then moves the call's dial
    /// plan to the target, which queues or forwards it.
    pub fn transfer(
        &mut self,
        now: Now,
        call: &str,
        seat: &str,
        target: &str,
        mode: TransferMode,
        urgency: Option<Urgency>,
    ) -> Result<TransferMode, TransferError> {
        let c = self.calls.get_mut(call).ok_or(TransferError::NoCall)?;
        if c.phase != (Phase::Bridged { seat: seat.into() }) {
            return Err(TransferError::NotOnCall(seat.into()));
        }
        if let Some(u) = urgency {
            c.urgency = u;
        }
        let mode = match c.urgency {
            Urgency::P0 => TransferMode::Accompanied,
            _ => mode,
        };
        let detail = format!("{target} {} {}", mode_label(mode), c.urgency.label());
        match mode {
            TransferMode::Blind => {
                c.record
                    .event(now.wall, EventKind::Transfer, Some(seat), Some(detail));
                end_handler(&mut c.record, seat, now, "transfer");
                c.phase = Phase::Waiting;
                self.release_seat(now, call, seat.into());
            }
            TransferMode::Accompanied => {
                c.record
                    .event(now.wall, EventKind::Accompanied, Some(seat), Some(detail));
                c.phase = Phase::Accompanying { seat: seat.into() };
            }
        }
        self.drain_acd(now);
        Ok(mode)
    }

    /// Attended transfer (RFC 3891 Replaces): `seat`, talking with the caller of `call`,
    /// called `target` on `consult` (the seat's phone is that call's caller) and now hands
    /// its caller over. `target` moves onto `call` (busy on it, not on `consult`), `seat`
    /// leaves for wrap-up, and `consult` ends (`replaced`) with its caller leg hung up; the
    /// driver has already moved the target's leg, so `consult` hangs up no seat.
    pub fn replace(
        &mut self,
        now: Now,
        call: &str,
        seat: &str,
        consult: &str,
        target: &str,
    ) -> Result<(), TransferError> {
        let bridged = |c: Option<&super::Call>, s: &str| {
            c.is_some_and(|c| c.phase == (Phase::Bridged { seat: s.into() }))
        };
        if !self.calls.contains_key(call) || !self.calls.contains_key(consult) {
            return Err(TransferError::NoCall);
        }
        if !bridged(self.calls.get(call), seat) {
            return Err(TransferError::NotOnCall(seat.into()));
        }
        if !bridged(self.calls.get(consult), target) {
            return Err(TransferError::NotOnCall(target.into()));
        }
        self.acd.move_call(now.mono, target, consult, call);
        if let Some(c) = self.calls.get_mut(call) {
            let detail = format!("{target} attended, replaces {consult}");
            c.record
                .event(now.wall, EventKind::Transfer, Some(seat), Some(detail));
            end_handler(&mut c.record, seat, now, "transfer");
            c.phase = Phase::Waiting;
        }
        self.release_seat(now, call, seat.into());
        self.connected(now, call, Party::from(target));
        self.event(
            now,
            consult,
            EventKind::Replaced,
            Some(target),
            Some(call.into()),
        );
        self.outputs.push_back(CallOutput::HangUpCaller {
            call: consult.into(),
        });
        self.finish(now, consult, Outcome::Answered, EndReason::Replaced);
        self.drain_acd(now);
        Ok(())
    }

    /// A seat left the call: its BYE came in (`hung_up_by` `None`), or the router hangs it
    /// up for the reason given (console, reset). The caller is never left alone with nobody coming:
    /// the last seat leaving ends the call; a seat leaving an accompanied transfer before
    /// the target answered puts the caller back on hold; one leaving the three-way call
    /// leaves the other with the caller.
    pub(super) fn seat_left(
        &mut self,
        now: Now,
        call: &str,
        party: &Party,
        hung_up_by: Option<&str>,
    ) {
        let Some(c) = self.calls.get_mut(call) else {
            return;
        };
        let stays = match &c.phase {
            Phase::Bridged { seat: s } if s == party => None,
            Phase::Accompanying { seat: s } if party.seat() == Some(s) => {
                Some(CallOutput::Hold { call: call.into() })
            }
            Phase::Conference { seat: s, joined } if party.seat() == Some(s) => {
                Some(CallOutput::Bridge {
                    call: call.into(),
                    seat: joined.clone(),
                })
            }
            Phase::Conference { seat: s, joined } if joined == party => Some(CallOutput::Bridge {
                call: call.into(),
                seat: Party::from(s.clone()),
            }),
            _ => return,
        };
        if let Some(seat) = party.seat() {
            self.acd.call_ended(now.mono, seat);
        }
        if hung_up_by.is_some() {
            self.outputs.push_back(CallOutput::HangUpSeat {
                call: call.into(),
                seat: party.clone(),
            });
        }
        let Some(out) = stays else {
            self.outputs
                .push_back(CallOutput::HangUpCaller { call: call.into() });
            let (outcome, why) = match (party, hung_up_by) {
                (Party::External, _) => (Outcome::Forwarded, EndReason::ExternalBye),
                (_, Some(why)) => (Outcome::Answered, why.into()),
                (_, None) => (Outcome::Answered, EndReason::SeatBye),
            };
            self.finish(now, call, outcome, why);
            self.drain_acd(now);
            return;
        };
        let Some(c) = self.calls.get_mut(call) else {
            return;
        };
        end_handler(&mut c.record, party.name(), now, "left");
        c.record
            .event(now.wall, EventKind::Left, Some(party.name()), None);
        self.outputs.push_back(CallOutput::SeatLeft {
            call: call.into(),
            seat: party.clone(),
        });
        c.held = false;
        c.phase = match &out {
            CallOutput::Bridge { seat, .. } => Phase::Bridged { seat: seat.clone() },
            // The number the seat accompanied the caller to still rings: it may answer.
            _ if c.dialling => Phase::Forwarding,
            _ => Phase::Waiting,
        };
        let alone =
            matches!(c.phase, Phase::Waiting | Phase::Forwarding) && c.urgency == Urgency::P0;
        self.outputs.push_back(out);
        if alone {
            self.p0_left_alone(now, call, party.name());
        }
        self.drain_acd(now);
    }

    /// The seat accompanying a P0 caller left before the target answered: the record and
    /// the supervisors are told, and the driver overflows the call at once when no seat of
    /// its queue could answer it.
    fn p0_left_alone(&mut self, now: Now, call: &str, seat: &str) {
        // Not queued: a forward rings (or its failure puts the call back in a queue).
        let reachable = self.acd.reachable(call).unwrap_or(true);
        let detail = if reachable { "queued" } else { "no_seat" };
        self.event(
            now,
            call,
            EventKind::P0Unaccompanied,
            Some(seat),
            Some(detail.into()),
        );
        self.outputs.push_back(CallOutput::Unaccompanied {
            call: call.into(),
            seat: seat.into(),
            reachable,
        });
    }

    /// A seat stays with the caller while the call is offered to its transfer target: the
    /// dial plan's announcements are not played then.
    pub fn accompanying(&self, call: &str) -> bool {
        matches!(
            self.calls.get(call).map(|c| &c.phase),
            Some(Phase::Accompanying { .. })
        )
    }

    /// `seat`'s media died while it talked with the caller alone: the caller waits again
    /// (never hung up for a browser that crashed); in a three-way call the others go on.
    pub(super) fn seat_lost(&mut self, now: Now, call: &str, seat: &str) {
        let Some(c) = self
            .calls
            .get_mut(call)
            .filter(|c| matches!(&c.phase, Phase::Bridged { seat: s } if s == seat))
        else {
            return self.seat_left(now, call, &seat.into(), None);
        };
        end_handler(&mut c.record, seat, now, "lost");
        c.record
            .event(now.wall, EventKind::SeatLost, Some(seat), None);
        c.phase = Phase::Waiting;
        self.acd.call_ended(now.mono, seat);
        self.outputs.push_back(CallOutput::SeatLeft {
            call: call.into(),
            seat: seat.into(),
        });
        self.outputs
            .push_back(CallOutput::Requeue { call: call.into() });
        self.drain_acd(now);
    }

    /// `seat` puts its caller on hold (`held`; its phone's re-INVITE, its console) or takes
    /// it back. The caller hears the queue's hold audio meanwhile, never a silence it could
    /// take for a dropped call. False when `seat` is not talking with the caller alone.
    pub fn hold(&mut self, now: Now, call: &str, seat: &str, held: bool) -> bool {
        let Some(c) = self
            .calls
            .get_mut(call)
            .filter(|c| matches!(&c.phase, Phase::Bridged { seat: s } if s == seat))
        else {
            return false;
        };
        if c.held == held {
            return true; // a session refresh, or a second click
        }
        c.held = held;
        let (kind, out) = if held {
            (EventKind::Hold, CallOutput::Hold { call: call.into() })
        } else {
            let seat = seat.into();
            (
                EventKind::Resume,
                CallOutput::Resume {
                    call: call.into(),
                    seat,
                },
            )
        };
        c.record.event(now.wall, kind, Some(seat), None);
        self.outputs.push_back(out);
        true
    }

    /// The console of `seat` hangs up its leg of the call.
    pub fn hang_up_seat(&mut self, now: Now, call: &str, seat: &str) {
        self.seat_left(now, call, &seat.into(), Some("seat_hangup"));
    }

    /// `seat` writes qualification data on the call. A priority becomes the call's urgency
    /// for its next queue.
    pub fn qualify(&mut self, now: Now, call: &str, seat: &str, data: Qualification) {
        let Some(c) = self.calls.get_mut(call) else {
            return;
        };
        if let Some(u) = data.priority {
            c.urgency = u;
        }
        c.record.add_file(FileEntry {
            at: now.wall,
            seat: seat.into(),
            data,
        });
    }

    /// The call's urgency (Hub Santé code).
    pub fn urgency(&self, call: &str) -> Option<Urgency> {
        self.calls.get(call).map(|c| c.urgency)
    }

    /// Records of the live calls.
    pub fn records(&self) -> impl Iterator<Item = &CallRecord> {
        self.calls.values().map(|c| &c.record)
    }

    /// Takes a seat out of distribution. False when it cannot be paused now (on a call).
    pub fn pause(&mut self, now: Now, seat: &str, reason: PauseReason) -> bool {
        let paused = self.acd.pause(now.mono, seat, reason);
        self.drain_acd(now);
        paused
    }

    /// Puts a paused seat back in distribution. False when it was not paused.
    pub fn unpause(&mut self, now: Now, seat: &str) -> bool {
        let resumed = self.acd.unpause(now.mono, seat);
        self.drain_acd(now);
        resumed
    }
}

/// Closes the seat's open handling of the call.
pub(super) fn end_handler(record: &mut CallRecord, seat: &str, now: Now, left: &str) {
    if let Some(h) = record
        .handlers
        .iter_mut()
        .rev()
        .find(|h| h.seat == seat && h.until.is_none())
    {
        h.until = Some(now.wall);
        h.left = Some(left.into());
    }
}

#[cfg(test)]
mod tests;

fn mode_label(mode: TransferMode) -> &'static str {
    match mode {
        TransferMode::Blind => "blind",
        TransferMode::Accompanied => "accompanied",
    }
}
