//! The simulated world: phones that answer, refuse or stay silent, ARMs and regulators who
//! talk then end or escalate, callers who lose patience, seats that drop off the network.
//! It reacts to the switchboard's outputs as the SIP driver does.

use super::*;
use crate::acd::{ARM_ROLE, CallRequest};
use crate::call::tests_support::arrival;
use crate::cti::TransferMode;

impl Sim {
    pub(super) fn apply(&mut self, event: Event) {
        match event {
            Event::Arrive { call, line } => self.arrive(call, line),
            Event::Answer { seat, leg } => {
                if let Some(call) = self.leg_call(&seat, leg, false) {
                    self.answering = Some(seat.clone());
                    let out = self.feed(CallInput::SeatAnswered {
                        call: CallId::from(call.clone()),
                        seat: seat.clone(),
                    });
                    self.answering = None;
                    let connected = out.iter().any(|o| match o {
                        CallOutput::Bridge { call: c, seat: s } => *c == call && *s == seat,
                        CallOutput::Conference { call: c } => *c == call,
                        _ => false,
                    });
                    assert!(connected, "{seat} answered {call} while ringing: {out:?}");
                }
            }
            Event::Reject { seat, leg } => self.offer_failed(seat, leg, Some(486)),
            Event::Unreachable { seat, leg } => self.offer_failed(seat, leg, None),
            Event::LateAnswer { seat, call } => {
                // A phone ringing again has a new dialog: its 200 would not be this one.
                if self.legs.contains_key(&seat) {
                    return;
                }
                self.late.push((call.clone(), seat.clone()));
                self.feed(CallInput::SeatAnswered {
                    call: CallId::from(call.clone()),
                    seat: seat.clone(),
                });
                assert!(
                    !self.late.contains(&(call.clone(), seat.clone())),
                    "late answer of {seat} for {call} not hung up"
                );
            }
            Event::TalkEnd { seat, turn } => {
                let Some(leg) = self.legs.get(&seat).filter(|l| l.turn == turn) else {
                    return;
                };
                let call = leg.call.clone();
                match self.calls.get(&call).map(|c| c.stage.clone()) {
                    Some(Stage::Talking(s)) if s == seat => self.done_talking(&call, &seat),
                    Some(Stage::Conference { joined, .. }) if joined == seat => {
                        self.seat_gone(&call, &seat);
                    }
                    _ => {}
                }
            }
            Event::ArmLeaves { seat, leg } => {
                let Some(call) = self.leg_call(&seat, leg, true) else {
                    return;
                };
                let stage = self.calls.get(&call).map(|c| c.stage.clone());
                match stage {
                    Some(Stage::Accompanying(arm)) if arm == seat => {
                        let out = self.seat_gone(&call, &seat);
                        Checks::caller_held(&out, &call, &seat);
                    }
                    Some(Stage::Conference { arm, .. }) if arm == seat => {
                        self.seat_gone(&call, &seat);
                    }
                    _ => {}
                }
            }
            Event::GiveUp { call, spell } => {
                if self
                    .calls
                    .get(&call)
                    .is_some_and(|c| c.stage == Stage::Waiting && c.spell == spell)
                {
                    self.caller_gone(call);
                }
            }
            Event::HangUp { call } => {
                if self.calls.contains_key(&call) {
                    self.caller_gone(call);
                }
            }
            Event::CallerLost { call } => {
                let Some(c) = self.calls.get_mut(&call) else {
                    return;
                };
                c.caller_gone = true;
                // Invariant 10: whatever it was doing, a lost caller's call ends at once
                // `caller_lost`, every seat on it released (the Finished check: no leg
                // left open, the caller released).
                let detail = "sim".to_string();
                let input = CallInput::CallerLost {
                    call: CallId::from(call.clone()),
                    detail,
                };
                let out = self.feed(input);
                let lost = out.iter().any(|o| {
                    matches!(o, CallOutput::Finished(r)
                        if r.id == call && r.outcome == Some(Outcome::CallerLost)
                            && r.handlers.iter().filter(|h| h.until == r.ended_at)
                                .all(|h| h.left.as_deref() == Some("caller_lost")))
                });
                assert!(lost, "{call} lost but not ended: {out:?}");
            }
            Event::Unpause { seat } => {
                // An autopause ends by itself: invariant 8 checks that it does.
                let autopaused =
                    self.board.acd().seat(&seat).is_some_and(|s| {
                        matches!(s.state, SeatState::Paused { until: Some(_), .. })
                    });
                if !autopaused {
                    self.board.unpause(Now::at(self.now), &seat);
                    self.drain();
                }
            }
            Event::Online { seat } => {
                self.feed(CallInput::SeatOnline { seat });
            }
            Event::Chaos => self.chaos(),
        }
    }

    fn arrive(&mut self, call: String, line: u8) {
        self.calls.insert(
            call.clone(),
            WorldCall {
                line,
                queue: ("arm".into(), ARM_ROLE.into()),
                stage: Stage::Waiting,
                spell: 0,
                hops: 0,
                caller_gone: false,
                caller_released: false,
            },
        );
        self.checks.arrived();
        let (name, called) = if line == 0 {
            ("samu", "15")
        } else {
            ("sas", "116117")
        };
        self.feed(arrival(&call, name, called));
        self.checks
            .enqueued(&call, ARM_ROLE, Urgency::Nr, line, self.now);
        let request = CallRequest::new(ARM_ROLE, line);
        if self
            .board
            .enqueue(Now::at(self.now), &call, "arm", &request)
        {
            self.drain();
            return;
        }
        // Invariant 9: a call the full queue refused is not stranded: with no overflow in
        // this plan, it is refused busy at once, as the driver does.
        self.drain();
        let out = self.feed(CallInput::QueueFull {
            call: CallId::from(call.clone()),
        });
        let refused = out.iter().any(|o| {
            matches!(o, CallOutput::Finished(r)
                if r.id == call && r.outcome == Some(Outcome::QueueFull))
        });
        assert!(
            refused,
            "{call} refused by the full queue but not ended: {out:?}"
        );
        self.wait_again(&call);
    }

    /// The call a seat's leg carries, if that leg is still `leg` and talking or not.
    fn leg_call(&self, seat: &str, leg: u64, talking: bool) -> Option<String> {
        self.legs
            .get(seat)
            .filter(|l| l.id == leg && l.talking == talking)
            .map(|l| l.call.clone())
    }

    fn offer_failed(&mut self, seat: SeatId, leg: u64, status: Option<u16>) {
        if let Some(call) = self.leg_call(&seat, leg, false) {
            self.legs.remove(&seat);
            self.feed(CallInput::SeatFailed {
                call: call.into(),
                seat,
                status,
            });
        }
    }

    /// The seat's BYE.
    fn seat_gone(&mut self, call: &str, seat: &str) -> Vec<CallOutput> {
        self.legs.remove(seat);
        self.checks.call_ended_for(seat, self.now);
        self.feed(CallInput::SeatGone {
            call: call.into(),
            seat: seat.into(),
        })
    }

    fn caller_gone(&mut self, call: String) {
        if let Some(c) = self.calls.get_mut(&call) {
            c.caller_gone = true;
        }
        self.feed(CallInput::CallerGone { call: call.into() });
    }

    /// A new waiting spell: the caller's patience is drawn for it.
    pub(super) fn wait_again(&mut self, call: &str) {
        let Some(c) = self.calls.get_mut(call) else {
            return;
        };
        c.stage = Stage::Waiting;
        c.spell += 1;
        let spell = c.spell;
        let patience = match self.rng.next() % 10 {
            0 => self.rng.between(5 * SECOND, MINUTE),
            1 | 2 => self.rng.between(10 * MINUTE, 30 * MINUTE),
            _ => self.rng.between(2 * MINUTE, 10 * MINUTE),
        };
        let call = call.to_string();
        self.at(patience, Event::GiveUp { call, spell });
    }

    /// The talking seat ends the call or escalates it: ARMs to a regulator (P0 always
    /// accompanied), regulators AMU ⇄ libéral.
    fn done_talking(&mut self, call: &str, seat: &str) {
        let role = self.role(seat);
        let hops = self.calls.get(call).map_or(0, |c| c.hops);
        if role == ARM_ROLE && hops == 0 && self.rng.chance(45) {
            let urgency = match self.rng.next() % 20 {
                0 => Urgency::P0,
                1..=6 => Urgency::P1,
                7..=13 => Urgency::P2,
                _ => Urgency::P3,
            };
            let target = match (urgency, self.rng.next() % 10) {
                (Urgency::P0, _) | (_, 0..=5) => AMU,
                (_, 6..=8) => LIBERAL,
                _ => PSY,
            };
            let asked = if target == AMU && self.rng.chance(25) {
                TransferMode::Accompanied
            } else {
                TransferMode::Blind
            };
            self.escalate(call, seat, target, asked, Some(urgency));
        } else if (role == AMU.1 || role == LIBERAL.1) && hops < 3 && self.rng.chance(20) {
            let target = if role == AMU.1 { LIBERAL } else { AMU };
            self.escalate(call, seat, target, TransferMode::Blind, None);
        } else if self.rng.chance(3) {
            // Its browser died (WebRTC failed): the caller waits again.
            self.legs.remove(seat);
            self.checks.call_ended_for(seat, self.now);
            self.feed(CallInput::SeatLost {
                call: call.into(),
                seat: seat.into(),
            });
        } else {
            self.seat_gone(call, seat);
        }
    }

    /// The seat talking with the caller was lost: the call waits in its last queue again,
    /// as the driver does it.
    pub(super) fn requeue(&mut self, call: &str) {
        let Some(c) = self.calls.get(call) else {
            return;
        };
        let ((step, role), line) = (c.queue.clone(), c.line);
        let urgency = self.board.urgency(call).unwrap_or_default();
        let kind = "requeued, seat lost".to_string();
        self.checks
            .escalated(kind, call, &role, urgency, line, self.now);
        self.wait_again(call);
        let request = CallRequest::new(&role, line);
        let taken = self.board.enqueue(Now::at(self.now), call, &step, &request);
        assert!(taken, "{call} coming back is never refused");
        self.drain();
    }

    fn escalate(
        &mut self,
        call: &str,
        seat: &str,
        (step, role): (&str, &str),
        asked: TransferMode,
        urgency: Option<Urgency>,
    ) {
        let now = self.now;
        let mode = self
            .board
            .transfer(Now::at(now), call, seat, step, asked, urgency)
            .expect("the talking seat may transfer");
        let urgency = self.board.urgency(call).unwrap_or_default();
        let expected = match urgency {
            Urgency::P0 => TransferMode::Accompanied,
            _ => asked,
        };
        assert_eq!(mode, expected, "{call} {urgency:?}");
        let Some(c) = self.calls.get_mut(call) else {
            return;
        };
        c.hops += 1;
        c.queue = (step.into(), role.into());
        let line = c.line;
        match mode {
            TransferMode::Blind => self.wait_again(call),
            TransferMode::Accompanied => {
                c.stage = Stage::Accompanying(seat.into());
                // The ARM gives up waiting with the caller after a while.
                let leg = self.legs[seat].id;
                let delay = self.rng.between(MINUTE, 5 * MINUTE);
                self.at(
                    delay,
                    Event::ArmLeaves {
                        seat: seat.into(),
                        leg,
                    },
                );
            }
        }
        let kind = format!("{} {mode:?} {urgency:?}", self.role(seat));
        self.checks.escalated(kind, call, role, urgency, line, now);
        let taken = self
            .board
            .enqueue(Now::at(now), call, step, &CallRequest::new(role, line));
        assert!(taken, "{call} transferred is never refused");
        self.drain();
    }

    fn chaos(&mut self) {
        let seats = plateau();
        let seat = seats[self.rng.next() as usize % seats.len()].0.clone();
        if self.rng.chance(50) {
            let was_with_caller = self
                .calls
                .iter()
                .find(|(_, c)| c.stage == Stage::Accompanying(SeatId::from(seat.clone())))
                .map(|(call, _)| call.clone());
            self.resetting = Some(SeatId::from(seat.clone()));
            // A reset lifts the wrap-up on purpose (the seat is forced clean).
            self.checks.wrap_up_lifted(&seat);
            self.board
                .seat_reset(Now::at(self.now), &seat)
                .expect("known seat");
            let out = self.drain();
            self.resetting = None;
            if let Some(call) = was_with_caller {
                Checks::caller_held(&out, &call, &seat);
            }
        } else {
            self.feed(CallInput::SeatOffline {
                seat: SeatId::from(seat.clone()),
            });
            let back = self.rng.between(30 * SECOND, 5 * MINUTE);
            self.at(
                back,
                Event::Online {
                    seat: SeatId::from(seat),
                },
            );
        }
    }
}
