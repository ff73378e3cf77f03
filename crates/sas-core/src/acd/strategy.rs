//! Queue settings and distribution strategies, with the per-queue index of available seats
//! ordered by the strategy's key, so picking a seat is a lookup rather than a scan.

use super::seat::{Seat, SeatId};
use crate::id_map::IdMap;
use crate::time::EpochMillis;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::fmt;

/// How a queue picks among its available seats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// The seat idle the longest.
    #[default]
    LongestIdle,
    /// The seat offered a call the least recently (never-offered first, by id).
    RoundRobin,
    /// Every available seat rings; the first to answer takes the call.
    RingAll,
    /// The seat that answered the fewest calls (ties: longest idle).
    FewestCalls,
}

/// One queue's settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueSettings {
    /// Seat selection.
    pub strategy: Strategy,
    /// Wrap-up after calls from this queue (default: the ACD's).
    pub wrap_up_ms: Option<EpochMillis>,
    /// Calls allowed to wait; more are refused with [`super::AcdError::QueueFull`].
    pub max_waiting: Option<usize>,
    /// How long a seat that missed one of this queue's calls stays autopaused (default:
    /// the ACD's [`super::AcdSettings::autopause_resume_ms`]).
    pub autopause_resume_ms: Option<EpochMillis>,
}

/// A queue: seats of a role, optionally only those with a skill.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QueueKey {
    /// Seat role.
    pub role: String,
    /// Required skill, if any.
    pub skill: Option<String>,
}

impl QueueKey {
    /// The queue of every seat of `role`.
    pub fn role(role: &str) -> Self {
        Self {
            role: role.into(),
            skill: None,
        }
    }

    /// The queue of seats of `role` that have `skill`.
    pub fn skilled(role: &str, skill: &str) -> Self {
        Self {
            role: role.into(),
            skill: Some(skill.into()),
        }
    }

    /// Whether `seat` answers this queue.
    pub fn serves(&self, seat: &Seat) -> bool {
        seat.role == self.role && self.skill.as_ref().is_none_or(|s| seat.skills.contains(s))
    }
}

impl fmt::Display for QueueKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.skill {
            Some(skill) => write!(f, "{}/{skill}", self.role),
            None => f.write_str(&self.role),
        }
    }
}

type Key = (u64, u64);

/// Available seats of one queue, best first for its strategy.
#[derive(Debug, Default)]
pub(crate) struct SeatIndex {
    order: BTreeSet<(Key, SeatId)>,
    keys: IdMap<SeatId, Key>,
}

impl SeatIndex {
    /// Adds a seat that just became available. Its key fields do not change while it is
    /// available, so the key stored here stays right until it leaves.
    pub(crate) fn insert(&mut self, strategy: Strategy, seat: &Seat) {
        let key = match strategy {
            Strategy::LongestIdle => (seat.idle_since.as_millis(), 0),
            Strategy::RoundRobin => (seat.last_offer, 0),
            Strategy::FewestCalls => (seat.calls_taken, seat.idle_since.as_millis()),
            Strategy::RingAll => (0, 0),
        };
        self.remove(&seat.id);
        self.order.insert((key, seat.id.clone()));
        self.keys.insert(seat.id.clone(), key);
    }

    pub(crate) fn remove(&mut self, seat: &str) {
        if let Some(key) = self.keys.remove(seat) {
            self.order.remove(&(key, SeatId::from(seat)));
        }
    }

    pub(crate) fn first(&self) -> Option<&SeatId> {
        self.order.first().map(|(_, id)| id)
    }

    pub(crate) fn all(&self) -> Vec<SeatId> {
        self.order.iter().map(|(_, id)| id.clone()).collect()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}
