//! The world's side of the switchboard's outputs: what the SIP driver and the consoles do
//! with each (ring the phone, drop a leg, start talking, put the caller on hold), with the
//! checks that go with them.

use super::*;
use crate::acd::ARM_ROLE;

impl Sim {
    /// Carries out one output, as the SIP driver and the consoles would.
    pub(super) fn react(&mut self, out: &CallOutput) {
        let now = self.now;
        match out {
            CallOutput::RingSeat { call, seat } => {
                let role = self.role(seat);
                self.checks.offered(call, seat, &role, now, &self.legs);
                self.seq += 1;
                let leg = self.seq;
                self.legs.insert(
                    seat.clone(),
                    Leg {
                        id: leg,
                        call: call.to_string(),
                        talking: false,
                        turn: 0,
                    },
                );
                let seat = seat.clone();
                match self.rng.next() % 100 {
                    0..=87 => {
                        let delay = self.rng.between(2 * SECOND, RING_MS - SECOND);
                        self.at(delay, Event::Answer { seat, leg });
                    }
                    88..=92 => {} // rings out
                    93..=96 => {
                        let delay = self.rng.between(SECOND, 4 * SECOND);
                        self.at(delay, Event::Reject { seat, leg });
                    }
                    _ => {
                        let delay = self.rng.between(0, SECOND);
                        self.at(delay, Event::Unreachable { seat, leg });
                    }
                }
            }
            CallOutput::CancelSeat { call, seat } => {
                let seat = seat.seat().expect("no forwards in this simulation");
                let leg = self.legs.remove(seat);
                assert!(
                    leg.as_ref().is_some_and(|l| l.call == *call && !l.talking),
                    "CancelSeat {call} {seat} for leg {leg:?}"
                );
                if self.rng.chance(3) {
                    let (seat, call) = (seat.clone(), call.clone());
                    self.at(
                        30,
                        Event::LateAnswer {
                            seat,
                            call: call.into(),
                        },
                    );
                }
            }
            CallOutput::HangUpSeat { call, seat } => {
                self.hung_up(call, seat.seat().expect("no forwards in this simulation"))
            }
            CallOutput::Bridge { call, seat } => {
                let seat = seat.seat().expect("no forwards in this simulation");
                self.connected(call, seat);
                let Some(c) = self.calls.get_mut(call.as_str()) else {
                    return;
                };
                if c.stage == Stage::Waiting || matches!(c.stage, Stage::Accompanying(_)) {
                    self.checks.answered(call, now);
                }
                if let Stage::Conference { arm, joined } = &c.stage {
                    assert!(arm == seat || joined == seat, "{call} bridged to {seat}");
                    self.checks.conference_over(call, now);
                }
                c.stage = Stage::Talking(seat.clone());
                let talk = match self.role(seat).as_str() {
                    ARM_ROLE => self.rng.between(30 * SECOND, 3 * MINUTE),
                    r if r == PSY.1 => self.rng.between(2 * MINUTE, 10 * MINUTE),
                    _ => self.rng.between(MINUTE, 7 * MINUTE),
                };
                self.talk_for(seat, talk);
                if self.rng.chance(4) {
                    let call = call.clone();
                    let delay = self.rng.between(5 * SECOND, talk);
                    self.at(delay, Event::HangUp { call: call.into() });
                }
            }
            CallOutput::Conference { call } => {
                let joined = self
                    .answering
                    .clone()
                    .expect("an answer makes a conference");
                self.connected(call, &joined);
                let c = self.calls.get_mut(call.as_str()).expect("live call");
                let Stage::Accompanying(arm) = c.stage.clone() else {
                    panic!("{call} conference from {:?}", c.stage);
                };
                c.stage = Stage::Conference {
                    arm: arm.clone(),
                    joined: joined.clone(),
                };
                self.checks.answered(call, now);
                self.checks.conference(call, now);
                let leg = self.legs[&arm].id;
                let delay = self.rng.between(10 * SECOND, MINUTE);
                self.at(delay, Event::ArmLeaves { seat: arm, leg });
                if self.rng.chance(15) {
                    // The regulator leaves the three-way call first.
                    let talk = self.rng.between(5 * SECOND, 40 * SECOND);
                    self.talk_for(&joined, talk);
                }
            }
            CallOutput::Hold { call } => {
                let stage = self.calls.get(call.as_str()).map(|c| c.stage.clone());
                assert!(
                    matches!(stage, Some(Stage::Accompanying(_))),
                    "{call} held from {stage:?}"
                );
                self.wait_again(call);
            }
            CallOutput::Requeue { call } => self.requeue(call),
            CallOutput::Resume { call, .. } => panic!("{call}: the simulated seats never hold"),
            CallOutput::SeatLeft { call, .. } => {
                if let Some(Stage::Conference { .. }) =
                    self.calls.get(call.as_str()).map(|c| &c.stage)
                {
                    self.checks.conference_over(call, now);
                }
            }
            CallOutput::HangUpCaller { call } | CallOutput::RejectCaller { call, .. } => {
                if let Some(c) = self.calls.get_mut(call.as_str()) {
                    c.caller_released = true;
                }
            }
            CallOutput::Finished(record) => {
                let c = self.calls.remove(&record.id).expect("finished once");
                assert!(
                    c.caller_gone || c.caller_released,
                    "{} finished with the caller still on the line",
                    record.id
                );
                let open: Vec<&SeatId> = self
                    .legs
                    .iter()
                    .filter(|(_, l)| l.call == record.id)
                    .map(|(s, _)| s)
                    .collect();
                assert!(open.is_empty(), "{} finished with legs {open:?}", record.id);
                self.checks.finished(record, now);
            }
            CallOutput::SeatChanged { seat, from, to } => {
                self.checks.seat_changed(seat, from, to);
                if *to == "paused" {
                    // The console brings the seat back after a while.
                    let delay = self.rng.between(20 * SECOND, 2 * MINUTE);
                    self.at(delay, Event::Unpause { seat: seat.clone() });
                }
            }
            CallOutput::SeatAutopaused { seat, until, .. } => {
                self.checks.autopaused(seat, *until, self.now);
            }
            CallOutput::MissBurst { .. } => {}
            // The caller already waits on hold (`Hold`); the sim's plan has no overflow.
            CallOutput::Unaccompanied { .. } => {}
            CallOutput::Dial { .. } => panic!("no forwarding in this plan: {out:?}"),
        }
    }

    fn connected(&mut self, call: &str, seat: &str) {
        let leg = self.legs.get_mut(seat);
        assert!(
            leg.as_ref().is_some_and(|l| l.call == call),
            "{call} connected to {seat} without its leg"
        );
        if let Some(l) = leg {
            l.talking = true;
        }
    }

    fn talk_for(&mut self, seat: &str, talk: EpochMillis) {
        self.seq += 1;
        let turn = self.seq;
        if let Some(l) = self.legs.get_mut(seat) {
            l.turn = turn;
        }
        self.at(
            talk,
            Event::TalkEnd {
                seat: seat.into(),
                turn,
            },
        );
    }

    fn hung_up(&mut self, call: &str, seat: &str) {
        if let Some(i) = self.late.iter().position(|l| l.0 == call && l.1 == seat) {
            self.late.remove(i);
            return;
        }
        let leg = self.legs.remove(seat);
        assert!(
            leg.as_ref().is_some_and(|l| l.call == call && l.talking),
            "HangUpSeat {call} {seat} for leg {leg:?}"
        );
        let Some(c) = self.calls.get(call) else {
            return;
        };
        let resetting = self.resetting.as_deref() == Some(seat);
        if c.stage == Stage::Accompanying(seat.into()) {
            assert!(
                c.caller_gone || resetting,
                "{call}: the ARM {seat} was hung up during the accompanied transfer"
            );
        }
        if !resetting {
            self.checks.call_ended_for(seat, self.now);
        }
    }
}
