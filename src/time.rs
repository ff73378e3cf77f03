//! Time as the core sees it: milliseconds since the Unix epoch, always passed in.
//!
//! The sans-IO core never reads a clock; drivers call [`wall_clock_now`] and tests use
//! plain numbers, so virtual time is just arithmetic.

/// Milliseconds since 1970-01-01T00:00:00Z.
pub type EpochMillis = u64;

/// One second in [`EpochMillis`].
pub const SECOND: EpochMillis = 1_000;

/// The wall clock, for drivers only (never called by `call/` or `acd/`).
pub fn wall_clock_now() -> EpochMillis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as EpochMillis)
        .unwrap_or(0)
}

/// RFC 3339 rendering of a timestamp, in UTC, for records and CLI output.
pub fn rfc3339(t: EpochMillis) -> String {
    chrono::DateTime::from_timestamp_millis(t as i64)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| t.to_string())
}
