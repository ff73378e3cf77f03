//! The wallboard's thresholds: when a line's or a queue's cells turn amber and red.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use thiserror::Error;

/// How a cell (or a whole line) looks: normal, amber, red.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    #[default]
    Ok,
    Amber,
    Red,
}

/// Thresholds of one line or queue.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Share of calls answered within 60 s (last hour) under which the cell turns amber, %.
    pub answered_60s_target: f64,
    /// … and red, %.
    pub answered_60s_red: f64,
    /// Longest wait from which the cell turns amber, s.
    pub wait_amber_s: u64,
    /// … and red, s.
    pub wait_red_s: u64,
}

impl Default for Limits {
    /// SUdF: 99 % within 60 s; a caller waiting 30 s is a concern, 60 s an alarm.
    fn default() -> Self {
        Self {
            answered_60s_target: 99.0,
            answered_60s_red: 95.0,
            wait_amber_s: 30,
            wait_red_s: 60,
        }
    }
}

/// Thresholds that do not make sense, with the key at fault.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum LimitsError {
    #[error("{key}: a share between 0 and 100 is expected, not {value}")]
    Share { key: &'static str, value: f64 },
    #[error("answered_60s_red ({red}) must not be above answered_60s_target ({target})")]
    ShareOrder { target: f64, red: f64 },
    #[error("wait_red_s ({red}) must be above wait_amber_s ({amber}), both above 0")]
    WaitOrder { amber: u64, red: u64 },
}

impl Limits {
    /// Checks the thresholds are shares and in order.
    pub fn check(&self) -> Result<(), LimitsError> {
        for (key, value) in [
            ("answered_60s_target", self.answered_60s_target),
            ("answered_60s_red", self.answered_60s_red),
        ] {
            if !(0.0..=100.0).contains(&value) {
                return Err(LimitsError::Share { key, value });
            }
        }
        if self.answered_60s_red > self.answered_60s_target {
            return Err(LimitsError::ShareOrder {
                target: self.answered_60s_target,
                red: self.answered_60s_red,
            });
        }
        if self.wait_amber_s == 0 || self.wait_red_s <= self.wait_amber_s {
            return Err(LimitsError::WaitOrder {
                amber: self.wait_amber_s,
                red: self.wait_red_s,
            });
        }
        Ok(())
    }

    /// The level of a longest wait.
    pub fn wait_level(&self, wait_ms: u64) -> Level {
        if wait_ms >= self.wait_red_s * 1000 {
            Level::Red
        } else if wait_ms >= self.wait_amber_s * 1000 {
            Level::Amber
        } else {
            Level::Ok
        }
    }

    /// The level of a share answered within 60 s (`None`: no call yet, nothing to judge).
    pub fn share_level(&self, pct_60s: Option<f64>) -> Level {
        match pct_60s {
            Some(p) if p < self.answered_60s_red => Level::Red,
            Some(p) if p < self.answered_60s_target => Level::Amber,
            _ => Level::Ok,
        }
    }
}

/// Thresholds of every line and queue: the defaults, and those a line or queue overrides.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Thresholds {
    pub default: Limits,
    pub lines: BTreeMap<String, Limits>,
    pub queues: BTreeMap<String, Limits>,
}

impl Thresholds {
    pub fn line(&self, line: &str) -> Limits {
        self.lines.get(line).copied().unwrap_or(self.default)
    }

    pub fn queue(&self, queue: &str) -> Limits {
        self.queues.get(queue).copied().unwrap_or(self.default)
    }
}
