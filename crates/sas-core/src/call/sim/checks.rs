//! The invariants of the simulation, checked as outputs come out and at the end of a run,
//! and the figures it prints.

use super::{AGING_STEP_MS, AUTOPAUSE_RESUME_MS, Leg, WRAP_MS};
use crate::acd::{SeatId, Urgency};
use crate::call::{CallOutput, Switchboard};
use crate::record::CallRecord;
use crate::time::EpochMillis;
use std::collections::{BTreeMap, HashMap, HashSet};

/// One spell of a call in one queue, from its enqueue to its answer or its end.
#[derive(Debug, Clone)]
struct Spell {
    role: String,
    urgency: Urgency,
    /// Level before aging: 4 × urgency step + line (see `acd::priority`).
    level: u64,
    at: EpochMillis,
    first_offer: Option<EpochMillis>,
    end: EpochMillis,
    answered: bool,
}

impl Spell {
    /// Its place in line: P0 first by arrival, then the aged key.
    fn rank(&self) -> (u8, EpochMillis) {
        match self.urgency {
            Urgency::P0 => (0, self.at),
            _ => (1, self.at + self.level * AGING_STEP_MS),
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct Checks {
    arrived: usize,
    finished: HashSet<String>,
    outcomes: BTreeMap<&'static str, usize>,
    escalations: BTreeMap<String, usize>,
    queued: HashMap<String, Spell>,
    spells: Vec<Spell>,
    /// Label of each seat's state, from the `SeatChanged` outputs.
    seat_states: HashMap<SeatId, &'static str>,
    /// When each seat last finished a call (it owes a wrap-up from then).
    call_ended: HashMap<SeatId, EpochMillis>,
    /// Three-way spells of each live call.
    conferences: HashMap<String, Vec<(EpochMillis, Option<EpochMillis>)>>,
    offers: usize,
    /// Seats the ACD paused, and when they are due back.
    autopaused: HashMap<SeatId, EpochMillis>,
    autopauses: usize,
}

impl Checks {
    pub(super) fn arrived(&mut self) {
        self.arrived += 1;
    }

    pub(super) fn enqueued(
        &mut self,
        call: &str,
        role: &str,
        urgency: Urgency,
        line: u8,
        now: EpochMillis,
    ) {
        let step = match urgency {
            Urgency::P0 | Urgency::P1 => 0,
            Urgency::P2 => 1,
            Urgency::P3 => 2,
            Urgency::Nr => 3,
        };
        let spell = Spell {
            role: role.into(),
            urgency,
            level: 4 * step + u64::from(line),
            at: now,
            first_offer: None,
            end: now,
            answered: false,
        };
        let before = self.queued.insert(call.into(), spell);
        assert!(before.is_none(), "{call} queued twice");
    }

    pub(super) fn escalated(
        &mut self,
        kind: String,
        call: &str,
        role: &str,
        urgency: Urgency,
        line: u8,
        now: EpochMillis,
    ) {
        *self.escalations.entry(kind).or_default() += 1;
        self.enqueued(call, role, urgency, line, now);
    }

    /// Invariants 2, 4, 5 and 6 at each offer: the seat is free (no leg, just turned
    /// ringing), past its wrap-up, of the queue's role, and no call ranked before this one
    /// waits unoffered in that queue (P0 first, then the aged key).
    pub(super) fn offered(
        &mut self,
        call: &str,
        seat: &str,
        role: &str,
        now: EpochMillis,
        legs: &HashMap<SeatId, Leg>,
    ) {
        self.offers += 1;
        if let Some(leg) = legs.get(seat) {
            panic!("{seat} offered {call} while on {leg:?}");
        }
        assert_eq!(self.seat_states.get(seat), Some(&"ringing"), "{seat}");
        if let Some(end) = self.call_ended.get(seat) {
            assert!(
                now >= end + WRAP_MS,
                "{seat} offered {call} {} ms after its call ended",
                now - end
            );
        }
        let x = self.queued.get(call).expect("offered calls are queued");
        assert_eq!(x.role, role, "{call} offered to {seat}");
        let ringing: HashSet<&str> = legs
            .values()
            .filter(|l| !l.talking)
            .map(|l| l.call.as_str())
            .collect();
        for (other, y) in &self.queued {
            let waits = y.role == x.role && other != call && !ringing.contains(other.as_str());
            assert!(
                !(waits && y.rank() < x.rank()),
                "{call} ({:?}, queued {}) offered to {seat} while {other} ({:?}, queued {}) waits",
                x.urgency,
                x.at,
                y.urgency,
                y.at
            );
        }
        if let Some(x) = self.queued.get_mut(call) {
            x.first_offer.get_or_insert(now);
        }
    }

    /// A seat answered: the call's spell in the queue ends.
    pub(super) fn answered(&mut self, call: &str, now: EpochMillis) {
        let mut spell = self
            .queued
            .remove(call)
            .expect("answered calls were queued");
        spell.end = now;
        spell.answered = true;
        self.spells.push(spell);
    }

    pub(super) fn conference(&mut self, call: &str, now: EpochMillis) {
        self.conferences
            .entry(call.into())
            .or_default()
            .push((now, None));
    }

    pub(super) fn conference_over(&mut self, call: &str, now: EpochMillis) {
        if let Some((_, until)) = self.conferences.get_mut(call).and_then(|c| c.last_mut()) {
            until.get_or_insert(now);
        }
    }

    pub(super) fn call_ended_for(&mut self, seat: &str, now: EpochMillis) {
        self.call_ended.insert(seat.into(), now);
    }

    pub(super) fn wrap_up_lifted(&mut self, seat: &str) {
        self.call_ended.remove(seat);
    }

    /// Invariant 8: an autopause ends by itself, when it said.
    pub(super) fn autopaused(&mut self, seat: &str, until: Option<EpochMillis>, now: EpochMillis) {
        let until = until.unwrap_or_else(|| panic!("{seat} autopaused for good"));
        assert_eq!(until, now + AUTOPAUSE_RESUME_MS, "{seat}");
        self.autopaused.insert(seat.into(), until);
        self.autopauses += 1;
    }

    /// Invariant 8: no autopaused seat is still out after its time.
    pub(super) fn autopauses_due(&self, now: EpochMillis) {
        for (seat, until) in &self.autopaused {
            assert!(
                *until >= now,
                "{seat} still autopaused at {now}, due back at {until}"
            );
        }
    }

    /// Invariant 2: every seat is in one state, and the changes chain up.
    pub(super) fn seat_changed(&mut self, seat: &str, from: &'static str, to: &'static str) {
        if from == "paused" {
            self.autopaused.remove(seat);
        }
        let was = self
            .seat_states
            .insert(seat.into(), to)
            .unwrap_or("offline");
        assert_eq!(was, from, "{seat} left {from} but was {was}");
    }

    /// Invariants 1 and 3: one record per call; handlers well formed, two at once only
    /// inside a three-way call.
    pub(super) fn finished(&mut self, r: &CallRecord, now: EpochMillis) {
        assert!(
            self.finished.insert(r.id.clone()),
            "{} finished twice",
            r.id
        );
        let outcome = r.outcome.expect("finished calls have an outcome");
        *self.outcomes.entry(outcome.label()).or_default() += 1;
        if let Some(mut spell) = self.queued.remove(&r.id) {
            spell.end = now;
            self.spells.push(spell);
        }
        let conferences = self.conferences.remove(&r.id).unwrap_or_default();
        let spans: Vec<(EpochMillis, EpochMillis)> = r
            .handlers
            .iter()
            .map(|h| {
                let until = h.until.expect("closed handler");
                assert!(h.from <= until, "{}: {h:?}", r.id);
                (h.from, until)
            })
            .collect();
        for (i, a) in spans.iter().enumerate() {
            for b in &spans[i + 1..] {
                let (from, until) = (a.0.max(b.0), a.1.min(b.1));
                if from < until {
                    let inside = conferences
                        .iter()
                        .any(|&(f, u)| f <= from && until <= u.unwrap_or(now));
                    assert!(inside, "{}: handlers overlap outside a conference", r.id);
                    let third = spans.iter().filter(|c| c.0 < until && from < c.1).count();
                    assert!(third <= 2, "{}: {third} handlers at once", r.id);
                }
            }
        }
    }

    /// Invariant 7: an ARM leaving an accompanied transfer leaves the caller on hold.
    pub(super) fn caller_held(out: &[CallOutput], call: &str, arm: &str) {
        let next = out.iter().find(|o| match o {
            CallOutput::SeatLeft { call: c, seat } | CallOutput::HangUpSeat { call: c, seat } => {
                c == call && seat != arm
            }
            CallOutput::Bridge { call: c, .. }
            | CallOutput::Conference { call: c }
            | CallOutput::Hold { call: c }
            | CallOutput::HangUpCaller { call: c }
            | CallOutput::RejectCaller { call: c, .. }
            | CallOutput::CancelSeat { call: c, .. }
            | CallOutput::RingSeat { call: c, .. } => c == call,
            CallOutput::Finished(r) => r.id == call,
            _ => false,
        });
        assert_eq!(
            next,
            Some(&CallOutput::Hold { call: call.into() }),
            "{arm} left the accompanied {call}: {out:?}"
        );
    }

    /// Invariants 1, 2 and 5 once the world has drained.
    pub(super) fn at_end(&self, board: &Switchboard, live: usize) {
        assert_eq!((live, board.active_calls()), (0, 0), "calls left live");
        assert_eq!(self.finished.len(), self.arrived);
        assert!(self.queued.is_empty(), "{:?}", self.queued.keys());
        for seat in board.acd().seats() {
            let label = seat.state.label();
            assert_eq!(self.seat_states.get(&seat.id), Some(&label), "{}", seat.id);
            assert!(!["ringing", "busy"].contains(&label), "{} {label}", seat.id);
        }
        for (role, bound) in self.starvation_bounds() {
            for s in self.spells.iter().filter(|s| s.role == role) {
                if let Some(limit) = bound.limit(s) {
                    let reached = s.first_offer.unwrap_or(s.end);
                    assert!(reached <= limit, "{role}: {s:?} not offered by {limit}");
                }
            }
        }
    }

    /// Invariant 5, per queue. The offered spells of the queue's lowest level `M` (not
    /// P0) are references. A call of level `L` queued at `t` ranks before every reference
    /// queued from `t + (L - M) × step` on, so it is offered no later than the first of
    /// them: within `(L - M) × step + G + W`, with `G` the longest gap between references
    /// and `W` the longest wait of a reference for its first offer.
    fn starvation_bounds(&self) -> BTreeMap<String, Bound> {
        let mut refs: BTreeMap<String, Vec<&Spell>> = BTreeMap::new();
        for s in self.spells.iter().filter(|s| s.urgency != Urgency::P0) {
            let r = refs.entry(s.role.clone()).or_default();
            if r.first().is_some_and(|f| s.level < f.level) {
                r.clear();
            }
            if s.first_offer.is_some() && r.first().is_none_or(|f| s.level == f.level) {
                r.push(s);
            }
        }
        refs.into_iter()
            .filter(|(_, r)| !r.is_empty())
            .map(|(role, mut r)| {
                r.sort_by_key(|s| s.at);
                let gap = r.windows(2).map(|w| w[1].at - w[0].at).max().unwrap_or(0);
                let wait = r
                    .iter()
                    .filter_map(|s| s.first_offer.map(|o| o - s.at))
                    .max()
                    .unwrap_or(0);
                let bound = Bound {
                    level: r[0].level,
                    gap,
                    wait,
                    refs: (r[0].at, r[r.len() - 1].at),
                };
                (role, bound)
            })
            .collect()
    }

    pub(super) fn report(&self, seed: u64) {
        eprintln!(
            "seed {seed:#x}: {} calls, {} offers, outcomes {:?}",
            self.arrived, self.offers, self.outcomes
        );
        eprintln!("  autopauses: {}", self.autopauses);
        eprintln!("  escalations: {:?}", self.escalations);
        for u in Urgency::ALL {
            let mut waits: Vec<EpochMillis> = self
                .spells
                .iter()
                .filter(|s| s.answered && s.urgency == u)
                .map(|s| s.end - s.at)
                .collect();
            waits.sort_unstable();
            if let Some(max) = waits.last() {
                let p95 = waits[waits.len() * 95 / 100];
                eprintln!(
                    "  {} answered {}: wait p95 {:.1} s, max {:.1} s",
                    u.label(),
                    waits.len(),
                    p95 as f64 / 1e3,
                    *max as f64 / 1e3
                );
            }
        }
        for (role, b) in self.starvation_bounds() {
            let worst = self
                .spells
                .iter()
                .filter(|s| s.role == role && b.limit(s).is_some())
                .map(|s| (s.first_offer.unwrap_or(s.end) - s.at, s.level))
                .max();
            eprintln!(
                "  {role}: offered within (L - {}) × {} s + {:.1} s (gap {:.1} s + wait {:.1} s); \
                 worst (wait ms, level) {worst:?}",
                b.level,
                AGING_STEP_MS / 1000,
                (b.gap + b.wait) as f64 / 1e3,
                b.gap as f64 / 1e3,
                b.wait as f64 / 1e3,
            );
        }
    }
}

/// The starvation bound of one queue (see [`Checks::starvation_bounds`]).
#[derive(Debug)]
struct Bound {
    /// Level of the references.
    level: u64,
    gap: EpochMillis,
    wait: EpochMillis,
    /// First and last enqueue of a reference.
    refs: (EpochMillis, EpochMillis),
}

impl Bound {
    /// When the spell must have been offered, if a reference came after its aged key.
    fn limit(&self, s: &Spell) -> Option<EpochMillis> {
        let key = s.at + s.level.checked_sub(self.level)? * AGING_STEP_MS;
        (s.urgency != Urgency::P0 && self.refs.0 <= key && key <= self.refs.1)
            .then_some(key + self.gap + self.wait)
    }
}
