//! The driver's clocks: the OS monotonic clock and the wall clock, read here and passed to
//! the core as [`Now`]. The core's time types ([`Mono`], [`EpochMillis`], [`Now`]) live in
//! `sas_core::time` and are re-exported here.

pub use sas_core::time::*;

/// The driver's clocks: the OS monotonic clock from an origin, and the wall clock.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: std::time::Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

impl Clock {
    /// A clock whose [`Mono`] origin is now.
    pub fn new() -> Clock {
        Clock {
            origin: std::time::Instant::now(),
        }
    }

    /// The monotonic instant now.
    pub fn mono(&self) -> Mono {
        Mono::from_millis(self.origin.elapsed().as_millis() as u64)
    }

    /// Both clocks now.
    pub fn now(&self) -> Now {
        Now {
            mono: self.mono(),
            wall: wall_clock_now(),
        }
    }

    /// How long from now until `deadline` (zero if past).
    pub fn until(&self, deadline: Mono) -> std::time::Duration {
        std::time::Duration::from_millis(deadline.saturating_sub(self.mono()))
    }
}

/// The wall clock, for drivers only (never called by `call/` or `acd/`).
pub fn wall_clock_now() -> EpochMillis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as EpochMillis)
        .unwrap_or(0)
}
