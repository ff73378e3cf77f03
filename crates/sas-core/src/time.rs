//! Time as the core sees it, always passed in: a monotonic clock for every deadline and a
//! wall clock for records, schedules and display.
//!
//! The two are different types so the compiler keeps them apart: [`Mono`] (milliseconds
//! since an arbitrary origin, never steps) decides when a ring, a wrap-up or a wait ends;
//! [`EpochMillis`] (milliseconds since the Unix epoch, may step when NTP or an admin sets
//! the clock) is what records and dial plan schedules say. Inputs that need both carry a
//! [`Now`]. The sans-IO core never reads a clock; drivers read the app's `time::Clock` and tests use
//! plain numbers, so virtual time is just arithmetic.

use serde::Serialize;

/// Milliseconds since 1970-01-01T00:00:00Z (wall clock). Also used for durations.
pub type EpochMillis = u64;

/// One second in milliseconds.
pub const SECOND: EpochMillis = 1_000;

/// A monotonic instant: milliseconds since the driver's clock origin (`sas_router::time::Clock`). Deadlines are
/// compared in this time only, so stepping the wall clock changes none of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Mono(u64);

impl Mono {
    /// The origin.
    pub const ZERO: Mono = Mono(0);

    /// The instant `ms` milliseconds after the origin.
    pub const fn from_millis(ms: u64) -> Mono {
        Mono(ms)
    }

    /// Milliseconds since the origin.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// The instant `ms` milliseconds later (saturating).
    pub const fn saturating_add(self, ms: u64) -> Mono {
        Mono(self.0.saturating_add(ms))
    }

    /// Milliseconds from `earlier` to `self`, 0 if `earlier` is later.
    pub const fn saturating_sub(self, earlier: Mono) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// Both clocks at one moment: what an input that makes deadlines and records carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// For deadlines.
    pub mono: Mono,
    /// For records, schedules and display.
    pub wall: EpochMillis,
}

impl Now {
    /// Both clocks at `ms` (tests and simulations, where they start together).
    pub const fn at(ms: u64) -> Now {
        Now {
            mono: Mono(ms),
            wall: ms,
        }
    }

    /// `ms` milliseconds later on both clocks.
    pub const fn plus(self, ms: u64) -> Now {
        Now {
            mono: self.mono.saturating_add(ms),
            wall: self.wall.saturating_add(ms),
        }
    }

    /// The wall time at which the monotonic instant `at` falls, as seen now (for display:
    /// "paused until 14:02").
    pub const fn wall_at(self, at: Mono) -> EpochMillis {
        if at.0 >= self.mono.0 {
            self.wall.saturating_add(at.0 - self.mono.0)
        } else {
            self.wall.saturating_sub(self.mono.0 - at.0)
        }
    }
}

/// RFC 3339 rendering of a timestamp, in UTC, for records and CLI output.
pub fn rfc3339(t: EpochMillis) -> String {
    chrono::DateTime::from_timestamp_millis(t as i64)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_at_maps_monotonic_deadlines_to_display_time_both_ways() {
        let now = Now {
            mono: Mono::from_millis(10_000),
            wall: 1_000_000,
        };
        assert_eq!(now.wall_at(Mono::from_millis(15_000)), 1_005_000);
        assert_eq!(now.wall_at(Mono::from_millis(4_000)), 994_000);
    }
}
