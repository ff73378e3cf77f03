//! Call priorities: Hub Santé urgency codes, the line's priority, and aging.
//!
//! The rank of a waiting call (smaller is served first) is fixed when it enters a queue:
//!
//! - **P0 is absolute**: every P0 call goes ahead of every other call, oldest first. P0 does
//!   not age because nothing may overtake a vital distress.
//! - Every other call has a **level**: `4 × urgency + line`, with urgency P1 = 0, P2 = 1,
//!   P3 = 2, NR = 3 and `line` the line priority (0 for the 15, 1 for the 116 117, capped
//!   at 3). An urgency step therefore outweighs any line priority.
//! - **Aging**: each `aging_step_ms` waited is worth one level. A call of level `L` that
//!   arrived at `t` is served as if it had arrived at level 0 at `t + L × step`, so a call
//!   waits at most `L × step` behind calls that arrived after it. The key is independent of
//!   `now`, which keeps the queue a plain ordered set.
//! - With `aging_step_ms == 0` the order is strict: level, then arrival.

use crate::time::EpochMillis;
use serde::{Deserialize, Serialize};

/// Hub Santé urgency code of an escalated call.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum Urgency {
    /// Vital distress: ahead of everyone.
    P0,
    /// Urgent.
    P1,
    /// Non-urgent, needs a regulator.
    P2,
    /// Advice.
    P3,
    /// Not yet rated (every call at ARM level).
    #[default]
    Nr,
}

impl Urgency {
    /// Every code, most urgent first.
    pub const ALL: [Urgency; 5] = [
        Urgency::P0,
        Urgency::P1,
        Urgency::P2,
        Urgency::P3,
        Urgency::Nr,
    ];

    /// The Hub Santé code (`P0`…`P3`, `NR`).
    pub fn label(self) -> &'static str {
        match self {
            Urgency::P0 => "P0",
            Urgency::P1 => "P1",
            Urgency::P2 => "P2",
            Urgency::P3 => "P3",
            Urgency::Nr => "NR",
        }
    }

    /// The code from its label, any case.
    pub fn from_label(label: &str) -> Option<Urgency> {
        Urgency::ALL
            .into_iter()
            .find(|u| u.label().eq_ignore_ascii_case(label))
    }

    /// Levels per urgency step (the line priority fits inside).
    const LINE_LEVELS: u64 = 4;

    fn index(self) -> u64 {
        match self {
            Urgency::P0 | Urgency::P1 => 0,
            Urgency::P2 => 1,
            Urgency::P3 => 2,
            Urgency::Nr => 3,
        }
    }
}

/// Where a call goes and how urgent it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRequest {
    /// The seat role that answers it.
    pub role: String,
    /// A skill the seat must have (`pédiatrie`, `langue:en`), if any.
    pub skill: Option<String>,
    /// Line priority from the dial plan: 0 for the 15, 1 for the 116 117.
    pub line_priority: u8,
    /// Urgency code (NR until a regulator rates the call).
    pub urgency: Urgency,
    /// A call coming back (transferred by a seat, waiting again after a lost seat or a
    /// failed forward): a queue's `max_waiting` does not refuse it, that limit is for new
    /// arrivals.
    pub readmitted: bool,
}

impl CallRequest {
    /// A call for `role`, unrated, at the given line priority.
    pub fn new(role: &str, line_priority: u8) -> Self {
        Self {
            role: role.into(),
            skill: None,
            line_priority,
            urgency: Urgency::Nr,
            readmitted: false,
        }
    }

    /// Marks the call as coming back (see [`CallRequest::readmitted`]).
    pub fn readmitted(mut self) -> Self {
        self.readmitted = true;
        self
    }

    /// Requires a skill.
    pub fn with_skill(mut self, skill: &str) -> Self {
        self.skill = Some(skill.into());
        self
    }

    /// Sets the urgency.
    pub fn with_urgency(mut self, urgency: Urgency) -> Self {
        self.urgency = urgency;
        self
    }

    /// The level before aging (see the module docs).
    pub fn level(&self) -> u64 {
        self.urgency.index() * Urgency::LINE_LEVELS + u64::from(self.line_priority.min(3))
    }
}

/// A call's place in line: `(tier, aged key, arrival)`; the queue adds a sequence number.
pub type Rank = (u8, u64, EpochMillis);

/// The rank of a call arriving at `arrived` (see the module docs for the rule).
pub fn rank(request: &CallRequest, arrived: EpochMillis, aging_step_ms: EpochMillis) -> Rank {
    if request.urgency == Urgency::P0 {
        return (0, arrived, arrived);
    }
    let level = request.level();
    let key = if aging_step_ms == 0 {
        level
    } else {
        arrived.saturating_add(level.saturating_mul(aging_step_ms))
    };
    (1, key, arrived)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p0_first_then_levels_then_arrival() {
        let nr15 = CallRequest::new("arm", 0);
        let p0 = CallRequest::new("arm", 1).with_urgency(Urgency::P0);
        let p3 = CallRequest::new("arm", 0).with_urgency(Urgency::P3);
        assert!(rank(&p0, 900, 0) < rank(&p3, 0, 0));
        assert!(rank(&p3, 500, 0) < rank(&nr15, 0, 0));
        assert!(rank(&nr15, 1, 0) < rank(&nr15, 2, 0));
    }

    #[test]
    fn aging_gives_one_level_per_step() {
        let sas = CallRequest::new("arm", 1);
        let samu = CallRequest::new("arm", 0);
        // The 116 117 call waited one step longer: it ties with the 15, arrival breaks it.
        assert!(rank(&sas, 0, 60_000) < rank(&samu, 60_000, 60_000));
        assert!(rank(&samu, 59_999, 60_000) < rank(&sas, 0, 60_000));
    }
}
