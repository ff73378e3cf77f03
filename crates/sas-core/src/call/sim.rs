//! The whole regulation workflow on virtual time: a plateau of ARMs and regulators, a few
//! thousand 15 and 116 117 calls over four simulated hours, and a simulated world (phones,
//! people, callers) answering the switchboard's outputs the way the SIP driver and the
//! consoles do. Time jumps from one event or deadline to the next; [`checks`] asserts the
//! invariants as the run goes and at its end.

mod checks;
mod outputs;
mod world;

use super::tests_support::T0;
use super::*;
use crate::sim_rng::Rng;
use crate::time::SECOND;
use checks::Checks;
use std::collections::{BTreeMap, HashMap};

const MINUTE: EpochMillis = 60 * SECOND;
const RING_MS: EpochMillis = 15 * SECOND;
const WRAP_MS: EpochMillis = 10 * SECOND;
const AGING_STEP_MS: EpochMillis = 60 * SECOND;
const AUTOPAUSE_RESUME_MS: EpochMillis = 60 * SECOND;
/// New calls allowed to wait for an ARM; more are refused busy (no overflow in this plan).
const ARM_MAX_WAITING: usize = 30;
/// Arrivals stop after this; the run then drains.
const TRAFFIC_MS: EpochMillis = 240 * MINUTE;

/// Escalation targets: dial plan step and the role of its seats.
const AMU: (&str, &str) = ("amu", "regulateur_amu");
const LIBERAL: (&str, &str) = ("liberal", "regulateur_liberal");
const PSY: (&str, &str) = ("psy", "psy");

/// Something the world does at a given time.
#[derive(Debug)]
enum Event {
    /// A call arrives on the 15 (line 0) or the 116 117 (line 1).
    Arrive {
        call: String,
        line: u8,
    },
    /// The ringing phone picks up, refuses (486) or turns out unreachable.
    Answer {
        seat: SeatId,
        leg: u64,
    },
    Reject {
        seat: SeatId,
        leg: u64,
    },
    Unreachable {
        seat: SeatId,
        leg: u64,
    },
    /// A 200 that crossed the CANCEL.
    LateAnswer {
        seat: SeatId,
        call: String,
    },
    /// The seat is done talking: it ends the call or escalates it.
    TalkEnd {
        seat: SeatId,
        turn: u64,
    },
    /// The ARM leaves an accompanied transfer or the three-way call.
    ArmLeaves {
        seat: SeatId,
        leg: u64,
    },
    /// The waiting caller loses patience (only in the waiting spell it was drawn for).
    GiveUp {
        call: String,
        spell: u64,
    },
    /// The caller hangs up mid-call.
    HangUp {
        call: String,
    },
    /// The caller's phone vanished (no BYE) and the driver's probe found it gone.
    CallerLost {
        call: String,
    },
    Unpause {
        seat: SeatId,
    },
    Online {
        seat: SeatId,
    },
    /// A supervisor reset or a registration lost, on a random seat.
    Chaos,
}

/// Where a call is, as the world sees it.
#[derive(Debug, Clone, PartialEq)]
enum Stage {
    Waiting,
    Talking(SeatId),
    Accompanying(SeatId),
    Conference { arm: SeatId, joined: SeatId },
}

#[derive(Debug)]
struct WorldCall {
    line: u8,
    /// The dial plan step and role of the queue it last waited in.
    queue: (String, String),
    stage: Stage,
    /// Waiting spells so far (patience is drawn per spell).
    spell: u64,
    hops: u8,
    caller_gone: bool,
    caller_released: bool,
}

/// A seat's phone leg: ringing, or talking once bridged.
#[derive(Debug)]
struct Leg {
    id: u64,
    call: String,
    talking: bool,
    /// The pending `TalkEnd` for this leg.
    turn: u64,
}

struct Sim {
    board: Switchboard,
    now: EpochMillis,
    events: BTreeMap<(EpochMillis, u64), Event>,
    seq: u64,
    rng: Rng,
    calls: HashMap<String, WorldCall>,
    legs: HashMap<SeatId, Leg>,
    /// Seat whose answer is being fed (the one that joins a conference).
    answering: Option<SeatId>,
    /// Seat being reset: the switchboard hangs its leg up, without wrap-up.
    resetting: Option<SeatId>,
    /// Late answers sent, waiting for their `HangUpSeat`.
    late: Vec<(String, SeatId)>,
    checks: Checks,
}

fn plateau() -> Vec<(String, String)> {
    let mut seats = Vec::new();
    for (prefix, role, n) in [
        ("arm", "arm", 20),
        ("amu", AMU.1, 8),
        ("lib", LIBERAL.1, 6),
        ("psy", PSY.1, 3),
    ] {
        seats.extend((1..=n).map(|i| (format!("{prefix}{i:02}"), role.to_string())));
    }
    seats
}

impl Sim {
    fn new(seed: u64) -> Self {
        let settings = SwitchboardSettings {
            acd: AcdSettings {
                ring_timeout_ms: RING_MS,
                wrap_up_ms: WRAP_MS,
                autopause: true,
                autopause_resume_ms: AUTOPAUSE_RESUME_MS,
                autopause_burst: 3,
                aging_step_ms: AGING_STEP_MS,
            },
            misdial_threshold_ms: 15 * SECOND,
        };
        let seats = plateau();
        let mut board = Switchboard::new(settings, &seats, Now::at(T0));
        let limited = QueueSettings {
            max_waiting: Some(ARM_MAX_WAITING),
            ..Default::default()
        };
        board.set_queue(QueueKey::role(crate::acd::ARM_ROLE), limited);
        let mut sim = Self {
            board,
            now: T0,
            events: BTreeMap::new(),
            seq: 0,
            rng: Rng(seed),
            calls: HashMap::new(),
            legs: HashMap::new(),
            answering: None,
            resetting: None,
            late: Vec::new(),
            checks: Checks::default(),
        };
        for (seat, _) in &seats {
            sim.feed(CallInput::SeatOnline {
                seat: SeatId::from(seat.clone()),
            });
        }
        sim.schedule_traffic();
        sim
    }

    fn at(&mut self, delay: EpochMillis, event: Event) {
        self.seq += 1;
        self.events.insert((self.now + delay, self.seq), event);
    }

    /// 15 calls every ~10 s and 116 117 calls every ~30 s on average, twice as many during
    /// two peaks; a chaos event every few minutes.
    fn schedule_traffic(&mut self) {
        for (line, mean_gap) in [(0u8, 10 * SECOND), (1, 30 * SECOND)] {
            let mut t = 0;
            while t < TRAFFIC_MS {
                let peak = (60..90).contains(&(t / MINUTE)) || (180..200).contains(&(t / MINUTE));
                let gap = if peak { mean_gap / 2 } else { mean_gap };
                t += self.rng.between(1, 2 * gap);
                let call = format!("l{line}-{t:09}");
                // One caller in fifty vanishes at some point of its call.
                if self.rng.chance(2) {
                    let lost = t + self.rng.between(30 * SECOND, 10 * MINUTE);
                    let ghost = call.clone();
                    self.at(lost, Event::CallerLost { call: ghost });
                }
                self.at(t, Event::Arrive { call, line });
            }
        }
        let mut t = 0;
        while t < TRAFFIC_MS {
            t += self.rng.between(MINUTE, 6 * MINUTE);
            self.at(t, Event::Chaos);
        }
    }

    fn run(&mut self) {
        loop {
            let next_event = self.events.keys().next().map(|k| k.0);
            match (next_event, self.board.poll_timeout().map(Mono::as_millis)) {
                (None, None) => break,
                (e, Some(t)) if e.is_none_or(|e| t < e) => {
                    self.now = t;
                    self.board.handle_timeout(Now::at(t));
                    self.drain();
                }
                _ => {
                    if let Some(((t, _), event)) = self.events.pop_first() {
                        self.now = t;
                        self.apply(event);
                    }
                }
            }
        }
    }

    /// Feeds an input and carries out what comes out; returns the outputs.
    fn feed(&mut self, input: CallInput) -> Vec<CallOutput> {
        self.board.handle(Now::at(self.now), input);
        self.drain()
    }

    fn drain(&mut self) -> Vec<CallOutput> {
        self.checks.autopauses_due(self.now);
        let outputs: Vec<CallOutput> = std::iter::from_fn(|| self.board.poll_output()).collect();
        for out in &outputs {
            self.react(out);
        }
        outputs
    }

    fn role(&self, seat: &str) -> String {
        self.board
            .acd()
            .seat(seat)
            .map(|s| s.role.clone())
            .unwrap_or_default()
    }
}

fn simulate(seed: u64) {
    let mut sim = Sim::new(seed);
    sim.run();
    sim.checks.at_end(&sim.board, sim.calls.len());
    sim.checks.report(seed);
}

#[test]
fn four_hours_of_regulation_seed_1() {
    simulate(0x9E37_79B9_7F4A_7C15);
}

#[test]
fn four_hours_of_regulation_seed_2() {
    simulate(0xD1B5_4A32_D192_ED03);
}

#[test]
fn four_hours_of_regulation_seed_3() {
    simulate(0x2545_F491_4F6C_DD1D);
}
